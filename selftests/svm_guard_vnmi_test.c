// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_vnmi_test
 *
 * The NMI storm of svm_guard_nmi_test (singles, two and three back to back,
 * one or two while the handler runs), with vNMI: hardware tracks NMI
 * blocking, so KVM must not intercept IRET, not even for an NMI it injects
 * itself.  The guest-side assertions are the storm's (every NMI delivered
 * once, none nested, one held while the handler runs and delivered right
 * after its IRET, no more than process_nmi() keeps).
 *
 * Which NMIs does KVM inject itself with vNMI?  process_nmi() hands a
 * pending NMI to hardware in V_NMI_PENDING (svm_set_vnmi_pending(), which
 * counts nmi_injections but never calls svm_inject_nmi()), so a single NMI,
 * and one held while the handler runs, never reach the policy.  Of two NMIs
 * arriving together one goes to V_NMI_PENDING and inject_pending_event()
 * injects the other through svm_inject_nmi(): that one is the policy's
 * INJECT site with vNMI enabled.  So, per mode:
 *
 *   guard: nmi_window_exits does not grow in any case, and
 *     svm_policy_nmi_inject_hardware counts every svm_inject_nmi() call, at
 *     least one per pair, while svm_policy_nmi_inject_software stays put;
 *   legacy (before 72046d0a077a, IRET intercepted on every injection): the
 *     directly injected NMI of each pair costs one IRET exit, so
 *     nmi_window_exits grows by one per pair (and by one for an NMI from
 *     V_NMI_PENDING that KVM had to inject again after a fault during its
 *     delivery) and svm_policy_nmi_inject_software counts the injections;
 *     the test asserts these extra exits, which is what shows it catches
 *     the bug (singles and held NMIs behave as in guard: KVM injects none
 *     of them itself);
 *   upstream and no module: as guard for the exits; no svm_policy_nmi_* stat
 *     moves, upstream mode counts "upstream" per svm_inject_nmi() call.
 *
 * svm_inject_nmi() calls are computed as nmi_injections minus the NMIs
 * handed to V_NMI_PENDING (delivered minus directly injected, per round):
 * re-injections after a fault during delivery also go through
 * svm_inject_nmi().
 *
 * Needs: SVM with vNMI enabled in kvm_amd (vnmi=1; Debian's QEMU does not
 * emulate vNMI, so it skips there) and svm_guard.ko named by $SVM_GUARD_KO.
 * The module is reloaded with allow_legacy=1 for the modes and left as the
 * test found it.
 */
#include "svm_guard_nmi_guest.h"

#define NR_ROUNDS	5

static void run_case(struct kvm_vcpu *vcpu, u64 *seen, enum nmi_mode m,
		     const struct nmi_storm_case *c)
{
	u64 sent = NR_ROUNDS * (c->before + c->during);
	u64 delivered = NR_ROUNDS * c->delivered;
	u64 direct = NR_ROUNDS * c->direct;
	const char *mode = nmi_mode_names[m];
	u64 calls, windows, iret, only;
	struct nmi_snapshot d;
	char counts[256];

	nmi_storm_case_run(vcpu, seen, c, NR_ROUNDS, &d);
	windows = d.stat[NMI_WINDOW_EXITS];
	iret = d.stat[NMI_INTERCEPT_IRET];
	only = d.stat[NMI_INJECT_ONLY];

	/* NMIs handed to V_NMI_PENDING: delivered - direct; the rest were injected. */
	TEST_ASSERT(d.stat[NMI_INJECTIONS] >= delivered,
		    "%s: %s: %lu injections for %lu NMIs delivered",
		    mode, c->name, d.stat[NMI_INJECTIONS], delivered);
	calls = d.stat[NMI_INJECTIONS] - (delivered - direct);
	TEST_ASSERT(calls >= direct,
		    "%s: %s: %lu svm_inject_nmi() calls, want at least %lu (one per pair)",
		    mode, c->name, calls, direct);
	TEST_ASSERT(!d.stat[NMI_MASK_HARDWARE] && !d.stat[NMI_MASK_SOFTWARE],
		    "%s: %s: svm_set_nmi_mask() was called", mode, c->name);

	switch (m) {
	case NMI_MODE_GUARD:
		TEST_ASSERT(windows == 0,
			    "guard: %s: %lu IRET exits with vNMI, want none",
			    c->name, windows);
		TEST_ASSERT(only == calls && iret == 0,
			    "guard: %s: inject_hardware +%lu inject_software +%lu for %lu svm_inject_nmi() calls",
			    c->name, only, iret, calls);
		TEST_ASSERT(d.mod[NMI_MOD_INJECT_ONLY] == only && !d.mod[NMI_MOD_INTERCEPT_IRET] &&
			    !d.mod[NMI_MOD_UPSTREAM],
			    "guard: %s: module counters inject_hardware +%lu inject_software +%lu upstream +%lu",
			    c->name, d.mod[NMI_MOD_INJECT_ONLY],
			    d.mod[NMI_MOD_INTERCEPT_IRET], d.mod[NMI_MOD_UPSTREAM]);
		break;
	case NMI_MODE_LEGACY:
		/*
		 * The bug: one IRET exit per NMI KVM injected itself, at least
		 * one per pair; an NMI injected again after a fault during its
		 * delivery still returns with one IRET.
		 */
		TEST_ASSERT(windows >= direct && windows <= calls,
			    "legacy: %s: %lu IRET exits, want one per NMI KVM injected itself (%lu to %lu)",
			    c->name, windows, direct, calls);
		TEST_ASSERT(iret == calls && only == 0,
			    "legacy: %s: inject_software +%lu inject_hardware +%lu for %lu svm_inject_nmi() calls",
			    c->name, iret, only, calls);
		TEST_ASSERT(d.mod[NMI_MOD_INTERCEPT_IRET] == iret && !d.mod[NMI_MOD_INJECT_ONLY],
			    "legacy: %s: module counters inject_software +%lu inject_hardware +%lu",
			    c->name, d.mod[NMI_MOD_INTERCEPT_IRET], d.mod[NMI_MOD_INJECT_ONLY]);
		break;
	default:
		TEST_ASSERT(windows == 0, "%s: %s: %lu IRET exits with vNMI, want none",
			    mode, c->name, windows);
		TEST_ASSERT(only == 0 && iret == 0,
			    "%s: %s: policy stats moved: inject_hardware +%lu inject_software +%lu",
			    mode, c->name, only, iret);
		TEST_ASSERT(m == NMI_MODE_NONE || d.mod[NMI_MOD_UPSTREAM] == calls,
			    "upstream: %s: module counter upstream +%lu for %lu svm_inject_nmi() calls",
			    c->name, d.mod[NMI_MOD_UPSTREAM], calls);
		break;
	}

	snprintf(counts, sizeof(counts),
		 "%lu sent, %lu delivered, %lu injected by KVM, %lu window exits, inject_hardware +%lu, inject_software +%lu, module upstream +%lu",
		 sent, delivered, calls, windows, only, iret, d.mod[NMI_MOD_UPSTREAM]);
	ksft_test_result_pass("%s: %s: %s%s\n", mode, c->name, counts,
			      m == NMI_MODE_LEGACY && windows ? " (the bug, detected)" : "");
}

int main(int argc, char *argv[])
{
	return nmi_storm_main(true,
			      "kvm_amd has vnmi=0 (this CPU has no vNMI, e.g. the stock QEMU model)",
			      run_case);
}
