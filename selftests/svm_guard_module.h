/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Loading and unloading the svm_guard module from a selftest.  The module
 * file is named by $SVM_GUARD_KO, which the VM runner exports.
 */
#ifndef SELFTEST_SVM_GUARD_MODULE_H
#define SELFTEST_SVM_GUARD_MODULE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test_util.h"

/* Skip the test unless $SVM_GUARD_KO names a readable module; return it. */
static inline const char *svm_guard_require_ko(void)
{
	const char *ko = getenv("SVM_GUARD_KO");

	__TEST_REQUIRE(ko && !access(ko, R_OK),
		       "SVM_GUARD_KO must name a readable svm_guard.ko");
	return ko;
}

static inline bool svm_guard_loaded(void)
{
	return !access("/sys/module/svm_guard", F_OK);
}

/* Load @ko with module parameters @params; returns 0 or -errno. */
static inline int svm_guard_load(const char *ko, const char *params)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return r;
}

/* Unload svm_guard; returns 0 or -errno. */
static inline int svm_guard_unload(void)
{
	return syscall(__NR_delete_module, "svm_guard", O_NONBLOCK) ? -errno : 0;
}

/* Write @mode to /sys/kernel/debug/svm_guard/@path/mode; returns 0 or -errno. */
static inline int svm_guard_set_mode(const char *path, const char *mode)
{
	char file[128];
	ssize_t n;
	int fd, r;

	snprintf(file, sizeof(file), "/sys/kernel/debug/svm_guard/%s/mode", path);
	fd = open(file, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, mode, strlen(mode));
	r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}

#endif /* SELFTEST_SVM_GUARD_MODULE_H */
