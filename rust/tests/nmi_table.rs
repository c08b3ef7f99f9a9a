// SPDX-License-Identifier: GPL-2.0

//! The nmi decision over its whole input space: 3 sites x vNMI x guest mode x SEV-ES = 24 rows,
//! each with the verdict written out (not computed) and the rule it follows.

use svm_guard_host::nmi::{
    nmi_legacy_verdict, nmi_verdict, NmiContext,
    NmiSite::{
        self,
        Inject,
        SetMask, //
    },
    NmiVerdict::{
        self,
        Hardware,
        Software, //
    },
};

/// One input and what guard and legacy must answer.
struct Row {
    ctx: NmiContext,
    guard: NmiVerdict,
    legacy: NmiVerdict,
    rule: &'static str,
}

fn row(
    site: NmiSite,
    vnmi_enabled: bool,
    guest_mode: bool,
    sev_es: bool,
    guard: NmiVerdict,
    legacy: NmiVerdict,
    rule: &'static str,
) -> Row {
    Row {
        ctx: NmiContext {
            site,
            vnmi_enabled,
            guest_mode,
            sev_es,
        },
        guard,
        legacy,
        rule,
    }
}

#[rustfmt::skip]
fn table() -> Vec<Row> {
    // site, vNMI, guest mode, SEV-ES, guard, legacy (before 72046d0a077a), rule.
    vec![
    row(Inject, false, false, false, Software, Software, "R4 no vNMI: KVM tracks, IRET intercepted while masked"),
    row(Inject, true, false, false, Hardware, Software, "R1 vNMI on in the VMCB that runs: hardware tracks blocking"),
    row(Inject, false, true, false, Software, Software, "R4 no vNMI: KVM tracks, IRET intercepted while masked"),
    row(Inject, true, true, false, Software, Software, "R2 guest mode: vNMI is L1's, KVM tracks L2's blocking"),
    row(Inject, false, false, true, Software, Software, "R3 no vNMI, SEV-ES: KVM tracks, NMI_COMPLETE opens the window"),
    row(Inject, true, false, true, Hardware, Software, "R1 vNMI on in the VMCB that runs: hardware tracks blocking"),
    row(Inject, false, true, true, Software, Software, "R3 no vNMI, SEV-ES: KVM tracks, NMI_COMPLETE opens the window"),
    row(Inject, true, true, true, Software, Software, "R2 guest mode: vNMI is L1's, KVM tracks L2's blocking"),
    row(SetMask(true), false, false, false, Software, Software, "R4 no vNMI: KVM tracks, IRET intercepted while masked"),
    row(SetMask(true), true, false, false, Hardware, Hardware, "R1 vNMI on in the VMCB that runs: hardware tracks blocking"),
    row(SetMask(true), false, true, false, Software, Software, "R4 no vNMI: KVM tracks, IRET intercepted while masked"),
    row(SetMask(true), true, true, false, Software, Software, "R2 guest mode: vNMI is L1's, KVM tracks L2's blocking"),
    row(SetMask(true), false, false, true, Software, Software, "R3 no vNMI, SEV-ES: KVM tracks, NMI_COMPLETE opens the window"),
    row(SetMask(true), true, false, true, Hardware, Hardware, "R1 vNMI on in the VMCB that runs: hardware tracks blocking"),
    row(SetMask(true), false, true, true, Software, Software, "R3 no vNMI, SEV-ES: KVM tracks, NMI_COMPLETE opens the window"),
    row(SetMask(true), true, true, true, Software, Software, "R2 guest mode: vNMI is L1's, KVM tracks L2's blocking"),
    row(SetMask(false), false, false, false, Software, Software, "R4 no vNMI: KVM tracks, IRET intercepted while masked"),
    row(SetMask(false), true, false, false, Hardware, Hardware, "R1 vNMI on in the VMCB that runs: hardware tracks blocking"),
    row(SetMask(false), false, true, false, Software, Software, "R4 no vNMI: KVM tracks, IRET intercepted while masked"),
    row(SetMask(false), true, true, false, Software, Software, "R2 guest mode: vNMI is L1's, KVM tracks L2's blocking"),
    row(SetMask(false), false, false, true, Software, Software, "R3 no vNMI, SEV-ES: KVM tracks, NMI_COMPLETE opens the window"),
    row(SetMask(false), true, false, true, Hardware, Hardware, "R1 vNMI on in the VMCB that runs: hardware tracks blocking"),
    row(SetMask(false), false, true, true, Software, Software, "R3 no vNMI, SEV-ES: KVM tracks, NMI_COMPLETE opens the window"),
    row(SetMask(false), true, true, true, Software, Software, "R2 guest mode: vNMI is L1's, KVM tracks L2's blocking"),
    ]
}

#[test]
fn every_input_gets_the_verdict_of_its_rule() {
    let rows = table();
    assert_eq!(rows.len(), 24);
    for r in &rows {
        assert_eq!(
            nmi_verdict(r.ctx),
            r.guard,
            "guard: {:?} ({})",
            r.ctx,
            r.rule
        );
        assert_eq!(
            nmi_legacy_verdict(r.ctx),
            r.legacy,
            "legacy: {:?} ({})",
            r.ctx,
            r.rule
        );
    }
}

#[test]
fn the_table_covers_each_input_once() {
    let rows = table();
    for (i, a) in rows.iter().enumerate() {
        for b in rows.iter().skip(i + 1) {
            assert_ne!(a.ctx, b.ctx);
        }
    }
}

#[test]
fn legacy_differs_from_guard_only_on_injection_with_vnmi() {
    for r in table() {
        let differs = r.guard != r.legacy;
        let expected = r.ctx.site == Inject && r.ctx.vnmi_enabled && !r.ctx.guest_mode;
        assert_eq!(differs, expected, "{:?}", r.ctx);
    }
}
