// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_smoke_test
 *
 * Pipeline smoke test for svm_guard: a guest on kvm-amd runs, talks to the
 * host through ucalls in order, takes an INT3 into its own #BP handler with
 * the architecturally right return RIP, and finishes.
 */
#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"

#define NR_SYNCS 3

static u64 bp_count;
static u64 bp_rip;

extern char smoke_after_int3[];

static void guest_bp_handler(struct ex_regs *regs)
{
	bp_count++;
	bp_rip = regs->rip;
}

static noinline void guest_int3(void)
{
	asm volatile("int3\n\t"
		     ".globl smoke_after_int3\n"
		     "smoke_after_int3:\n\t"
		     "nop" ::: "memory");
}

static void guest_code(void)
{
	u64 i;

	for (i = 0; i < NR_SYNCS; i++)
		GUEST_SYNC(i);

	guest_int3();
	GUEST_ASSERT_EQ(bp_count, 1);
	GUEST_ASSERT_EQ(bp_rip, (u64)smoke_after_int3);

	GUEST_DONE();
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 syncs = 0;
	struct ucall uc;

	TEST_REQUIRE(host_cpu_is_amd);
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);

	for (;;) {
		vcpu_run(vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);

		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			TEST_ASSERT(uc.args[1] == syncs,
				    "Guest synced %lu, expected %lu",
				    uc.args[1], syncs);
			syncs++;
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			/* NOT REACHED */
		case UCALL_DONE:
			TEST_ASSERT(syncs == NR_SYNCS,
				    "Guest finished after %lu syncs, expected %d",
				    syncs, NR_SYNCS);
			kvm_vm_free(vm);
			ksft_print_msg("guest ran %lu ucalls and an INT3 on kvm-amd\n",
				       syncs);
			return 0;
		default:
			TEST_FAIL("Unknown ucall %lu", uc.cmd);
		}
	}
}
