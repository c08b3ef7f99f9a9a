// SPDX-License-Identifier: GPL-2.0

//! Decides whether injecting an NMI must make KVM intercept the guest's IRET.
//!
//! Without virtual NMI (vNMI), KVM tracks NMI blocking itself: after injecting an NMI it marks
//! NMIs masked and intercepts IRET, which tells it the handler is done and the NMI window is
//! open again. With vNMI enabled in the VMCB that runs, hardware sets and clears the blocking
//! itself, also for an NMI KVM injects directly, so intercepting IRET only costs exits.
//!
//! This file uses only `core`: it is built into the module and into the host test crate.

/// What KVM knows when it injects an NMI of its own (not one L1 injects into L2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NmiInjectContext {
    /// vNMI is enabled in the VMCB of L1 (false in guest mode: vNMI applies to L1 only).
    pub vnmi_enabled: bool,
}

/// How KVM injects the NMI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmiInjectVerdict {
    /// Inject only; hardware (vNMI) tracks NMI blocking.
    InjectOnly,
    /// Inject, mark NMIs masked and intercept IRET to learn when the handler returns.
    InjectAndInterceptIret,
}

/// Decides whether injecting an NMI in `ctx` needs the IRET intercept.
pub fn nmi_inject_verdict(ctx: NmiInjectContext) -> NmiInjectVerdict {
    if ctx.vnmi_enabled {
        NmiInjectVerdict::InjectOnly
    } else {
        NmiInjectVerdict::InjectAndInterceptIret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iret_is_intercepted_exactly_without_vnmi() {
        assert_eq!(
            nmi_inject_verdict(NmiInjectContext {
                vnmi_enabled: false
            }),
            NmiInjectVerdict::InjectAndInterceptIret
        );
        assert_eq!(
            nmi_inject_verdict(NmiInjectContext { vnmi_enabled: true }),
            NmiInjectVerdict::InjectOnly
        );
    }
}
