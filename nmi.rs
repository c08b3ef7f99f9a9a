// SPDX-License-Identifier: GPL-2.0

//! Decides who tracks NMI blocking when kvm-amd sets it: hardware (vNMI) or KVM.
//!
//! Without virtual NMI (vNMI), KVM tracks NMI blocking itself: after injecting an NMI it marks
//! NMIs masked and intercepts IRET, which tells it the handler is done and the NMI window is
//! open again. With vNMI enabled in the VMCB that runs, hardware sets and clears the blocking
//! itself, also for an NMI KVM injects directly, so intercepting IRET only costs exits.
//!
//! kvm-amd asks at two sites: when it injects an NMI of its own (`svm_inject_nmi()`), and when
//! NMIs become masked or unmasked (`svm_set_nmi_mask()`: `KVM_SET_VCPU_EVENTS`, SMM entry and
//! RSM, an IRET the emulator runs in real mode). The rule is the same at both: hardware tracks
//! the blocking exactly when vNMI is enabled in the VMCB that runs. That is never the case in
//! guest mode: vNMI applies to L1's VMCB only (an L1 that enables vNMI for L2 has its NMIs for
//! L2 tracked by the hardware through L1's own VMCB12, not by this decision). SEV-ES does not
//! change the rule: without vNMI KVM tracks the blocking, and since it cannot intercept an
//! SEV-ES guest's IRET, the guest's NMI_COMPLETE request opens the window instead.
//!
//! This file uses only `core`: it is built into the module and into the host test crate.

/// Where kvm-amd sets NMI blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmiSite {
    /// KVM injects an NMI of its own (not one L1 injects into L2).
    Inject,
    /// NMIs become masked (`true`) or unmasked (`false`).
    SetMask(bool),
}

/// What kvm-amd knows when it sets NMI blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NmiContext {
    /// The site.
    pub site: NmiSite,
    /// vNMI is enabled in the VMCB that runs (L1's; false in guest mode).
    pub vnmi_enabled: bool,
    /// The vCPU runs L2.
    pub guest_mode: bool,
    /// The guest is SEV-ES.
    pub sev_es: bool,
}

/// Who tracks NMI blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmiVerdict {
    /// Hardware (vNMI): no IRET intercept; masking goes to `V_NMI_BLOCKING`.
    Hardware,
    /// KVM: NMIs marked masked in software and IRET intercepted while they are (for SEV-ES,
    /// NMI_COMPLETE ends the handler).
    Software,
}

/// Decides who tracks NMI blocking in `ctx`.
pub fn nmi_verdict(ctx: NmiContext) -> NmiVerdict {
    if ctx.vnmi_enabled && !ctx.guest_mode {
        NmiVerdict::Hardware
    } else {
        NmiVerdict::Software
    }
}

/// The verdict before the vNMI fix: every injection marked NMIs masked and intercepted IRET,
/// vNMI or not; masking through `svm_set_nmi_mask()` already followed vNMI.
pub fn nmi_legacy_verdict(ctx: NmiContext) -> NmiVerdict {
    match ctx.site {
        NmiSite::Inject => NmiVerdict::Software,
        NmiSite::SetMask(_) => nmi_verdict(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iret_is_intercepted_on_injection_exactly_without_vnmi() {
        let ctx = |vnmi_enabled| NmiContext {
            site: NmiSite::Inject,
            vnmi_enabled,
            guest_mode: false,
            sev_es: false,
        };
        assert_eq!(nmi_verdict(ctx(false)), NmiVerdict::Software);
        assert_eq!(nmi_verdict(ctx(true)), NmiVerdict::Hardware);
        // The bug the legacy mode reproduces: IRET intercepted although vNMI is on.
        assert_eq!(nmi_legacy_verdict(ctx(true)), NmiVerdict::Software);
    }
}
