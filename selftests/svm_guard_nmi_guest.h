/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest of the svm_guard NMI storm and masking selftests, and the storm
 * itself.
 *
 * The guest's NMI handler counts deliveries, records where each one
 * interrupted the guest, asserts that it never runs nested, and, when the
 * host asks, stops inside itself at a GUEST_SYNC so that the host can send
 * NMIs while the handler runs.  The main loop reports the count at each
 * GUEST_SYNC and, when the host asks, first executes an IRET to the next
 * instruction (which ends NMI blocking just as a handler's IRET does).
 */
#ifndef SELFTEST_SVM_GUARD_NMI_GUEST_H
#define SELFTEST_SVM_GUARD_NMI_GUEST_H

#include "svm_guard_nmi.h"

/* Where the guest stopped: args[1] of its GUEST_SYNC. */
#define NMI_SYNC_MAIN		1
#define NMI_SYNC_IN_HANDLER	2

#define NMI_NR_RIPS		8

/* Written by the guest's handler. */
static u64 nmi_count, nmi_in_handler;
/* Where delivery n interrupted the guest: nmi_rip[(n - 1) % NMI_NR_RIPS]. */
static u64 nmi_rip[NMI_NR_RIPS];
/* Written by the host: stop in the next handler; IRET before the next sync. */
static u64 nmi_hold, nmi_do_iret;

extern char nmi_after_iret[];

static void nmi_guest_handler(struct ex_regs *regs)
{
	u64 n = READ_ONCE(nmi_count) + 1;

	/* NMIs are blocked until this handler's IRET. */
	GUEST_ASSERT(!READ_ONCE(nmi_in_handler));
	WRITE_ONCE(nmi_in_handler, 1);
	WRITE_ONCE(nmi_count, n);
	WRITE_ONCE(nmi_rip[(n - 1) % NMI_NR_RIPS], regs->rip);
	if (READ_ONCE(nmi_hold)) {
		WRITE_ONCE(nmi_hold, 0);
		GUEST_SYNC_ARGS(NMI_SYNC_IN_HANDLER, n, regs->rip, 0, 0);
	}
	WRITE_ONCE(nmi_in_handler, 0);
}

/* IRET to the next instruction, nmi_after_iret, on the same stack. */
static noinline void nmi_guest_iret(void)
{
	asm volatile("mov %%rsp, %%rax\n\t"
		     "push %[ss]\n\t"
		     "push %%rax\n\t"
		     "pushf\n\t"
		     "push %[cs]\n\t"
		     "lea nmi_after_iret(%%rip), %%rax\n\t"
		     "push %%rax\n\t"
		     "iretq\n"
		     ".globl nmi_after_iret\n"
		     "nmi_after_iret:\n\t"
		     :: [ss] "r"((u64)get_ss()), [cs] "r"((u64)get_cs())
		     : "rax", "memory");
}

static void nmi_guest_code(void)
{
	for (;;) {
		if (READ_ONCE(nmi_do_iret)) {
			WRITE_ONCE(nmi_do_iret, 0);
			nmi_guest_iret();
		}
		GUEST_SYNC_ARGS(NMI_SYNC_MAIN, READ_ONCE(nmi_count), 0, 0, 0);
	}
}

static inline struct kvm_vm *nmi_guest_create(struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, nmi_guest_code);

	vm_install_exception_handler(vm, NMI_VECTOR, nmi_guest_handler);
	return vm;
}

static inline void nmi_send(struct kvm_vcpu *vcpu, int n)
{
	while (n--)
		vcpu_ioctl(vcpu, KVM_NMI, NULL);
}

/* Ask the guest to stop in its next NMI handler, or to IRET before its next sync. */
static inline void nmi_guest_hold(struct kvm_vm *vm)
{
	nmi_hold = 1;
	sync_global_to_guest(vm, nmi_hold);
	nmi_hold = 0;
}

static inline void nmi_guest_request_iret(struct kvm_vm *vm)
{
	nmi_do_iret = 1;
	sync_global_to_guest(vm, nmi_do_iret);
	nmi_do_iret = 0;
}

/* Where delivery @n (counting from 1) interrupted the guest. */
static inline u64 nmi_guest_rip(struct kvm_vm *vm, u64 n)
{
	sync_global_from_guest(vm, nmi_rip);
	return nmi_rip[(n - 1) % NMI_NR_RIPS];
}

/*
 * Run the guest to its next sync in the main loop; it must have seen
 * @*seen + @want NMIs there.  Updates @*seen.
 */
static inline void nmi_run_main(struct kvm_vcpu *vcpu, u64 *seen, u64 want, const char *what)
{
	struct ucall uc;

	svm_guard_run_to_sync(vcpu, &uc, false);
	TEST_ASSERT(uc.args[1] == NMI_SYNC_MAIN,
		    "%s: %s: the guest stopped in its NMI handler (NMI #%lu), want its main loop",
		    nmi_mode_now, what, uc.args[2]);
	TEST_ASSERT(uc.args[2] == *seen + want,
		    "%s: %s: the guest saw %lu NMIs, want %lu",
		    nmi_mode_now, what, uc.args[2] - *seen, want);
	*seen = uc.args[2];
}

/*
 * The NMI storm: per round the host sends @before NMIs with KVM_NMI and runs
 * the guest; with @during, the first NMI's handler stops and the host sends
 * @during more while it runs.  The guest must see @delivered per round:
 *
 *   - process_nmi() lets two NMIs be pending while NMIs are unmasked and no
 *     NMI is being injected, and one while they are masked: three sent back
 *     to back give two, any number sent while the handler runs gives one
 *     (x86 latches one NMI while NMIs are blocked);
 *   - an NMI sent while the handler runs stays pending until the handler's
 *     IRET and is delivered right after it: it interrupts the guest where
 *     the first NMI did, before the interrupted code runs again.
 *
 * @direct: with vNMI, how many of a round's NMIs KVM injects itself
 * (svm_inject_nmi()); it hands the others to hardware in V_NMI_PENDING.  Of
 * two NMIs arriving together process_nmi() gives one to V_NMI_PENDING and
 * inject_pending_event() injects the other; single NMIs, and one held while
 * the handler runs, only ever go to V_NMI_PENDING.
 */
struct nmi_storm_case {
	const char *name;
	int before, during, delivered, direct;
};

static const struct nmi_storm_case nmi_storm_cases[] = {
	{ "one NMI", 1, 0, 1, 0 },
	{ "two NMIs back to back", 2, 0, 2, 1 },
	{ "three NMIs back to back (two kept)", 3, 0, 2, 1 },
	{ "one NMI while the handler runs", 1, 1, 2, 0 },
	{ "two NMIs while the handler runs (one kept)", 1, 2, 2, 0 },
};

#define NR_NMI_STORM_CASES	ARRAY_SIZE(nmi_storm_cases)

static inline void nmi_storm_round(struct kvm_vcpu *vcpu, u64 *seen,
				   const struct nmi_storm_case *c)
{
	struct kvm_vm *vm = vcpu->vm;
	u64 first = *seen + 1, window, rip, n;
	struct ucall uc;

	kvm_get_stat(&vcpu->stats, "nmi_window_exits", &window, 1);
	nmi_send(vcpu, c->before);
	if (c->during) {
		u64 now;

		nmi_guest_hold(vm);
		svm_guard_run_to_sync(vcpu, &uc, false);
		TEST_ASSERT(uc.args[1] == NMI_SYNC_IN_HANDLER && uc.args[2] == first,
			    "%s: %s: the guest did not stop in the handler of NMI #%lu (sync %lu, count %lu)",
			    nmi_mode_now, c->name, first, uc.args[1], uc.args[2]);
		kvm_get_stat(&vcpu->stats, "nmi_window_exits", &now, 1);
		TEST_ASSERT(now == window,
			    "%s: %s: %lu NMI window exits before the handler's IRET",
			    nmi_mode_now, c->name, now - window);
		nmi_assert_events(vcpu, 0, true, "inside the handler");
		nmi_send(vcpu, c->during);
		nmi_assert_events(vcpu, 1, true, "NMIs sent while the handler runs");
	}
	nmi_run_main(vcpu, seen, c->delivered, c->name);

	rip = nmi_guest_rip(vm, first);
	for (n = first + 1; n <= *seen; n++)
		TEST_ASSERT(nmi_guest_rip(vm, n) == rip,
			    "%s: %s: NMI #%lu interrupted the guest at 0x%lx, the first at 0x%lx: not delivered right after the IRET",
			    nmi_mode_now, c->name, n - first + 1, nmi_guest_rip(vm, n), rip);
	nmi_assert_events(vcpu, 0, false, c->name);
}

/* Run @rounds rounds of @c; @d gets the stats' and counters' growth. */
static inline void nmi_storm_case_run(struct kvm_vcpu *vcpu, u64 *seen,
				      const struct nmi_storm_case *c, int rounds,
				      struct nmi_snapshot *d)
{
	struct nmi_snapshot before, after;
	int i;

	nmi_snapshot(vcpu, &before);
	for (i = 0; i < rounds; i++)
		nmi_storm_round(vcpu, seen, c);
	nmi_snapshot(vcpu, &after);
	nmi_delta(d, &after, &before);
}

/*
 * One round of each case, not measured: the first deliveries may fault on
 * the IDT, handler and stack pages and be injected again.
 */
static inline void nmi_storm_warm_up(struct kvm_vcpu *vcpu, u64 *seen)
{
	unsigned int c;

	for (c = 0; c < NR_NMI_STORM_CASES; c++)
		nmi_storm_round(vcpu, seen, &nmi_storm_cases[c]);
}

/* Checks one storm case in one mode and reports its TAP line. */
typedef void (*nmi_storm_check_t)(struct kvm_vcpu *vcpu, u64 *seen, enum nmi_mode m,
				  const struct nmi_storm_case *c);

/*
 * The storm tests' main: skip unless kvm_amd's vnmi is @vnmi (@why says
 * why), warm up with the module unloaded as the first mode runs, then
 * @check every case in every mode and leave the module as it was found.
 */
static inline int nmi_storm_main(bool vnmi, const char *why, nmi_storm_check_t check)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	const char *ko;
	bool was_loaded;
	unsigned int c;
	u64 seen = 0;
	int m;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	__TEST_REQUIRE(get_kvm_amd_param_bool("vnmi") == vnmi, "%s", why);
	ko = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	nmi_enter_mode(ko, NMI_MODE_NONE);
	vm = nmi_guest_create(&vcpu);
	nmi_run_main(vcpu, &seen, 0, "start");
	nmi_storm_warm_up(vcpu, &seen);

	ksft_print_header();
	ksft_set_plan(NR_NMI_MODES * NR_NMI_STORM_CASES);

	for (m = 0; m < NR_NMI_MODES; m++) {
		nmi_enter_mode(ko, m);
		for (c = 0; c < NR_NMI_STORM_CASES; c++)
			check(vcpu, &seen, m, &nmi_storm_cases[c]);
	}

	kvm_vm_free(vm);
	svm_guard_restore(ko, was_loaded);
	ksft_finished();
}

#endif /* SELFTEST_SVM_GUARD_NMI_GUEST_H */
