/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers the svm_guard selftests share: loading and unloading the module
 * (named by $SVM_GUARD_KO, which the VM runner exports), setting a path's
 * mode, reading its counters, and running the guest to its next GUEST_SYNC.
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
#include "kvm_util.h"
#include "ucall_common.h"

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

/*
 * Leave the module as a test found it: loaded without parameters if
 * @was_loaded, else unloaded.
 */
static inline void svm_guard_restore(const char *ko, bool was_loaded)
{
	int r;

	if (svm_guard_loaded()) {
		r = svm_guard_unload();
		TEST_ASSERT(!r, "rmmod svm_guard: %s", strerror(-r));
	}
	if (was_loaded) {
		r = svm_guard_load(ko, "");
		TEST_ASSERT(!r, "insmod %s: %s", ko, strerror(-r));
	}
}

/*
 * Run @vcpu to its next GUEST_SYNC and return true.  A guest assertion
 * fails the test, unless @abort_ok: then return false.
 */
static inline bool svm_guard_run_to_sync(struct kvm_vcpu *vcpu, struct ucall *uc,
					 bool abort_ok)
{
	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, uc)) {
	case UCALL_SYNC:
		return true;
	case UCALL_ABORT:
		if (abort_ok)
			return false;
		REPORT_GUEST_ASSERT(*uc);
		/* NOT REACHED */
	default:
		TEST_FAIL("Unexpected ucall %lu", uc->cmd);
	}
	return false;
}

/* Write @val to the file @path, opened with O_WRONLY | @flags; returns 0 or -errno. */
static inline int svm_guard_write_file(const char *path, const char *val, int flags)
{
	ssize_t n;
	int fd, r;

	fd = open(path, O_WRONLY | flags);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Write @mode to /sys/kernel/debug/svm_guard/@path/mode; returns 0 or -errno. */
static inline int svm_guard_set_mode(const char *path, const char *mode)
{
	char file[128];

	snprintf(file, sizeof(file), "/sys/kernel/debug/svm_guard/%s/mode", path);
	return svm_guard_write_file(file, mode, 0);
}

/*
 * The value of @counter in /sys/kernel/debug/svm_guard/@path/counters (one
 * "name value" line per counter); 0 if the file has no such line.
 */
static inline u64 svm_guard_counter(const char *path, const char *counter)
{
	unsigned long long value;
	char file[128], name[64];
	u64 found = 0;
	FILE *f;

	snprintf(file, sizeof(file), "/sys/kernel/debug/svm_guard/%s/counters", path);
	f = fopen(file, "r");
	TEST_ASSERT(f, "open %s: %s", file, strerror(errno));
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		if (!strcmp(name, counter))
			found = value;
	}
	fclose(f);
	return found;
}

/*
 * Put @path in @mode, loading the module with @params if it is not loaded;
 * with @mode NULL, unload the module instead.  Fails the test on any error.
 */
static inline void svm_guard_use_mode(const char *ko, const char *params,
				      const char *path, const char *mode)
{
	int r;

	if (!mode) {
		if (svm_guard_loaded()) {
			r = svm_guard_unload();
			TEST_ASSERT(!r, "rmmod svm_guard: %s", strerror(-r));
		}
		return;
	}
	if (!svm_guard_loaded()) {
		r = svm_guard_load(ko, params);
		TEST_ASSERT(!r, "insmod %s %s: %s", ko, params, strerror(-r));
	}
	r = svm_guard_set_mode(path, mode);
	TEST_ASSERT(!r, "%s mode %s: %s", path, mode, strerror(-r));
}

#endif /* SELFTEST_SVM_GUARD_MODULE_H */
