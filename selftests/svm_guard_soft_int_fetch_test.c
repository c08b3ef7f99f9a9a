// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_soft_int_fetch_test
 *
 * The bytes at CS:RIP that decide a soft interrupt's skip are read as the
 * CPU fetches them, not as data.  KVM re-injects a soft event that was
 * being delivered (here: restored with KVM_SET_VCPU_EVENTS, as after a
 * migration) by skipping the instruction at CS:RIP; kvm-amd fetches the
 * bytes there for the policy as the emulator does.  Where the CPU cannot
 * fetch them, the skip fails, the event is dropped, and the guest re-runs
 * the instruction and takes the fault a fetch takes:
 *
 *   int3 on an executable page: #BP returning after it (control);
 *   int3 on a page made non-executable: #PF on the fetch at CS:RIP;
 *   compatibility mode, int3 as the last byte within the CS limit: #BP
 *     returning after it (control);
 *   compatibility mode, int3 one byte past the CS limit: #GP(0) at CS:RIP;
 *   compatibility mode, int 0x20 within the CS limit: INT 0x20 (control);
 *   compatibility mode, int 0x20 whose immediate is past the CS limit:
 *     #GP(0) at CS:RIP.
 *
 * Each case runs without svm_guard and with it in the modes guard,
 * upstream and legacy, and must give the same outcome in all: the one
 * Linux 7.3.4's emulator gives.  A data read would let guard skip the
 * bytes it can read and deliver #BP or INT 0x20 where the CPU faults.
 *
 * When the event is dropped, the guest re-runs the instruction on the
 * CPU underneath (L0).  QEMU's TCG checks NX on a fetch but not the CS
 * limit, so there the instruction past the limit runs instead of raising
 * #GP: for those fetch_cases the run without svm_guard may show either, and
 * every mode must then show what it showed; the verdict itself is
 * checked through the stats and the trace.
 * kvm-amd's svm_policy_soft_int_* stats must count guard's skip or drop,
 * legacy's unchecked skip, and nothing for upstream; where tracefs has
 * kvm:kvm_svm_policy_soft_int, each case must trace one event with that
 * verdict and the number of bytes fetched.
 */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_guard_module.h"
#include "svm_guard_trace.h"

#define TRACE_EVENT_NAME	"kvm_svm_policy_soft_int"

/* The selftest library's 64-bit code selector (lib/x86/processor.c). */
#define LIB_KERNEL_CS	0x08
/* A 32-bit code segment for compatibility mode: only its cache is used. */
#define COMPAT_CS	0x30

/* Offsets of the instructions in their code page. */
#define INT3_OFF	0x100
#define INT20_OFF	0x200

enum fetch_case {
	CASE_INT3_EXEC,
	CASE_INT3_NX,
	CASE_COMPAT_INT3_AT_LIMIT,
	CASE_COMPAT_INT3_PAST_LIMIT,
	CASE_COMPAT_INT20_WITHIN_LIMIT,
	CASE_COMPAT_INT20_ACROSS_LIMIT,
	NR_CASES,
};

struct fetch_case_desc {
	const char *name;
	bool nx, compat;
	u64 off;		/* INT3_OFF or INT20_OFF */
	int limit_off;		/* compat: CS limit relative to the instruction */
	int vector;		/* what the guest must see */
	u64 rip_off;		/* where it must return, relative to the instruction */
	int l0_vector;		/* ... or, on an L0 that does not check the CS */
	u64 l0_rip_off;		/* limit on a fetch (0: no such case) */
	bool skip;		/* guard's verdict: skip (else drop) */
	int fetched;		/* bytes kvm-amd can fetch (capped at 15) */
};

static const struct fetch_case_desc fetch_cases[NR_CASES] = {
	[CASE_INT3_EXEC] = { "int3 on an executable page", false, false,
			     INT3_OFF, 0, BP_VECTOR, 1, 0, 0, true, 15 },
	[CASE_INT3_NX] = { "int3 on a page made non-executable", true, false,
			   INT3_OFF, 0, PF_VECTOR, 0, 0, 0, false, 0 },
	[CASE_COMPAT_INT3_AT_LIMIT] = { "compat int3 as the last byte within the CS limit",
					false, true, INT3_OFF, 0, BP_VECTOR, 1, 0, 0, true, 1 },
	[CASE_COMPAT_INT3_PAST_LIMIT] = { "compat int3 one byte past the CS limit",
					  false, true, INT3_OFF, -1, GP_VECTOR, 0,
					  BP_VECTOR, 1, false, 0 },
	[CASE_COMPAT_INT20_WITHIN_LIMIT] = { "compat int 0x20 within the CS limit",
					     false, true, INT20_OFF, 1, 0x20, 2, 0, 0, true, 2 },
	[CASE_COMPAT_INT20_ACROSS_LIMIT] = { "compat int 0x20 with its immediate past the CS limit",
					     false, true, INT20_OFF, 0, GP_VECTOR, 0,
					     0x20, 2, false, 1 },
};

static const char l0_note[] =
	" (the instruction ran: L0 does not check the CS limit on a fetch)";

/* Whether the run without svm_guard showed the L0 outcome, per case. */
static bool l0_outcome[NR_CASES];

/* Guest side: every event lands here, is recorded, and returns to guest_landing(). */
struct guest_hit {
	u64 count, vector, rip, cs, error_code, cr2;
};

static struct guest_hit hit;

/* Mapped in the guest's page tables, with no memslot behind it. */
#define MMIO_GVA	0xc0000000ull

static void guest_landing(void)
{
	for (;;) {
		GUEST_SYNC(0);
		/* An exit without a NextRIP, see set_up_case(). */
		WRITE_ONCE(*(u64 *)MMIO_GVA, 0);
	}
}

static void guest_handler(struct ex_regs *regs)
{
	hit.count++;
	hit.vector = regs->vector;
	hit.rip = regs->rip;
	hit.cs = regs->cs;
	hit.error_code = regs->error_code;
	hit.cr2 = regs->vector == PF_VECTOR ? get_cr2() : 0;
	regs->rip = (u64)guest_landing;
	regs->cs = LIB_KERNEL_CS;
}

/* Host side. */
static struct kvm_vm *vm;
static struct kvm_regs regs0;
static struct kvm_sregs sregs0;
static gva_t exec_page, nx_page;
static const char *trace_off;

/* kvm-amd's stats, and the module's count of upstream verdicts. */
struct soft_stats {
	u64 skip, drop, unchecked, upstream;
};

static struct soft_stats soft_stats(struct kvm_vcpu *vcpu)
{
	return (struct soft_stats) {
		.skip = vcpu_get_stat(vcpu, svm_policy_soft_int_skip),
		.drop = vcpu_get_stat(vcpu, svm_policy_soft_int_drop),
		.unchecked = vcpu_get_stat(vcpu, svm_policy_soft_int_skip_unchecked),
		.upstream = svm_guard_loaded() ? svm_guard_counter("svm_skip", "upstream") : 0,
	};
}

/* Put the vCPU at the case's instruction with its event pending re-injection. */
static void set_up_case(struct kvm_vcpu *vcpu, enum fetch_case c)
{
	struct kvm_vcpu_events events;
	struct kvm_sregs sregs = sregs0;
	struct kvm_regs regs = regs0;
	u64 page = fetch_cases[c].nx ? nx_page : exec_page;

	/*
	 * The guest is at its GUEST_SYNC.  KVM keeps the NextRIP of an I/O
	 * exit until the next VMRUN and would skip to it, not decode CS:RIP:
	 * end the ucall's I/O, run the guest to its MMIO write (an exit with
	 * no NextRIP) and end that, so that the state set below is what KVM
	 * injects from.
	 */
	vcpu_run_complete_io(vcpu);
	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_MMIO);
	vcpu_run_complete_io(vcpu);

	if (fetch_cases[c].compat) {
		/* CS.base is the page, so EIP is the offset; byte-granular limit. */
		sregs.cs.base = page;
		sregs.cs.limit = (u32)(fetch_cases[c].off + fetch_cases[c].limit_off);
		sregs.cs.selector = COMPAT_CS;
		sregs.cs.type = 0xb;
		sregs.cs.s = 1;
		sregs.cs.present = 1;
		sregs.cs.dpl = 0;
		sregs.cs.db = 1;
		sregs.cs.l = 0;
		sregs.cs.g = 0;
		regs.rip = fetch_cases[c].off;
	} else {
		regs.rip = page + fetch_cases[c].off;
	}
	vcpu_sregs_set(vcpu, &sregs);
	vcpu_regs_set(vcpu, &regs);

	vcpu_events_get(vcpu, &events);
	if (fetch_cases[c].off == INT3_OFF) {
		events.exception.injected = 1;
		events.exception.nr = BP_VECTOR;
		events.exception.has_error_code = 0;
	} else {
		events.interrupt.injected = 1;
		events.interrupt.nr = 0x20;
		events.interrupt.soft = 1;
	}
	vcpu_events_set(vcpu, &events);

	memset(&hit, 0, sizeof(hit));
	sync_global_to_guest(vm, hit);
}

/*
 * NULL if the guest saw the case's outcome, else what it saw.  Without
 * svm_guard (@first), an L0 outcome is taken and remembered; with it, the
 * outcome must be the one seen without.
 */
static const char *check_outcome(enum fetch_case c, bool first)
{
	u64 site = fetch_cases[c].compat ? fetch_cases[c].off :
		   (fetch_cases[c].nx ? nx_page : exec_page) + fetch_cases[c].off;
	int vector = fetch_cases[c].vector;
	u64 rip_off = fetch_cases[c].rip_off;
	static char why[192];

	sync_global_from_guest(vm, hit);
	if (first && fetch_cases[c].l0_vector)
		l0_outcome[c] = hit.vector == (u64)fetch_cases[c].l0_vector &&
				hit.rip == site + fetch_cases[c].l0_rip_off;
	if (l0_outcome[c]) {
		vector = fetch_cases[c].l0_vector;
		rip_off = fetch_cases[c].l0_rip_off;
	}
	if (hit.count != 1 || hit.vector != (u64)vector || hit.rip != site + rip_off) {
		snprintf(why, sizeof(why),
			 "%lu events, the last vector 0x%lx returning to 0x%lx (cs 0x%lx, error 0x%lx); want vector 0x%x returning to 0x%lx",
			 hit.count, hit.vector, hit.rip, hit.cs, hit.error_code,
			 vector, site + rip_off);
		return why;
	}
	if (fetch_cases[c].vector == PF_VECTOR &&
	    (hit.cr2 != site || !(hit.error_code & PFERR_FETCH_MASK))) {
		snprintf(why, sizeof(why),
			 "#PF with CR2 site%+ld, error 0x%lx; want a fetch at site",
			 (long)(hit.cr2 - site), hit.error_code);
		return why;
	}
	if (fetch_cases[c].vector == GP_VECTOR && hit.error_code) {
		snprintf(why, sizeof(why), "#GP(0x%lx), want #GP(0)", hit.error_code);
		return why;
	}
	return NULL;
}

static char trace_buf[4096];
static int trace_n;

/*
 * The trace of one case, checked against the @counted verdicts that
 * kvm-amd's stats (the module's counter for upstream) counted.
 */
static void check_trace(const char *mode, enum fetch_case c, const char *verdict,
			u64 counted)
{
	const char *buf = trace_buf;
	int n = trace_n;
	char want_len[32];

	snprintf(want_len, sizeof(want_len), "insn_len %d", fetch_cases[c].fetched);
	TEST_ASSERT(n == (int)counted &&
		    svm_guard_trace_lines(buf, verdict, "readable 1", want_len,
					  fetch_cases[c].compat ? "mode compat" : "mode long64",
					  NULL) == n,
		    "%s: %s: %d trace events, want %lu, each with %s, readable 1, %s: %s",
		    mode, fetch_cases[c].name, n, counted, verdict, want_len, buf);
}

static void run_mode(struct kvm_vcpu *vcpu, const char *mode)
{
	bool guard = !strcmp(mode, "guard"), legacy = !strcmp(mode, "legacy");
	bool loaded = strcmp(mode, "no module");
	struct soft_stats before, after;
	struct ucall uc;
	const char *why, *verdict;
	int c;

	for (c = 0; c < NR_CASES; c++) {
		set_up_case(vcpu, c);
		before = soft_stats(vcpu);
		svm_guard_run_to_sync(vcpu, &uc, false);
		after = soft_stats(vcpu);
		if (loaded && !trace_off)
			trace_n = svm_guard_trace_take(TRACE_EVENT_NAME, trace_buf,
						       sizeof(trace_buf));

		why = check_outcome(c, !loaded);
		TEST_ASSERT(!why, "%s: %s: %s; stats skip +%lu drop +%lu unchecked +%lu; trace: %s",
			    mode, fetch_cases[c].name, why, after.skip - before.skip,
			    after.drop - before.drop, after.unchecked - before.unchecked,
			    trace_off ? trace_off : trace_buf);

		if (guard) {
			u64 skips = after.skip - before.skip, drops = after.drop - before.drop;
			/*
			 * A delivery that faults (e.g. a #NPF on the stack) is
			 * re-injected and skipped again: a skip case may count
			 * more than one; a dropped event is not delivered at all.
			 */
			bool ok = fetch_cases[c].skip ? skips >= 1 && !drops : drops == 1 && !skips;

			verdict = fetch_cases[c].skip ? "verdict skip" : "verdict drop";
			TEST_ASSERT(ok, "guard: %s: policy stats skip +%lu drop +%lu, want %s",
				    fetch_cases[c].name, skips, drops, verdict);
		} else if (legacy) {
			verdict = "verdict skip_unchecked";
			TEST_ASSERT(after.unchecked > before.unchecked,
				    "legacy: %s: no unchecked skip counted", fetch_cases[c].name);
		} else {
			verdict = "verdict upstream";
			TEST_ASSERT(after.skip == before.skip && after.drop == before.drop &&
				    after.unchecked == before.unchecked,
				    "%s: %s: policy stats moved", mode, fetch_cases[c].name);
			TEST_ASSERT(!loaded || after.upstream > before.upstream,
				    "%s: %s: the module counted no upstream verdict", mode,
				    fetch_cases[c].name);
		}
		if (loaded && !trace_off)
			check_trace(mode, c, verdict, after.skip - before.skip +
				    after.drop - before.drop + after.unchecked - before.unchecked +
				    after.upstream - before.upstream);
		ksft_test_result_pass("%s: %s%s\n", mode, fetch_cases[c].name,
				      l0_outcome[c] ? l0_note : "");
	}
}

int main(int argc, char *argv[])
{
	static const char * const modes[] = { "no module", "guard", "upstream", "legacy" };
	static const u8 int3 = 0xcc, int20[2] = { 0xcd, 0x20 };
	struct kvm_vcpu *vcpu;
	const char *ko_path;
	bool was_loaded;
	unsigned int m;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko_path = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	vm = vm_create_with_one_vcpu(&vcpu, guest_landing);
	vm_install_exception_handler(vm, BP_VECTOR, guest_handler);
	vm_install_exception_handler(vm, GP_VECTOR, guest_handler);
	vm_install_exception_handler(vm, PF_VECTOR, guest_handler);
	vm_install_exception_handler(vm, 0x20, guest_handler);

	/* Both pages stay below 4 GiB, as compatibility mode needs. */
	exec_page = vm_alloc_page(vm);
	nx_page = vm_alloc_page(vm);
	TEST_ASSERT(exec_page < (1ull << 32) && nx_page < (1ull << 32),
		    "code pages at 0x%lx and 0x%lx, want them below 4 GiB", exec_page, nx_page);
	memset(addr_gva2hva(vm, exec_page), 0x90, getpagesize());
	memset(addr_gva2hva(vm, nx_page), 0x90, getpagesize());
	memcpy(addr_gva2hva(vm, exec_page + INT3_OFF), &int3, 1);
	memcpy(addr_gva2hva(vm, nx_page + INT3_OFF), &int3, 1);
	memcpy(addr_gva2hva(vm, exec_page + INT20_OFF), int20, 2);
	*vm_get_pte(vm, nx_page) |= PTE_NX_MASK(&vm->mmu);

	virt_map(vm, MMIO_GVA, MMIO_GVA, 1);

	vcpu_regs_get(vcpu, &regs0);
	vcpu_sregs_get(vcpu, &sregs0);
	TEST_ASSERT(sregs0.efer & EFER_NX, "the guest runs without EFER.NXE");
	regs0.rflags = X86_EFLAGS_FIXED;

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(modes) * NR_CASES + 1);

	/* To the guest's first GUEST_SYNC, where every case starts. */
	svm_guard_run_to_sync(vcpu, &(struct ucall){}, false);

	trace_off = svm_guard_trace_start(TRACE_EVENT_NAME);
	for (m = 0; m < ARRAY_SIZE(modes); m++) {
		svm_guard_use_mode(ko_path, "allow_legacy=1", "svm_skip", m ? modes[m] : NULL);
		run_mode(vcpu, modes[m]);
	}
	svm_guard_trace_finish(TRACE_EVENT_NAME, trace_off);

	kvm_vm_free(vm);

	/* Without allow_legacy. */
	svm_guard_restore(ko_path, was_loaded);
	ksft_finished();
}
