// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_load_unload_test
 *
 * The svm_guard policy module can come and go while a guest runs:
 *
 * 1. With the module unloaded, NMI injections move none of kvm-amd's
 *    svm_policy_* vCPU stats; with it loaded they do, and so do the module's
 *    own debugfs counters.
 * 2. A guest loops over INT3, INT 0x20 and an NMI from the host per round
 *    while another thread unloads and loads the module 100 times.  Every
 *    round, the guest's handlers must have run exactly once more each.
 *
 * The module is found through $SVM_GUARD_KO; the test leaves it loaded or
 * unloaded as it found it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_guard_module.h"

#define NR_CYCLES	100
#define NR_QUIET_ROUNDS	20
#define INTN_VECTOR	0x20

static u64 nmi_count, bp_count, intn_count;

static void guest_nmi_handler(struct ex_regs *regs)
{
	nmi_count++;
}

static void guest_bp_handler(struct ex_regs *regs)
{
	bp_count++;
}

static void guest_intn_handler(struct ex_regs *regs)
{
	intn_count++;
}

static void guest_code(void)
{
	u64 round;

	for (round = 0;; round++) {
		asm volatile("int3" ::: "memory");
		asm volatile("int $0x20" ::: "memory");
		GUEST_SYNC_ARGS(round, READ_ONCE(nmi_count), READ_ONCE(bp_count),
				READ_ONCE(intn_count), 0);
	}
}

static const char *ko_path;

/* Sum of kvm-amd's per-verdict stats for NMI injection. */
static u64 nmi_policy_stats(struct kvm_vcpu *vcpu)
{
	return vcpu_get_stat(vcpu, svm_policy_nmi_inject_hardware) +
	       vcpu_get_stat(vcpu, svm_policy_nmi_inject_software);
}

/* Sum of the module's own NMI verdict counters, from debugfs. */
static u64 nmi_module_counters(void)
{
	FILE *f = fopen("/sys/kernel/debug/svm_guard/nmi/counters", "r");
	unsigned long long value;
	u64 sum = 0;
	char name[64];

	TEST_ASSERT(f, "open svm_guard nmi counters: %s", strerror(errno));
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		if (strcmp(name, "upstream"))
			sum += value;
	}
	fclose(f);
	return sum;
}

static u64 rounds;

/* Inject an NMI, run the guest to its next sync, and check its handlers. */
static void run_round(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_ioctl(vcpu, KVM_NMI, NULL);
	svm_guard_run_to_sync(vcpu, &uc, false);

	rounds++;
	TEST_ASSERT(uc.args[1] == rounds - 1, "guest round %lu, host round %lu",
		    uc.args[1], rounds - 1);
	TEST_ASSERT(uc.args[2] == rounds && uc.args[3] == rounds &&
		    uc.args[4] == rounds,
		    "after %lu rounds the guest saw %lu NMIs, %lu #BPs, %lu INT 0x%x",
		    rounds, uc.args[2], uc.args[3], uc.args[4], INTN_VECTOR);
}

static atomic_bool toggling_done;
static int toggle_error;
static int toggles_done;

/* Unload and load the module NR_CYCLES times; it starts and ends loaded. */
static void *toggle_module(void *arg)
{
	int i, r = 0;

	for (i = 0; i < 2 * NR_CYCLES && !r; i++) {
		r = (i % 2) ? svm_guard_load(ko_path, "") : svm_guard_unload();
		if (!r)
			toggles_done++;
	}
	toggle_error = r;
	atomic_store(&toggling_done, true);
	return NULL;
}

int main(int argc, char *argv[])
{
	u64 before, module_before;
	bool was_loaded;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	pthread_t thread;
	int i, r;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko_path = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_install_exception_handler(vm, NMI_VECTOR, guest_nmi_handler);
	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	vm_install_exception_handler(vm, INTN_VECTOR, guest_intn_handler);

	ksft_print_header();
	ksft_set_plan(3);

	/* Unloaded: kvm-amd decides alone, the policy stats stay put. */
	if (svm_guard_loaded())
		TEST_ASSERT(!svm_guard_unload(), "rmmod svm_guard: %s", strerror(errno));
	before = nmi_policy_stats(vcpu);
	for (i = 0; i < NR_QUIET_ROUNDS; i++)
		run_round(vcpu);
	TEST_ASSERT(nmi_policy_stats(vcpu) == before,
		    "policy stats moved by %lu without the module",
		    nmi_policy_stats(vcpu) - before);
	ksft_test_result_pass("unloaded: %d NMIs, policy stats unchanged\n",
			      NR_QUIET_ROUNDS);

	/* Loaded: every NMI injection goes through the policy. */
	r = svm_guard_load(ko_path, "");
	TEST_ASSERT(!r, "insmod %s: %s", ko_path, strerror(-r));
	before = nmi_policy_stats(vcpu);
	module_before = nmi_module_counters();
	for (i = 0; i < NR_QUIET_ROUNDS; i++)
		run_round(vcpu);
	TEST_ASSERT(nmi_policy_stats(vcpu) - before >= NR_QUIET_ROUNDS,
		    "policy stats moved by %lu for %d NMIs with the module",
		    nmi_policy_stats(vcpu) - before, NR_QUIET_ROUNDS);
	TEST_ASSERT(nmi_module_counters() - module_before >= NR_QUIET_ROUNDS,
		    "module counters moved by %lu for %d NMIs",
		    nmi_module_counters() - module_before, NR_QUIET_ROUNDS);
	ksft_test_result_pass("loaded: %d NMIs, policy stats +%lu\n",
			      NR_QUIET_ROUNDS, nmi_policy_stats(vcpu) - before);

	/* Load and unload while the guest runs. */
	r = pthread_create(&thread, NULL, toggle_module, NULL);
	TEST_ASSERT(!r, "pthread_create: %s", strerror(r));
	before = rounds;
	while (!atomic_load(&toggling_done) || rounds - before < NR_QUIET_ROUNDS)
		run_round(vcpu);
	pthread_join(thread, NULL);
	TEST_ASSERT(!toggle_error, "%s %d of %d failed: %s",
		    toggles_done % 2 ? "load" : "unload", toggles_done / 2 + 1,
		    NR_CYCLES, strerror(-toggle_error));
	ksft_test_result_pass("%d unload/load cycles during %lu guest rounds\n",
			      NR_CYCLES, rounds - before);

	kvm_vm_free(vm);
	svm_guard_restore(ko_path, was_loaded);
	ksft_finished();
}
