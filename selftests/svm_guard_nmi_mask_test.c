// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_nmi_mask_test
 *
 * NMI masking set and cleared from userspace with KVM_SET_VCPU_EVENTS
 * (read-modify-write of nmi.masked) while an NMI is pending, in every
 * svm_guard mode.  Each KVM_SET_VCPU_EVENTS calls svm_set_nmi_mask(), the
 * SET_MASK site of the nmi hook.  Cases:
 *
 *   - an NMI sent with KVM_NMI, then NMIs masked;
 *   - nmi.pending = 1 and nmi.masked = 1 in one call, as a restore does;
 *   - NMIs masked, then two NMIs sent (x86 latches one while blocked);
 *   - an NMI sent, NMIs masked, and the guest's own IRET, not the host,
 *     ends the blocking.
 *
 * While NMIs are masked the guest runs several times to its next sync and
 * must not see the NMI; KVM reports it pending and NMIs masked, and no NMI
 * window (IRET) exit happens.  Delivery resumes exactly when the masking
 * ends: the next run delivers one NMI, and only one; after the guest's IRET
 * it interrupts the guest at the instruction right after that IRET.
 *
 * Stats: without vNMI KVM tracks the masking (the IRET intercept), so each
 * KVM_SET_VCPU_EVENTS counts one svm_policy_nmi_mask_software in guard and
 * legacy (legacy only differs at injection with vNMI), kvm-amd's stats and
 * the module's counters agree, IRET exits are one per handler plus one for
 * the guest's own IRET; upstream mode moves no svm_policy_nmi_* stat and
 * counts "upstream" once per call; with no module nothing moves.  With vNMI
 * (not available under QEMU TCG) hardware tracks the masking:
 * svm_policy_nmi_mask_hardware instead, and no IRET exits at all.
 *
 * Needs: SVM, svm_guard.ko named by $SVM_GUARD_KO, and a kernel whose hook
 * series asks the policy at svm_set_nmi_mask() (the vCPU stats
 * svm_policy_nmi_mask_{hardware,software}); without them the test fails
 * saying so.  The module is reloaded with allow_legacy=1 for the modes and
 * left as the test found it.
 */
#include "svm_guard_nmi_guest.h"

#define NR_ROUNDS	3
#define NR_MASKED_RUNS	5

struct mask_case {
	const char *name;
	int before;		/* KVM_NMIs before NMIs are masked */
	bool restore;		/* mask with nmi.pending = 1 in the same call */
	int while_masked;	/* KVM_NMIs while NMIs are masked */
	bool guest_iret;	/* the guest's IRET ends the masking */
};

static const struct mask_case cases[] = {
	{ "NMI pending, then masked", 1, false, 0, false },
	{ "pending and masked in one call", 0, true, 0, false },
	{ "masked, then two NMIs (one kept)", 0, false, 2, false },
	{ "NMI pending, masked, guest IRET unmasks", 1, false, 0, true },
};

static bool vnmi;
static u64 set_calls;

/* KVM_SET_VCPU_EVENTS with nmi.masked = @masked; nmi.pending = @pending if >= 0. */
static void set_nmi_masked(struct kvm_vcpu *vcpu, bool masked, int pending)
{
	struct kvm_vcpu_events events;

	vcpu_events_get(vcpu, &events);
	events.nmi.masked = masked;
	if (pending >= 0) {
		events.nmi.pending = pending;
		events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
	} else {
		events.flags &= ~KVM_VCPUEVENT_VALID_NMI_PENDING;
	}
	vcpu_events_set(vcpu, &events);
	set_calls++;
}

static u64 window_exits(struct kvm_vcpu *vcpu)
{
	return vcpu_get_stat(vcpu, nmi_window_exits);
}

static void mask_round(struct kvm_vcpu *vcpu, u64 *seen, const struct mask_case *c)
{
	u64 window;
	int i;

	nmi_send(vcpu, c->before);
	set_nmi_masked(vcpu, true, c->restore ? 1 : -1);
	nmi_send(vcpu, c->while_masked);
	nmi_assert_events(vcpu, 1, true, c->name);

	window = window_exits(vcpu);
	for (i = 0; i < NR_MASKED_RUNS; i++)
		nmi_run_main(vcpu, seen, 0, "NMIs masked by KVM_SET_VCPU_EVENTS");
	TEST_ASSERT(window_exits(vcpu) == window,
		    "%s: %s: %lu NMI window exits while NMIs were masked",
		    nmi_mode_now, c->name, window_exits(vcpu) - window);
	nmi_assert_events(vcpu, 1, true, "after running with NMIs masked");

	if (c->guest_iret) {
		nmi_guest_request_iret(vcpu->vm);
		nmi_run_main(vcpu, seen, 1, "the guest's IRET ended NMI blocking");
		TEST_ASSERT(nmi_guest_rip(vcpu->vm, *seen) == (u64)nmi_after_iret,
			    "%s: %s: the NMI interrupted the guest at 0x%lx, not right after its IRET (0x%lx)",
			    nmi_mode_now, c->name, nmi_guest_rip(vcpu->vm, *seen),
			    (u64)nmi_after_iret);
	} else {
		set_nmi_masked(vcpu, false, -1);
		nmi_run_main(vcpu, seen, 1, "NMIs unmasked by KVM_SET_VCPU_EVENTS");
	}
	nmi_assert_events(vcpu, 0, false, c->name);
	for (i = 0; i < NR_MASKED_RUNS; i++)
		nmi_run_main(vcpu, seen, 0, "after the pending NMI was delivered");
}

/* With vNMI hardware tracks the masking, and no NMI here is injected by KVM. */
static void assert_vnmi_stats(enum nmi_mode m, const struct nmi_snapshot *d, u64 sets,
			      const char *what)
{
	bool decides = m == NMI_MODE_GUARD || m == NMI_MODE_LEGACY;
	const char *mode = nmi_mode_names[m];

	TEST_ASSERT(!d->stat[NMI_INJECT_ONLY] && !d->stat[NMI_INTERCEPT_IRET] &&
		    !d->stat[NMI_MASK_SOFTWARE],
		    "%s: %s: inject_hardware +%lu inject_software +%lu mask_software +%lu with vNMI, want 0",
		    mode, what, d->stat[NMI_INJECT_ONLY], d->stat[NMI_INTERCEPT_IRET],
		    d->stat[NMI_MASK_SOFTWARE]);
	TEST_ASSERT(d->stat[NMI_MASK_HARDWARE] == (decides ? sets : 0),
		    "%s: %s: svm_policy_nmi_mask_hardware +%lu for %lu KVM_SET_VCPU_EVENTS",
		    mode, what, d->stat[NMI_MASK_HARDWARE], sets);
	if (m == NMI_MODE_NONE)
		return;
	TEST_ASSERT(d->mod[NMI_MOD_MASK_HARDWARE] == d->stat[NMI_MASK_HARDWARE] &&
		    d->mod[NMI_MOD_UPSTREAM] == (decides ? 0 : sets),
		    "%s: %s: module counters mask_hardware +%lu upstream +%lu for %lu calls",
		    mode, what, d->mod[NMI_MOD_MASK_HARDWARE], d->mod[NMI_MOD_UPSTREAM], sets);
}

static void run_case(struct kvm_vcpu *vcpu, u64 *seen, enum nmi_mode m,
		     const struct mask_case *c)
{
	u64 want_windows = vnmi ? 0 : NR_ROUNDS * (1 + c->guest_iret);
	const char *how = vnmi ? "hardware" : "software";
	const char *mode = nmi_mode_names[m];
	struct nmi_snapshot before, after, d;
	u64 sets, first = *seen;
	char counts[256];
	int i;

	nmi_snapshot(vcpu, &before);
	set_calls = 0;
	for (i = 0; i < NR_ROUNDS; i++)
		mask_round(vcpu, seen, c);
	sets = set_calls;
	nmi_snapshot(vcpu, &after);
	nmi_delta(&d, &after, &before);

	TEST_ASSERT(d.stat[NMI_WINDOW_EXITS] == want_windows,
		    "%s: %s: %lu NMI window (IRET) exits, want %lu",
		    mode, c->name, d.stat[NMI_WINDOW_EXITS], want_windows);
	if (vnmi)
		assert_vnmi_stats(m, &d, sets, c->name);
	else
		nmi_assert_policy_stats(m, &d, sets, c->name);

	snprintf(counts, sizeof(counts),
		 "%lu delivered, %lu KVM_SET_VCPU_EVENTS, %lu window exits, %lu injections, mask_%s +%lu, inject_software +%lu, module upstream +%lu mask_%s +%lu",
		 *seen - first, sets, d.stat[NMI_WINDOW_EXITS], d.stat[NMI_INJECTIONS],
		 how, d.stat[vnmi ? NMI_MASK_HARDWARE : NMI_MASK_SOFTWARE],
		 d.stat[NMI_INTERCEPT_IRET], d.mod[NMI_MOD_UPSTREAM], how,
		 d.mod[vnmi ? NMI_MOD_MASK_HARDWARE : NMI_MOD_MASK_SOFTWARE]);
	ksft_test_result_pass("%s: %s: %s\n", mode, c->name, counts);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	const char *ko;
	bool was_loaded;
	unsigned int c;
	u64 seen = 0;
	int m;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();
	vnmi = get_kvm_amd_param_bool("vnmi");

	vm = nmi_guest_create(&vcpu);
	nmi_require_mask_stats(vcpu);
	nmi_enter_mode(ko, NMI_MODE_NONE);
	nmi_run_main(vcpu, &seen, 0, "start");
	/* Fault in what the first delivery touches, with the module unloaded. */
	nmi_send(vcpu, 1);
	nmi_run_main(vcpu, &seen, 1, "warm-up");

	ksft_print_header();
	ksft_set_plan(NR_NMI_MODES * ARRAY_SIZE(cases));
	ksft_print_msg("kvm_amd vnmi=%d\n", vnmi);

	for (m = 0; m < NR_NMI_MODES; m++) {
		nmi_enter_mode(ko, m);
		for (c = 0; c < ARRAY_SIZE(cases); c++)
			run_case(vcpu, &seen, m, &cases[c]);
	}

	kvm_vm_free(vm);
	svm_guard_restore(ko, was_loaded);
	ksft_finished();
}
