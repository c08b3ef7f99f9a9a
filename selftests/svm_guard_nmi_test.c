// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_nmi_test
 *
 * NMI storms from the host into a guest without vNMI, in every svm_guard
 * mode.  The host sends NMIs with KVM_NMI: one at a time, two and three back
 * to back, and one or two while the guest's handler runs (the handler stops
 * at a GUEST_SYNC).  Per case and mode the test asserts what is
 * architectural, and what KVM's process_nmi() allows:
 *
 *   - every NMI is delivered, none twice, and no more than process_nmi()
 *     keeps: two of three sent back to back, one of any number sent while
 *     NMIs are blocked;
 *   - the handler never runs nested; an NMI sent while it runs is held until
 *     its IRET (no IRET exit before, NMIs reported masked and one pending)
 *     and delivered right after it, where the first NMI interrupted the
 *     guest;
 *   - without vNMI KVM tracks NMI blocking by intercepting IRET:
 *     nmi_window_exits grows by exactly one per delivered NMI (each
 *     handler's IRET opens the NMI window once);
 *   - the policy's stats match: in guard and legacy one
 *     svm_policy_nmi_inject_software per injection KVM made (nmi_injections,
 *     which also counts re-injections) and the module's own counters agree;
 *     in upstream mode no svm_policy_nmi_* stat moves and the module's
 *     "upstream" counter counts each injection; with no module nothing
 *     moves.
 *
 * Without vNMI every mode must behave the same: legacy differs from guard
 * only when vNMI is on (svm_guard_vnmi_test), so here legacy passing is the
 * expected result, not a missed bug.
 *
 * Needs: SVM, kvm_amd with vnmi=0 (or hardware without vNMI, e.g. QEMU
 * TCG), and svm_guard.ko named by $SVM_GUARD_KO.  The module is reloaded
 * with allow_legacy=1 for the modes and left as the test found it.
 */
#include "svm_guard_nmi_guest.h"

#define NR_ROUNDS	5

static void run_case(struct kvm_vcpu *vcpu, u64 *seen, enum nmi_mode m,
		     const struct nmi_storm_case *c)
{
	u64 sent = NR_ROUNDS * (c->before + c->during);
	u64 delivered = NR_ROUNDS * c->delivered;
	const char *mode = nmi_mode_names[m];
	struct nmi_snapshot d;
	char counts[256];

	nmi_storm_case_run(vcpu, seen, c, NR_ROUNDS, &d);

	TEST_ASSERT(d.stat[NMI_WINDOW_EXITS] == delivered,
		    "%s: %s: %lu NMI window (IRET) exits for %lu NMIs delivered, want one each",
		    mode, c->name, d.stat[NMI_WINDOW_EXITS], delivered);
	TEST_ASSERT(d.stat[NMI_INJECTIONS] >= delivered,
		    "%s: %s: %lu injections for %lu NMIs delivered",
		    mode, c->name, d.stat[NMI_INJECTIONS], delivered);
	nmi_assert_policy_stats(m, &d, 0, c->name);

	snprintf(counts, sizeof(counts),
		 "%lu sent, %lu delivered, %lu window exits, %lu injections, inject_software +%lu, module upstream +%lu inject_software +%lu",
		 sent, delivered, d.stat[NMI_WINDOW_EXITS], d.stat[NMI_INJECTIONS],
		 d.stat[NMI_INTERCEPT_IRET], d.mod[NMI_MOD_UPSTREAM],
		 d.mod[NMI_MOD_INTERCEPT_IRET]);
	ksft_test_result_pass("%s: %s: %s%s\n", mode, c->name, counts,
			      m == NMI_MODE_LEGACY ? " (as guard: no vNMI)" : "");
}

int main(int argc, char *argv[])
{
	return nmi_storm_main(false,
			      "kvm_amd has vnmi=1: svm_guard_vnmi_test covers NMIs with vNMI",
			      run_case);
}
