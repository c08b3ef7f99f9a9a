// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_modes_test
 *
 * The per-path modes in /sys/kernel/debug/svm_guard/<path>/mode:
 *
 * 1. Every path starts in "guard" and accepts "upstream" and "guard".
 * 2. A bad write fails with EINVAL and changes nothing.
 * 3. "legacy" fails with EPERM unless the module was loaded with
 *    allow_legacy=1, and is accepted then.
 * 4. In "upstream" mode kvm-amd decides alone: NMI injections move the
 *    module's "upstream" counter and none of kvm-amd's NMI verdict stats.
 *
 * The test reloads the module through $SVM_GUARD_KO and leaves it loaded
 * (without allow_legacy) or unloaded as it found it.
 */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_guard_module.h"

#define NR_ROUNDS	10

static const char * const paths[] = { "svm_skip", "sev_skip", "nmi", "ghcb" };
static const char *ko_path;

static void reload_module(const char *params)
{
	int r;

	if (svm_guard_loaded()) {
		r = svm_guard_unload();
		TEST_ASSERT(!r, "rmmod svm_guard: %s", strerror(-r));
	}
	r = svm_guard_load(ko_path, params);
	TEST_ASSERT(!r, "insmod %s %s: %s", ko_path, params, strerror(-r));
}

static int open_mode(const char *path, int flags)
{
	char file[128];
	int fd;

	snprintf(file, sizeof(file), "/sys/kernel/debug/svm_guard/%s/mode", path);
	fd = open(file, flags);
	TEST_ASSERT(fd >= 0, "open %s: %s", file, strerror(errno));
	return fd;
}

static void read_mode(const char *path, char *mode, size_t len)
{
	int fd = open_mode(path, O_RDONLY);
	ssize_t n;

	n = read(fd, mode, len - 1);
	TEST_ASSERT(n > 0, "read %s mode: %s", path, strerror(errno));
	close(fd);
	mode[n] = '\0';
	mode[strcspn(mode, "\n")] = '\0';
}

static void assert_mode(const char *path, const char *want)
{
	char mode[32];

	read_mode(path, mode, sizeof(mode));
	TEST_ASSERT(!strcmp(mode, want), "%s mode is '%s', want '%s'",
		    path, mode, want);
}

static void guest_nmi_handler(struct ex_regs *regs)
{
}

static void guest_code(void)
{
	for (;;)
		GUEST_SYNC(0);
}

static void run_nmi_rounds(struct kvm_vcpu *vcpu)
{
	struct ucall uc;
	int i;

	for (i = 0; i < NR_ROUNDS; i++) {
		vcpu_ioctl(vcpu, KVM_NMI, NULL);
		svm_guard_run_to_sync(vcpu, &uc, false);
	}
}

int main(int argc, char *argv[])
{
	u64 stats, upstream;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	bool was_loaded;
	unsigned int i;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko_path = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	ksft_print_header();
	ksft_set_plan(4);

	reload_module("");
	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		assert_mode(paths[i], "guard");
		TEST_ASSERT(!svm_guard_set_mode(paths[i], "upstream\n"), "upstream refused");
		assert_mode(paths[i], "upstream");
		TEST_ASSERT(!svm_guard_set_mode(paths[i], "guard"), "guard refused");
		assert_mode(paths[i], "guard");
	}
	ksft_test_result_pass("guard by default; upstream and guard accepted\n");

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		static const char * const bad[] = { "\n", "Guard", "legacyx", "0",
			"guard upstream", "a-string-longer-than-sixteen-bytes" };
		unsigned int j;
		int r;

		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			r = svm_guard_set_mode(paths[i], bad[j]);
			TEST_ASSERT(r == -EINVAL, "%s: writing '%s' gave %d, want -EINVAL",
				    paths[i], bad[j], r);
			assert_mode(paths[i], "guard");
		}
		r = svm_guard_set_mode(paths[i], "legacy");
		TEST_ASSERT(r == -EPERM, "%s: legacy without allow_legacy gave %d",
			    paths[i], r);
		assert_mode(paths[i], "guard");
	}
	ksft_test_result_pass("bad writes: EINVAL; legacy without allow_legacy: EPERM; %s\n",
			      "mode unchanged");

	reload_module("allow_legacy=1");
	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		TEST_ASSERT(!svm_guard_set_mode(paths[i], "legacy"), "legacy refused");
		assert_mode(paths[i], "legacy");
	}
	ksft_test_result_pass("legacy accepted with allow_legacy=1\n");

	reload_module("");
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_install_exception_handler(vm, NMI_VECTOR, guest_nmi_handler);
	TEST_ASSERT(!svm_guard_set_mode("nmi", "upstream"), "upstream refused");
	stats = vcpu_get_stat(vcpu, svm_policy_nmi_inject_hardware) +
		vcpu_get_stat(vcpu, svm_policy_nmi_inject_software);
	upstream = svm_guard_counter("nmi", "upstream");
	run_nmi_rounds(vcpu);
	TEST_ASSERT(vcpu_get_stat(vcpu, svm_policy_nmi_inject_hardware) +
		    vcpu_get_stat(vcpu, svm_policy_nmi_inject_software) == stats,
		    "kvm-amd counted policy verdicts in upstream mode");
	TEST_ASSERT(svm_guard_counter("nmi", "upstream") - upstream >= NR_ROUNDS,
		    "the module's upstream counter moved by %lu for %d NMIs",
		    svm_guard_counter("nmi", "upstream") - upstream, NR_ROUNDS);
	kvm_vm_free(vm);
	ksft_test_result_pass("upstream mode: kvm-amd decided %d NMIs alone\n",
			      NR_ROUNDS);

	svm_guard_restore(ko_path, was_loaded);
	ksft_finished();
}
