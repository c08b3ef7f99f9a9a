// SPDX-License-Identifier: GPL-2.0

//! The hooks kvm-amd calls: each turns its plain-data context into a pure decision's input,
//! applies the path's mode, counts, and returns kvm-amd's verdict.
//!
//! The contexts and verdicts are those of `srctree/arch/x86/include/asm/kvm_svm_policy.h`.

use crate::debugfs::{
    GhcbCounter,
    Mode,
    NmiCounter,
    PathState,
    SevSkipCounter,
    SkipCounter,
    GHCB,
    NMI,
    SEV_SKIP,
    SVM_SKIP, //
};
use crate::ghcb::{
    validate,
    validate_msr,
    BeyondUpstream,
    GhcbRequest,
    GhcbVerdict,
    MalformedReason,
    MsrVerdict, //
};
use crate::nmi::{
    nmi_legacy_verdict,
    nmi_verdict,
    NmiContext,
    NmiSite,
    NmiVerdict, //
};
use crate::svm_skip::{
    decide_skip,
    sev_no_insn_verdict,
    CpuMode,
    PendingEvent,
    SevNoInsnVerdict,
    SkipVerdict, //
};
use kernel::bindings;

/// Maps the hook's CPU mode to the decision's; `None` for a value this module does not know.
fn cpu_mode(raw: u8) -> Option<CpuMode> {
    Some(match u32::from(raw) {
        bindings::kvm_svm_policy_cpu_mode_KVM_SVM_POLICY_MODE_REAL => CpuMode::Real,
        bindings::kvm_svm_policy_cpu_mode_KVM_SVM_POLICY_MODE_VM86 => CpuMode::Vm86,
        bindings::kvm_svm_policy_cpu_mode_KVM_SVM_POLICY_MODE_PROT16 => CpuMode::Protected16,
        bindings::kvm_svm_policy_cpu_mode_KVM_SVM_POLICY_MODE_PROT32 => CpuMode::Protected32,
        bindings::kvm_svm_policy_cpu_mode_KVM_SVM_POLICY_MODE_COMPAT => CpuMode::Compat,
        bindings::kvm_svm_policy_cpu_mode_KVM_SVM_POLICY_MODE_LONG64 => CpuMode::Long64,
        _ => return None,
    })
}

/// Decides a soft interrupt re-injection.
fn soft_int(ctx: &mut bindings::kvm_svm_policy_soft_int) -> u32 {
    match SVM_SKIP.mode() {
        Mode::Upstream => {
            SVM_SKIP.count(SkipCounter::Upstream);
            return bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_UPSTREAM;
        }
        Mode::Legacy => {
            SVM_SKIP.count(SkipCounter::SkipUnchecked);
            return bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_SKIP_UNCHECKED;
        }
        Mode::Guard => {}
    }
    let Some(mode) = cpu_mode(ctx.cpu_mode) else {
        SVM_SKIP.count(SkipCounter::Upstream);
        return bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_UPSTREAM;
    };
    let event = PendingEvent { vector: ctx.vector };
    // More valid bytes than the buffer holds would be a kvm-amd bug; `get` turns it into
    // "no bytes", which drops the event.
    let bytes = if ctx.insn_readable != 0 {
        ctx.insn.get(..usize::from(ctx.insn_len))
    } else {
        None
    };
    match decide_skip(bytes, mode, event) {
        SkipVerdict::Skip { len } => {
            SVM_SKIP.count(SkipCounter::Skip);
            ctx.skip_len = len;
            bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_SKIP
        }
        SkipVerdict::DropAndRetry(_) => {
            SVM_SKIP.count(SkipCounter::Drop);
            bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_DROP
        }
    }
}

/// Decides an SEV emulation without instruction bytes.
fn sev_no_insn(ctx: &bindings::kvm_svm_policy_sev_no_insn) -> u32 {
    let verdict = match SEV_SKIP.mode() {
        Mode::Upstream => {
            SEV_SKIP.count(SevSkipCounter::Upstream);
            return bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_UPSTREAM;
        }
        // Before the fix, a skip without bytes queued #UD like any other emulation.
        Mode::Legacy => SevNoInsnVerdict::QueueUd,
        Mode::Guard => sev_no_insn_verdict(ctx.skip != 0),
    };
    match verdict {
        SevNoInsnVerdict::Fail => {
            SEV_SKIP.count(SevSkipCounter::Fail);
            bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_FAIL
        }
        SevNoInsnVerdict::QueueUd => {
            SEV_SKIP.count(SevSkipCounter::QueueUd);
            bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_QUEUE_UD
        }
    }
}

/// Decides who tracks NMI blocking where kvm-amd sets it.
fn nmi(ctx: &bindings::kvm_svm_policy_nmi) -> u32 {
    let mode = NMI.mode();
    if mode == Mode::Upstream {
        NMI.count(NmiCounter::Upstream);
        return bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_UPSTREAM;
    }
    let site = if u32::from(ctx.site)
        == bindings::kvm_svm_policy_nmi_site_KVM_SVM_POLICY_NMI_SITE_INJECT
    {
        NmiSite::Inject
    } else if u32::from(ctx.site)
        == bindings::kvm_svm_policy_nmi_site_KVM_SVM_POLICY_NMI_SITE_SET_MASK
    {
        NmiSite::SetMask(ctx.masked != 0)
    } else {
        // A site this module does not know: kvm-amd decides.
        NMI.count(NmiCounter::Upstream);
        return bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_UPSTREAM;
    };
    let input = NmiContext {
        site,
        vnmi_enabled: ctx.vnmi_enabled != 0,
        guest_mode: ctx.guest_mode != 0,
        sev_es: ctx.sev_es != 0,
    };
    let verdict = match mode {
        // Before the fix, every NMI injection intercepted IRET, vNMI or not.
        Mode::Legacy => nmi_legacy_verdict(input),
        _ => nmi_verdict(input),
    };
    let counter = match (site, verdict) {
        (NmiSite::Inject, NmiVerdict::Hardware) => NmiCounter::InjectHardware,
        (NmiSite::Inject, NmiVerdict::Software) => NmiCounter::InjectSoftware,
        (NmiSite::SetMask(_), NmiVerdict::Hardware) => NmiCounter::MaskHardware,
        (NmiSite::SetMask(_), NmiVerdict::Software) => NmiCounter::MaskSoftware,
    };
    NMI.count(counter);
    match verdict {
        NmiVerdict::Hardware => bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_HARDWARE,
        NmiVerdict::Software => bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_SOFTWARE,
    }
}

impl From<MalformedReason> for GhcbCounter {
    fn from(reason: MalformedReason) -> Self {
        match reason {
            MalformedReason::NotRegistered => GhcbCounter::NotRegistered,
            MalformedReason::InvalidUsage => GhcbCounter::InvalidUsage,
            MalformedReason::InvalidScratchArea => GhcbCounter::InvalidScratchArea,
            MalformedReason::MissingInput => GhcbCounter::MissingInput,
            MalformedReason::InvalidInput => GhcbCounter::InvalidInput,
            MalformedReason::InvalidEvent => GhcbCounter::InvalidEvent,
        }
    }
}

impl From<BeyondUpstream> for GhcbCounter {
    fn from(case: BeyondUpstream) -> Self {
        match case {
            BeyondUpstream::StringIoCount => GhcbCounter::StringIoCount,
            BeyondUpstream::StringIoOverflow => GhcbCounter::StringIoOverflow,
            BeyondUpstream::ScratchOutsideMemory => GhcbCounter::ScratchOutsideMemory,
            BeyondUpstream::MsrSnpOnly => GhcbCounter::MsrSnpOnly,
            BeyondUpstream::IoioSize => GhcbCounter::IoioSize,
        }
    }
}

/// Returns the pure validator's view of a GHCB-page request.
fn ghcb_request(ctx: &bindings::kvm_svm_policy_ghcb) -> GhcbRequest {
    GhcbRequest {
        exit_code: ctx.exit_code,
        exit_info_1: ctx.exit_info_1,
        exit_info_2: ctx.exit_info_2,
        valid_bitmap: ctx.valid_bitmap,
        rax: ctx.rax,
        sw_scratch: ctx.sw_scratch,
        ghcb_gpa: ctx.ghcb_gpa,
        registered_gpa: ctx.registered_gpa,
        scratch_mapped: ctx.scratch_mapped,
        vmsa_features: ctx.vmsa_features,
        reserved_gpa_bits: ctx.reserved_gpa_bits,
        usage: ctx.usage,
        ghcb_version: ctx.ghcb_version,
        snp: ctx.snp != 0,
        ap_target: ctx.ap_target != 0,
    }
}

/// Validates a GHCB request (page or MSR protocol) in `path`'s mode and tells kvm-amd how to
/// answer it; counts in `path`.
pub(crate) fn ghcb_verdict(
    path: &PathState<GhcbCounter>,
    ctx: &mut bindings::kvm_svm_policy_ghcb,
) -> u32 {
    let mode = path.mode();
    if mode == Mode::Upstream {
        path.count(GhcbCounter::Upstream);
        return bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM;
    }
    let msr_protocol = ctx.msr_protocol != 0;
    let broken = if msr_protocol {
        match validate_msr(ctx.ghcb_gpa, ctx.snp != 0) {
            MsrVerdict::Handle => None,
            MsrVerdict::Ignore(rule) => Some(rule),
        }
    } else {
        match validate(&ghcb_request(ctx)) {
            GhcbVerdict::Accept => None,
            GhcbVerdict::Malformed(rule) => Some(rule),
        }
    };
    let Some(rule) = broken else {
        path.count(GhcbCounter::Accept);
        return bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_ACCEPT;
    };
    // Before the fix, a request that failed validation ended the guest.
    if mode == Mode::Legacy {
        path.count(GhcbCounter::Terminate);
        return bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_TERMINATE;
    }
    let reason = rule.reason();
    let beyond = rule.beyond_upstream();
    // CAST: reason codes are 1 to 6, rule and case numbers below 32.
    ctx.reason = reason as u8;
    ctx.rule = rule as u8;
    ctx.beyond = beyond.map_or(0, |case| case as u8);
    // An MSR-protocol request gets no answer, so no reason is given to the guest.
    if !msr_protocol {
        path.count(GhcbCounter::from(reason));
    }
    if let Some(case) = beyond {
        path.count(GhcbCounter::from(case));
    }
    bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_MALFORMED
}

/// Trampoline for `kvm_svm_policy_ops::soft_int`.
///
/// # Safety
///
/// `ctx` must be null or valid for reads and writes, and not accessed by anything else, for the
/// duration of the call. kvm-amd passes a context on its stack.
pub(crate) unsafe extern "C" fn soft_int_hook(ctx: *mut bindings::kvm_svm_policy_soft_int) -> u32 {
    // SAFETY: By the safety requirements, `ctx` is null or valid and exclusive during the call.
    match unsafe { ctx.as_mut() } {
        Some(ctx) => soft_int(ctx),
        None => bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_UPSTREAM,
    }
}

/// Trampoline for `kvm_svm_policy_ops::sev_no_insn`.
///
/// # Safety
///
/// `ctx` must be null or valid for reads for the duration of the call.
pub(crate) unsafe extern "C" fn sev_no_insn_hook(
    ctx: *const bindings::kvm_svm_policy_sev_no_insn,
) -> u32 {
    // SAFETY: By the safety requirements, `ctx` is null or valid for reads during the call.
    match unsafe { ctx.as_ref() } {
        Some(ctx) => sev_no_insn(ctx),
        None => bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_UPSTREAM,
    }
}

/// Trampoline for `kvm_svm_policy_ops::nmi`.
///
/// # Safety
///
/// `ctx` must be null or valid for reads for the duration of the call.
pub(crate) unsafe extern "C" fn nmi_hook(ctx: *const bindings::kvm_svm_policy_nmi) -> u32 {
    // SAFETY: By the safety requirements, `ctx` is null or valid for reads during the call.
    match unsafe { ctx.as_ref() } {
        Some(ctx) => nmi(ctx),
        None => bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_UPSTREAM,
    }
}

/// Trampoline for `kvm_svm_policy_ops::ghcb`.
///
/// # Safety
///
/// `ctx` must be null or valid for reads and writes, and not accessed by anything else, for the
/// duration of the call. kvm-amd passes a context on its stack.
pub(crate) unsafe extern "C" fn ghcb_hook(ctx: *mut bindings::kvm_svm_policy_ghcb) -> u32 {
    // SAFETY: By the safety requirements, `ctx` is null or valid and exclusive during the call.
    match unsafe { ctx.as_mut() } {
        Some(ctx) => ghcb_verdict(&GHCB, ctx),
        None => bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM,
    }
}
