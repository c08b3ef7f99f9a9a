// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_nmi_nested_test
 *
 * NMIs for L1 while L2 runs (nested SVM), in every svm_guard mode.  L1 runs
 * L2 with the selftest library's SVM helpers and the two share one IDT and
 * NMI handler, which counts deliveries per level.  L2 stops at a GUEST_SYNC
 * in every loop (its port I/O is not intercepted by L1), and the host sends
 * NMIs with KVM_NMI while it is there, i.e. while L2 runs.
 *
 * With L1 intercepting NMI in VMCB12, an NMI makes KVM emulate
 * #VMEXIT(SVM_EXIT_NMI) to L1 and the NMI stays pending, held by GIF = 0
 * after the #VMEXIT, until L1 executes STGI: L1's handler must then see it,
 * interrupting L1 right after its STGI.  Two NMIs sent back to back give one
 * #VMEXIT and two NMIs in L1 (the second right after the first one's IRET);
 * one sent while L1's handler runs (stopped at a GUEST_SYNC) waits for that
 * handler's IRET.  Without the intercept the NMI is delivered in L2 itself.
 * Asserted per case and mode:
 *
 *   - L1's NMIs are neither lost nor doubled across the nested #VMEXITs:
 *     L1's handler counts exactly the NMIs process_nmi() keeps, with
 *     exactly one #VMEXIT(NMI) per round, and none reaches L2; without the
 *     intercept L2 counts them and L1 sees no #VMEXIT; the handler never
 *     runs nested;
 *   - KVM keeps tracking NMI blocking with the IRET intercept, for L1 and
 *     for L2 (vNMI is off for L2 unless L1 enables nested vNMI, which it
 *     does not here): nmi_window_exits grows by exactly one per delivered
 *     NMI, and in guard and legacy svm_policy_nmi_inject_software counts
 *     every injection (nmi_injections), also those made while the vCPU is
 *     in guest mode; upstream mode moves no svm_policy_nmi_* stat and counts
 *     "upstream" once per injection; no module, nothing moves.
 *
 * Needs: SVM, svm_guard.ko named by $SVM_GUARD_KO.  With vNMI on for L1
 * (kvm_amd vnmi=1) hardware tracks L1's NMI blocking, so the cases with the
 * intercept are skipped there (svm_guard_vnmi_test covers L1 with vNMI); the
 * L2 cases run everywhere.  The module is reloaded with allow_legacy=1 for
 * the modes and left as the test found it.
 */
#include "svm_guard_nmi.h"
#include "svm_util.h"

#define NR_ROUNDS	4

/* args[1] of a GUEST_SYNC: who stopped. */
#define SYNC_L1			1
#define SYNC_L2			2
#define SYNC_IN_HANDLER		3

#define NR_L2_RIPS		8

/* Guest side, written by L1, L2 and the handler. */
static u64 nmi_level;		/* 1 while L1 runs, 2 while L2 does */
static u64 nmis[3];		/* NMIs the handler saw, per level */
static u64 nmi_in_handler;
static u64 l2_rip[NR_L2_RIPS];	/* where L2's NMI n interrupted it */
static u64 nmi_exits;		/* #VMEXIT(NMI) L1 handled */
/* Written by the host. */
static u64 intercept_nmi;	/* L1 intercepts NMI in VMCB12 */
static u64 l2_exit;		/* L2 exits to L1 with VMMCALL at its next loop */
static u64 nmi_hold;		/* the next handler stops at a GUEST_SYNC */

/* Where L1 resumes after its STGI: the label in l1_stgi(). */
static u64 l1_stgi_resume_rip(void)
{
	u64 rip;

	asm("lea l1_after_stgi(%%rip), %0" : "=r"(rip));
	return rip;
}

static void nmi_handler(struct ex_regs *regs)
{
	u64 level = READ_ONCE(nmi_level);
	u64 n = READ_ONCE(nmis[level]) + 1;

	GUEST_ASSERT(!READ_ONCE(nmi_in_handler));
	WRITE_ONCE(nmi_in_handler, 1);
	WRITE_ONCE(nmis[level], n);
	/* L1 gets its NMI when it sets GIF, or right after its previous IRET there. */
	if (level == 1)
		GUEST_ASSERT_EQ(regs->rip, l1_stgi_resume_rip());
	else
		WRITE_ONCE(l2_rip[(n - 1) % NR_L2_RIPS], regs->rip);
	if (READ_ONCE(nmi_hold)) {
		WRITE_ONCE(nmi_hold, 0);
		GUEST_SYNC_ARGS(SYNC_IN_HANDLER, level, n, 0, 0);
	}
	WRITE_ONCE(nmi_in_handler, 0);
}

static void l2_guest_code(void)
{
	for (;;) {
		if (READ_ONCE(l2_exit)) {
			WRITE_ONCE(l2_exit, 0);
			vmmcall();
		}
		GUEST_SYNC_ARGS(SYNC_L2, READ_ONCE(nmis[2]), READ_ONCE(nmis[1]),
				READ_ONCE(nmi_exits), 0);
	}
}

static noinline void l1_stgi(void)
{
	asm volatile("stgi\n\t"
		     ".globl l1_after_stgi\n"
		     "l1_after_stgi:\n\t"
		     ::: "memory");
}

static void l1_guest_code(struct svm_test_data *svm)
{
	struct vmcb *vmcb = svm->vmcb;
	u64 exit_code;

	WRITE_ONCE(nmi_level, 1);
	generic_svm_setup(svm, l2_guest_code);
	for (;;) {
		if (READ_ONCE(intercept_nmi))
			vmcb->control.intercept |= BIT_ULL(INTERCEPT_NMI);
		else
			vmcb->control.intercept &= ~BIT_ULL(INTERCEPT_NMI);
		vmcb->control.clean = 0;

		clgi();
		WRITE_ONCE(nmi_level, 2);
		run_guest(vmcb, svm->vmcb_gpa);
		WRITE_ONCE(nmi_level, 1);

		exit_code = vmcb->control.exit_code;
		if (exit_code == SVM_EXIT_NMI)
			WRITE_ONCE(nmi_exits, nmi_exits + 1);
		else if (exit_code == SVM_EXIT_VMMCALL)
			vmcb->save.rip += 3;
		else
			GUEST_FAIL("L2 exit 0x%lx, info1 0x%lx, info2 0x%lx", exit_code,
				   vmcb->control.exit_info_1, vmcb->control.exit_info_2);
		/* A held NMI for L1 arrives here. */
		l1_stgi();
		GUEST_SYNC_ARGS(SYNC_L1, exit_code, READ_ONCE(nmis[1]),
				READ_ONCE(nmi_exits), 0);
	}
}

struct nested_case {
	const char *name;
	bool intercept;
	int before, during;	/* KVM_NMIs while L2 runs / while L1's handler does */
	int l1, l2, exits;	/* per round: NMIs in L1 and in L2, #VMEXIT(NMI) */
};

static const struct nested_case cases[] = {
	{ "L1 intercepts NMI: one NMI", true, 1, 0, 1, 0, 1 },
	{ "L1 intercepts NMI: two NMIs back to back", true, 2, 0, 2, 0, 1 },
	{ "L1 intercepts NMI: one more while L1's handler runs", true, 1, 1, 2, 0, 1 },
	{ "no intercept: one NMI, delivered in L2", false, 1, 0, 0, 1, 0 },
	{ "no intercept: two NMIs back to back, in L2", false, 2, 0, 0, 2, 0 },
};

/* What the guest reported at L2's last sync. */
struct l2_view {
	u64 l2_nmis, l1_nmis, exits;
};

static void run_to_l2(struct kvm_vcpu *vcpu, struct l2_view *v, const char *what)
{
	struct ucall uc;

	svm_guard_run_to_sync(vcpu, &uc, false);
	TEST_ASSERT(uc.args[1] == SYNC_L2, "%s: %s: sync %lu, want L2's",
		    nmi_mode_now, what, uc.args[1]);
	v->l2_nmis = uc.args[2];
	v->l1_nmis = uc.args[3];
	v->exits = uc.args[4];
}

static void send_nmis(struct kvm_vcpu *vcpu, int n)
{
	while (n--)
		vcpu_ioctl(vcpu, KVM_NMI, NULL);
}

/* Have L1 (un)set the NMI intercept: L2 exits to it with VMMCALL. */
static void set_intercept(struct kvm_vcpu *vcpu, struct l2_view *v, bool on)
{
	struct kvm_vm *vm = vcpu->vm;
	struct ucall uc;

	intercept_nmi = on;
	sync_global_to_guest(vm, intercept_nmi);
	l2_exit = 1;
	sync_global_to_guest(vm, l2_exit);
	svm_guard_run_to_sync(vcpu, &uc, false);
	TEST_ASSERT(uc.args[1] == SYNC_L1 && uc.args[2] == SVM_EXIT_VMMCALL,
		    "switching the NMI intercept: sync %lu exit 0x%lx", uc.args[1], uc.args[2]);
	run_to_l2(vcpu, v, "after switching the NMI intercept");
}

static void round_once(struct kvm_vcpu *vcpu, struct l2_view *v, const struct nested_case *c)
{
	struct kvm_vm *vm = vcpu->vm;
	struct l2_view now;
	struct ucall uc;
	u64 n;

	TEST_ASSERT(vcpu_get_stat(vcpu, guest_mode) == 1, "%s: %s: the vCPU is not running L2",
		    nmi_mode_now, c->name);
	send_nmis(vcpu, c->before);
	if (c->during) {
		nmi_hold = 1;
		sync_global_to_guest(vm, nmi_hold);
		nmi_hold = 0;
		svm_guard_run_to_sync(vcpu, &uc, false);
		TEST_ASSERT(uc.args[1] == SYNC_IN_HANDLER && uc.args[2] == 1 &&
			    uc.args[3] == v->l1_nmis + 1,
			    "%s: %s: L1's handler did not stop (sync %lu level %lu NMI #%lu)",
			    nmi_mode_now, c->name, uc.args[1], uc.args[2], uc.args[3]);
		nmi_assert_events(vcpu, 0, true, "inside L1's handler");
		send_nmis(vcpu, c->during);
		nmi_assert_events(vcpu, 1, true, "NMI sent while L1's handler runs");
	}
	if (c->intercept) {
		svm_guard_run_to_sync(vcpu, &uc, false);
		TEST_ASSERT(uc.args[1] == SYNC_L1 && uc.args[2] == SVM_EXIT_NMI,
			    "%s: %s: sync %lu exit 0x%lx, want L1 after #VMEXIT(NMI)",
			    nmi_mode_now, c->name, uc.args[1], uc.args[2]);
		TEST_ASSERT(uc.args[3] == v->l1_nmis + c->l1,
			    "%s: %s: L1's handler saw %lu NMIs after the #VMEXIT, want %d",
			    nmi_mode_now, c->name, uc.args[3] - v->l1_nmis, c->l1);
	}
	run_to_l2(vcpu, &now, c->name);
	TEST_ASSERT(now.l1_nmis == v->l1_nmis + c->l1 && now.l2_nmis == v->l2_nmis + c->l2 &&
		    now.exits == v->exits + c->exits,
		    "%s: %s: L1 saw %lu NMIs (want %d), L2 %lu (want %d), L1 handled %lu #VMEXIT(NMI) (want %d)",
		    nmi_mode_now, c->name, now.l1_nmis - v->l1_nmis, c->l1,
		    now.l2_nmis - v->l2_nmis, c->l2, now.exits - v->exits, c->exits);
	if (c->l2 > 1) {
		sync_global_from_guest(vm, l2_rip);
		for (n = v->l2_nmis + 2; n <= now.l2_nmis; n++)
			TEST_ASSERT(l2_rip[(n - 1) % NR_L2_RIPS] == l2_rip[v->l2_nmis % NR_L2_RIPS],
				    "%s: %s: L2's NMIs interrupted it at 0x%lx and 0x%lx",
				    nmi_mode_now, c->name, l2_rip[v->l2_nmis % NR_L2_RIPS],
				    l2_rip[(n - 1) % NR_L2_RIPS]);
	}
	nmi_assert_events(vcpu, 0, false, c->name);
	*v = now;
}

static void run_case(struct kvm_vcpu *vcpu, struct l2_view *v, enum nmi_mode m,
		     const struct nested_case *c, bool vnmi)
{
	u64 sent = NR_ROUNDS * (c->before + c->during);
	u64 delivered = NR_ROUNDS * (c->l1 + c->l2);
	const char *mode = nmi_mode_names[m];
	struct nmi_snapshot before, after, d;
	u64 exits = v->exits;
	char counts[256];
	int i;

	if (c->intercept && vnmi) {
		ksft_test_result_skip("%s: %s: vNMI on for L1, hardware tracks its NMI blocking\n",
				      mode, c->name);
		return;
	}

	set_intercept(vcpu, v, c->intercept);
	nmi_snapshot(vcpu, &before);
	for (i = 0; i < NR_ROUNDS; i++)
		round_once(vcpu, v, c);
	nmi_snapshot(vcpu, &after);
	nmi_delta(&d, &after, &before);

	TEST_ASSERT(d.stat[NMI_WINDOW_EXITS] == delivered,
		    "%s: %s: %lu NMI window (IRET) exits for %lu NMIs delivered, want one each",
		    mode, c->name, d.stat[NMI_WINDOW_EXITS], delivered);
	nmi_assert_policy_stats(m, &d, 0, c->name);

	snprintf(counts, sizeof(counts),
		 "%lu sent, %lu delivered (L1 %lu, L2 %lu), %lu #VMEXIT(NMI), %lu window exits, %lu injections, inject_software +%lu, module upstream +%lu inject_software +%lu",
		 sent, delivered, NR_ROUNDS * (u64)c->l1, NR_ROUNDS * (u64)c->l2,
		 v->exits - exits, d.stat[NMI_WINDOW_EXITS], d.stat[NMI_INJECTIONS],
		 d.stat[NMI_INTERCEPT_IRET], d.mod[NMI_MOD_UPSTREAM],
		 d.mod[NMI_MOD_INTERCEPT_IRET]);
	ksft_test_result_pass("%s: %s: %s\n", mode, c->name, counts);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct l2_view view;
	struct kvm_vm *vm;
	gva_t svm_gva;
	const char *ko;
	bool was_loaded, vnmi;
	unsigned int c;
	int m;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();
	vnmi = get_kvm_amd_param_bool("vnmi");

	/* Warm up with the module unloaded, as the first mode runs. */
	nmi_enter_mode(ko, NMI_MODE_NONE);
	vm = vm_create_with_one_vcpu(&vcpu, l1_guest_code);
	vm_install_exception_handler(vm, NMI_VECTOR, nmi_handler);
	vcpu_alloc_svm(vm, &svm_gva);
	vcpu_args_set(vcpu, 1, svm_gva);
	run_to_l2(vcpu, &view, "start");

	/* Unmeasured: fault in what the first deliveries touch, in L1 and L2. */
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		if (cases[c].intercept && vnmi)
			continue;
		set_intercept(vcpu, &view, cases[c].intercept);
		round_once(vcpu, &view, &cases[c]);
	}

	ksft_print_header();
	ksft_set_plan(NR_NMI_MODES * ARRAY_SIZE(cases));
	ksft_print_msg("kvm_amd vnmi=%d\n", vnmi);

	for (m = 0; m < NR_NMI_MODES; m++) {
		nmi_enter_mode(ko, m);
		for (c = 0; c < ARRAY_SIZE(cases); c++)
			run_case(vcpu, &view, m, &cases[c], vnmi);
	}

	kvm_vm_free(vm);
	svm_guard_restore(ko, was_loaded);
	ksft_finished();
}
