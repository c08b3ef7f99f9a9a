// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_bad_input_test: what a user can feed svm_guard gets a clear
 * error and changes nothing.
 *
 * 1. Mode writes that are empty, too long, not UTF-8, with trailing
 *    garbage, or split over two write() calls fail with EINVAL (an empty
 *    write may also return 0 without reaching the module); each path keeps
 *    the mode it had, which the test first sets to a non-default one so that
 *    a reset to the default would show.
 * 2. Writing a counters file fails; the counters read the same after.
 * 3. A module parameter out of range (allow_legacy=2, allow_legacy=maybe)
 *    fails the load with EINVAL and leaves the module unloaded.
 * 4. Loading the module a second time fails with EEXIST; the loaded one
 *    keeps its modes and still takes writes.
 */
#include "processor.h"
#include "svm_guard_module.h"

static const char * const paths[] = { "svm_skip", "sev_skip", "nmi", "ghcb" };

static int open_path_file(const char *path, const char *name, int flags)
{
	char file[128];

	snprintf(file, sizeof(file), "/sys/kernel/debug/svm_guard/%s/%s", path, name);
	return open(file, flags);
}

/* write() @len bytes of @buf to @path's mode file; returns bytes or -errno. */
static ssize_t write_mode_raw(const char *path, const void *buf, size_t len)
{
	int fd = open_path_file(path, "mode", O_WRONLY);
	ssize_t n;

	TEST_ASSERT(fd >= 0, "open %s/mode: %s", path, strerror(errno));
	n = write(fd, buf, len);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static void read_path_file(const char *path, const char *name, char *buf, size_t size)
{
	int fd = open_path_file(path, name, O_RDONLY);
	ssize_t n;

	TEST_ASSERT(fd >= 0, "open %s/%s: %s", path, name, strerror(errno));
	n = read(fd, buf, size - 1);
	TEST_ASSERT(n >= 0, "read %s/%s: %s", path, name, strerror(errno));
	buf[n] = '\0';
	close(fd);
}

static void assert_mode(const char *path, const char *want, const char *after)
{
	char mode[32];

	read_path_file(path, "mode", mode, sizeof(mode));
	mode[strcspn(mode, "\n")] = '\0';
	TEST_ASSERT(!strcmp(mode, want), "%s: mode is '%s' after %s, want '%s'",
		    path, mode, after, want);
}

static void set_all(const char *mode)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(paths); i++)
		TEST_ASSERT(!svm_guard_set_mode(paths[i], mode), "%s: %s refused", paths[i], mode);
}

static void bad_mode_writes(void)
{
	static const struct { const char *what; const char *buf; size_t len; } bad[] = {
		{ "not UTF-8", "\xff\xfe", 2 },
		{ "UTF-8 then invalid", "guard\xc3", 6 },
		{ "a NUL inside", "guard\0x", 7 },
		{ "trailing garbage", "guard;", 6 },
		{ "two words", "guard legacy", 12 },
		{ "a prefix", "gua", 3 },
		{ "only whitespace", "\t\n", 2 },
	};
	static char big[65536];
	unsigned int i, j;
	ssize_t n;
	int fd;

	memset(big, 'g', sizeof(big));
	set_all("upstream");
	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			n = write_mode_raw(paths[i], bad[j].buf, bad[j].len);
			TEST_ASSERT(n == -EINVAL, "%s: write of %s gave %zd, want -EINVAL",
				    paths[i], bad[j].what, n);
			assert_mode(paths[i], "upstream", bad[j].what);
		}

		n = write_mode_raw(paths[i], big, 17);
		TEST_ASSERT(n == -EINVAL, "%s: 17-byte write gave %zd", paths[i], n);
		n = write_mode_raw(paths[i], big, sizeof(big));
		TEST_ASSERT(n == -EINVAL, "%s: 64 KiB write gave %zd", paths[i], n);
		assert_mode(paths[i], "upstream", "too long writes");

		/* An empty write: an error, or nothing at all. */
		n = write_mode_raw(paths[i], "", 0);
		TEST_ASSERT(n == 0 || n == -EINVAL, "%s: empty write gave %zd", paths[i], n);
		assert_mode(paths[i], "upstream", "an empty write");

		/* "guard" split over two writes on one descriptor: neither half is a mode. */
		fd = open_path_file(paths[i], "mode", O_WRONLY);
		TEST_ASSERT(fd >= 0, "open %s/mode: %s", paths[i], strerror(errno));
		n = write(fd, "gu", 2);
		TEST_ASSERT(n < 0 && errno == EINVAL, "%s: first half gave %zd", paths[i], n);
		n = write(fd, "ard", 3);
		TEST_ASSERT(n < 0, "%s: second half was accepted", paths[i]);
		close(fd);
		assert_mode(paths[i], "upstream", "a write split in two");
	}
	set_all("guard");
	ksft_test_result_pass("mode writes: empty, too long, not UTF-8, trailing garbage, %s\n",
			      "split: refused, mode unchanged");
}

static void counters_write(void)
{
	char before[1024], after[1024];
	unsigned int i;
	ssize_t n;
	int fd;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		read_path_file(paths[i], "counters", before, sizeof(before));
		fd = open_path_file(paths[i], "counters", O_WRONLY);
		if (fd >= 0) {
			n = write(fd, "upstream 0\n", 11);
			TEST_ASSERT(n < 0, "%s: a write to counters was accepted", paths[i]);
			close(fd);
		}
		read_path_file(paths[i], "counters", after, sizeof(after));
		TEST_ASSERT(!strcmp(before, after), "%s: counters changed by a write", paths[i]);
	}
	ksft_test_result_pass("counters: writes refused, counters unchanged\n");
}

static void bad_params(const char *ko)
{
	static const char * const bad[] = { "allow_legacy=2", "allow_legacy=maybe" };
	unsigned int i;
	int r;

	if (svm_guard_loaded()) {
		r = svm_guard_unload();
		TEST_ASSERT(!r, "rmmod svm_guard: %s", strerror(-r));
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r = svm_guard_load(ko, bad[i]);
		TEST_ASSERT(r == -EINVAL, "insmod %s gave %d, want -EINVAL", bad[i], r);
		TEST_ASSERT(!svm_guard_loaded(), "svm_guard is loaded after insmod %s", bad[i]);
	}
	ksft_test_result_pass("parameters out of range: EINVAL, not loaded\n");
}

static void load_twice(const char *ko)
{
	int r;

	r = svm_guard_load(ko, "");
	TEST_ASSERT(!r, "insmod: %s", strerror(-r));
	TEST_ASSERT(!svm_guard_set_mode("nmi", "upstream"), "upstream refused");
	r = svm_guard_load(ko, "allow_legacy=1");
	TEST_ASSERT(r == -EEXIST, "second insmod gave %d, want -EEXIST", r);
	TEST_ASSERT(svm_guard_loaded(), "svm_guard is gone after the second insmod");
	assert_mode("nmi", "upstream", "a second insmod");
	/* The second load's allow_legacy=1 did not reach the loaded module. */
	TEST_ASSERT(svm_guard_set_mode("nmi", "legacy") == -EPERM,
		    "legacy accepted: the second insmod's parameter took effect");
	TEST_ASSERT(!svm_guard_set_mode("nmi", "guard"), "guard refused");
	ksft_test_result_pass("second insmod: EEXIST, the loaded module unchanged\n");
}

int main(void)
{
	const char *ko;
	bool was_loaded;
	int r;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	ksft_print_header();
	ksft_set_plan(4);

	if (!svm_guard_loaded()) {
		r = svm_guard_load(ko, "");
		TEST_ASSERT(!r, "insmod: %s", strerror(-r));
	}
	bad_mode_writes();
	counters_write();
	bad_params(ko);
	load_twice(ko);

	svm_guard_restore(ko, was_loaded);
	ksft_finished();
}
