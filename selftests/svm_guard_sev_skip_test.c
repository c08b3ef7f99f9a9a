// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_sev_skip_test
 *
 * An SEV guest's INT3 whose delivery faults: KVM must re-inject the #BP and
 * skip the INT3, but it cannot read the guest's encrypted instruction.  The
 * skip must fail, so the event is dropped and the guest re-executes the
 * INT3; it must never get a #UD for it.
 *
 * The guest points RSP at the top of a page it has never touched, so KVM has
 * not mapped it yet and pushing the #BP frame takes a #NPF while the CPU
 * vectors the event.  Each round uses a new page.  The guest checks in its
 * own handlers (the host cannot read its memory) that every #BP returns
 * right after the INT3 and that no #UD arrives.
 *
 * Runs without svm_guard and with it: sev_skip in guard (and svm_skip in
 * legacy, so the skip reaches the emulator and the sev_skip decision), all
 * paths in upstream, and sev_skip in legacy, where the test must see the
 * #UD that shows it detects the bug.  Each mode reports what kvm-amd's vCPU
 * stats and the module's debugfs counters saw, and asserts the verdict it
 * expects there: guard fails the skip, upstream hands the decision back to
 * kvm-amd, legacy queues #UD.
 *
 * Needs SEV, on AMD hardware or under a QEMU that emulates it (TCG); skips
 * elsewhere.
 */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "sev.h"
#include "svm_guard_module.h"
#include "svm_guard_trace.h"

#define STACK_SLOT	10
#define STACK_GPA	0x10000000ull
#define ROUNDS		2
#define NR_MODES	4
#define STACK_PAGES	(NR_MODES * ROUNDS + 1)

static u64 bp_count, bp_bad_rip, ud_count;

extern char sev_int3_site[];

static void guest_bp_handler(struct ex_regs *regs)
{
	bp_count++;
	if (regs->rip != (u64)sev_int3_site + 1)
		bp_bad_rip++;
}

static void guest_ud_handler(struct ex_regs *regs)
{
	/* Returning re-executes the INT3, now with the stack page mapped. */
	ud_count++;
}

static noinline void guest_int3(u64 rsp)
{
	asm volatile("mov %%rsp, %%r15\n\t"
		     "mov %0, %%rsp\n\t"
		     ".globl sev_int3_site\n"
		     "sev_int3_site:\n\t"
		     "int3\n\t"
		     "mov %%r15, %%rsp\n\t"
		     :: "r"(rsp) : "r15", "memory");
}

static void guest_code(void)
{
	u64 round;

	GUEST_ASSERT(rdmsr(MSR_AMD64_SEV) & MSR_AMD64_SEV_ENABLED);
	for (round = 0;; round++) {
		guest_int3(STACK_GPA + (round + 1) * PAGE_SIZE);
		GUEST_SYNC_ARGS(round, bp_count, bp_bad_rip, ud_count, 0);
	}
}

struct counts {
	u64 bp, bad_rip, ud;
	bool aborted;
};

/*
 * kvm-amd's vCPU stats, svm_guard's sev_skip counters and kvm-amd's
 * kvm_svm_policy_sev_no_insn events (so far) for one mode.
 */
struct verdicts {
	u64 stat_fail, stat_ud;
	u64 upstream, fail, queue_ud;
	u64 tr_upstream, tr_fail, tr_ud;
};

#define TRACE_EVENT_NAME	"kvm_svm_policy_sev_no_insn"

/* Why the events are not checked, if they are not. */
static const char *trace_off;
static u64 tr_upstream, tr_fail, tr_ud;

static struct verdicts read_verdicts(struct kvm_vcpu *vcpu)
{
	static char buf[1 << 18];

	if (!trace_off) {
		svm_guard_trace_take(TRACE_EVENT_NAME, buf, sizeof(buf));
		tr_upstream += svm_guard_trace_lines(buf, "verdict upstream", NULL);
		tr_fail += svm_guard_trace_lines(buf, "verdict fail", "queue_ud 0", NULL);
		tr_ud += svm_guard_trace_lines(buf, "verdict queue_ud", "queue_ud 1", NULL);
	}
	return (struct verdicts){
		.stat_fail = vcpu_get_stat(vcpu, svm_policy_sev_no_insn_fail),
		.stat_ud = vcpu_get_stat(vcpu, svm_policy_sev_no_insn_queue_ud),
		.upstream = svm_guard_counter("sev_skip", "upstream"),
		.fail = svm_guard_counter("sev_skip", "fail"),
		.queue_ud = svm_guard_counter("sev_skip", "queue_ud"),
		.tr_upstream = tr_upstream, .tr_fail = tr_fail, .tr_ud = tr_ud,
	};
}

/* The events must match kvm-amd's stats and the module's upstream count. */
static void check_trace(const char *mode, const struct verdicts *a, const struct verdicts *b)
{
	if (trace_off)
		return;
	TEST_ASSERT(b->tr_fail - a->tr_fail == b->stat_fail - a->stat_fail &&
		    b->tr_ud - a->tr_ud == b->stat_ud - a->stat_ud &&
		    b->tr_upstream - a->tr_upstream == b->upstream - a->upstream,
		    "%s: kvm_svm_policy_sev_no_insn events fail +%lu queue_ud +%lu upstream +%lu; stats fail +%lu queue_ud +%lu, debugfs upstream +%lu",
		    mode, b->tr_fail - a->tr_fail, b->tr_ud - a->tr_ud,
		    b->tr_upstream - a->tr_upstream, b->stat_fail - a->stat_fail,
		    b->stat_ud - a->stat_ud, b->upstream - a->upstream);
}

/* What changed between @a and @b, for the TAP line. */
static const char *verdicts_str(const struct verdicts *a, const struct verdicts *b)
{
	static char buf[160];

	snprintf(buf, sizeof(buf),
		 "stats fail +%lu queue_ud +%lu; debugfs upstream +%lu fail +%lu queue_ud +%lu",
		 b->stat_fail - a->stat_fail, b->stat_ud - a->stat_ud,
		 b->upstream - a->upstream, b->fail - a->fail, b->queue_ud - a->queue_ud);
	return buf;
}

/*
 * Run the guest to its next sync.  A guest assertion fails the test, unless
 * @abort_ok: then it is reported in the result (an exception the guest has
 * no handler for, e.g. #DF, counts as a wrong outcome).
 */
static struct counts run_round(struct kvm_vcpu *vcpu, bool abort_ok)
{
	struct ucall uc;

	if (!svm_guard_run_to_sync(vcpu, &uc, abort_ok))
		return (struct counts){ .aborted = true };
	return (struct counts){ uc.args[2], uc.args[3], uc.args[4], false };
}

static void set_modes(const char *svm_skip, const char *sev_skip)
{
	int r;

	r = svm_guard_set_mode("svm_skip", svm_skip);
	TEST_ASSERT(!r, "svm_skip mode %s: %s", svm_skip, strerror(-r));
	r = svm_guard_set_mode("sev_skip", sev_skip);
	TEST_ASSERT(!r, "sev_skip mode %s: %s", sev_skip, strerror(-r));
}

int main(int argc, char *argv[])
{
	static const char * const names[NR_MODES] = {
		"no module", "sev_skip guard", "upstream", "sev_skip legacy",
	};
	struct counts before, after = {};
	struct kvm_vcpu *vcpu;
	const char *ko_path;
	struct kvm_vm *vm;
	bool was_loaded;
	int m, i, r;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SEV));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SEV_VM));
	ko_path = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	vm = vm_sev_create_with_one_vcpu(KVM_X86_SEV_VM, guest_code, &vcpu);
	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	vm_install_exception_handler(vm, UD_VECTOR, guest_ud_handler);
	/* Never touched by the guest before its round: not mapped by KVM. */
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, STACK_GPA, STACK_SLOT,
				    STACK_PAGES, 0);
	virt_map(vm, STACK_GPA, STACK_GPA, STACK_PAGES);
	vm_sev_launch(vm, SEV_POLICY_NO_DBG, NULL);

	ksft_print_header();
	ksft_set_plan(NR_MODES + 1);
	trace_off = svm_guard_trace_start(TRACE_EVENT_NAME);

	for (m = 0; m < NR_MODES; m++) {
		struct verdicts v0 = {}, v1 = {};

		switch (m) {
		case 0:
			if (svm_guard_loaded())
				TEST_ASSERT(!svm_guard_unload(), "rmmod svm_guard failed");
			break;
		case 1:
			r = svm_guard_load(ko_path, "allow_legacy=1");
			TEST_ASSERT(!r, "insmod %s: %s", ko_path, strerror(-r));
			set_modes("legacy", "guard");
			break;
		case 2:
			set_modes("upstream", "upstream");
			break;
		case 3:
			set_modes("legacy", "legacy");
			break;
		}

		before = after;
		if (m > 0)
			v0 = read_verdicts(vcpu);
		if (m == 3) {
			/*
			 * The proof that the checks catch the bug: kvm-amd queues
			 * #UD for the skip, and the guest sees something wrong (a
			 * #UD, a #BP returning to the INT3 itself, or an exception
			 * it has no handler for).
			 */
			after = run_round(vcpu, true);
			v1 = read_verdicts(vcpu);
			check_trace(names[m], &v0, &v1);

			TEST_ASSERT(v1.stat_ud > v0.stat_ud && v1.queue_ud > v0.queue_ud,
				    "%s: no #UD verdict counted (%s)", names[m],
				    verdicts_str(&v0, &v1));
			TEST_ASSERT(after.aborted || after.ud > before.ud ||
				    after.bad_rip > before.bad_rip || after.bp - before.bp != 1,
				    "%s: the guest saw nothing wrong; the test cannot see the bug",
				    names[m]);
			ksft_test_result_pass("%s: wrong outcome detected (%s); %s\n", names[m],
					      after.aborted ? "unhandled guest exception" :
					      after.ud > before.ud ? "#UD" : "#BP, wrong RIP",
					      verdicts_str(&v0, &v1));
			break;
		}

		for (i = 0; i < ROUNDS; i++)
			after = run_round(vcpu, false);

		TEST_ASSERT(after.bp - before.bp == ROUNDS && after.bad_rip == before.bad_rip,
			    "%s: %lu #BPs for %d INT3s, %lu with a wrong return RIP",
			    names[m], after.bp - before.bp, ROUNDS,
			    after.bad_rip - before.bad_rip);
		TEST_ASSERT(after.ud == before.ud, "%s: the guest got %lu #UDs",
			    names[m], after.ud - before.ud);
		if (m == 0) {
			ksft_test_result_pass("%s: %d INT3s, no #UD\n", names[m], ROUNDS);
			continue;
		}
		v1 = read_verdicts(vcpu);
		check_trace(names[m], &v0, &v1);
		TEST_ASSERT(v1.stat_ud == v0.stat_ud && v1.queue_ud == v0.queue_ud,
			    "%s: a #UD verdict was counted (%s)", names[m],
			    verdicts_str(&v0, &v1));
		if (m == 1)
			TEST_ASSERT(v1.stat_fail > v0.stat_fail && v1.fail > v0.fail,
				    "%s: no failed skip counted, the delivery did not fault (%s)",
				    names[m], verdicts_str(&v0, &v1));
		else
			TEST_ASSERT(v1.upstream > v0.upstream && v1.stat_fail == v0.stat_fail,
				    "%s: the decision was not handed back to kvm-amd (%s)",
				    names[m], verdicts_str(&v0, &v1));
		ksft_test_result_pass("%s: %d INT3s, no #UD; %s\n", names[m], ROUNDS,
				      verdicts_str(&v0, &v1));
	}

	if (!trace_off)
		ksft_print_msg("sev_no_insn events: fail %lu, queue_ud %lu, upstream %lu\n",
			       tr_fail, tr_ud, tr_upstream);
	svm_guard_trace_finish(TRACE_EVENT_NAME, trace_off);

	kvm_vm_free(vm);
	/* Without allow_legacy. */
	svm_guard_restore(ko_path, was_loaded);
	ksft_finished();
}
