// SPDX-License-Identifier: GPL-2.0

//! The hooks kvm-amd calls: each turns its plain-data context into a pure decision's input,
//! applies the path's mode, counts, and returns kvm-amd's verdict.
//!
//! The contexts and verdicts are those of `srctree/include/linux/kvm_svm_policy.h`.

use crate::debugfs::{
    GhcbCounter,
    Mode,
    NmiCounter,
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
    EventKind,
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
    let kind = if u32::from(ctx.kind)
        == bindings::kvm_svm_policy_soft_kind_KVM_SVM_POLICY_SOFT_KIND_PRIV
    {
        EventKind::PrivilegedSoft
    } else {
        EventKind::Soft
    };
    let event = PendingEvent {
        vector: ctx.vector,
        kind,
    };
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
        (NmiSite::Inject, NmiVerdict::Hardware) => NmiCounter::InjectOnly,
        (NmiSite::Inject, NmiVerdict::Software) => NmiCounter::InterceptIret,
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

/// Validates a GHCB request (page or MSR protocol) and tells kvm-amd how to answer it.
fn ghcb(ctx: &mut bindings::kvm_svm_policy_ghcb) -> u32 {
    let mode = GHCB.mode();
    if mode == Mode::Upstream {
        GHCB.count(GhcbCounter::Upstream);
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
        GHCB.count(GhcbCounter::Accept);
        return bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_ACCEPT;
    };
    // Before the fix, a request that failed validation ended the guest.
    if mode == Mode::Legacy {
        GHCB.count(GhcbCounter::Terminate);
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
        GHCB.count(GhcbCounter::from(reason));
    }
    if let Some(case) = beyond {
        GHCB.count(GhcbCounter::from(case));
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
        Some(ctx) => ghcb(ctx),
        None => bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM,
    }
}

/// The GHCB path end to end in kvm-amd: each request goes through kvm-amd's real VMGEXIT code
/// on a synthetic SEV-ES vCPU (`kvm_svm_policy_test_ghcb()`), so the C snapshot, the hook, this
/// module's trampoline and validator, and kvm-amd's application of the verdict all run. No SEV
/// hardware is needed. Built only with `--cfg svm_guard_kunit`.
#[cfg(svm_guard_kunit)]
#[kernel::prelude::kunit_tests(svm_guard_ghcb)]
mod tests {
    use super::*;
    use crate::ghcb::{
        Rule,
        GHCB_BIT_CPL,
        GHCB_BIT_RAX,
        GHCB_BIT_RCX,
        GHCB_BIT_RDX,
        GHCB_BIT_SW_EXIT_CODE,
        GHCB_BIT_SW_EXIT_INFO_1,
        GHCB_BIT_SW_EXIT_INFO_2,
        GHCB_BIT_SW_SCRATCH,
        GHCB_BIT_XCR0, //
    };
    use kernel::prelude::*;

    /// The GHCB's GPA in every request.
    const GHCB_GPA: u64 = 0x10_0000;
    /// A scratch area in the GHCB's shared buffer.
    const SHARED: u64 = GHCB_GPA + 0x800;
    /// `KVM_EXIT_SYSTEM_EVENT`.
    const EXIT_SYSTEM_EVENT: u32 = 24;

    /// Returns a bitmap with the given valid bits set.
    fn bits(list: &[u8]) -> [u64; 2] {
        let mut map = [0u64; 2];
        for &bit in list {
            if let Some(word) = map.get_mut(usize::from(bit / 64)) {
                *word |= 1u64 << (bit % 64);
            }
        }
        map
    }

    /// The three fields every request needs.
    const HEADER: [u8; 3] = [
        GHCB_BIT_SW_EXIT_CODE,
        GHCB_BIT_SW_EXIT_INFO_1,
        GHCB_BIT_SW_EXIT_INFO_2,
    ];

    /// A request for `exit_code` with `extra` valid bits besides the header.
    fn req(
        exit_code: u64,
        info1: u64,
        info2: u64,
        extra: &[u8],
    ) -> bindings::kvm_svm_policy_ghcb_test {
        let mut valid = bits(&HEADER);
        let more = bits(extra);
        valid[0] |= more[0];
        valid[1] |= more[1];
        bindings::kvm_svm_policy_ghcb_test {
            exit_code,
            exit_info_1: info1,
            exit_info_2: info2,
            valid_bitmap: valid,
            ghcb_msr: GHCB_GPA,
            ghcb_version: 2,
            ..Default::default()
        }
    }

    /// Runs `t` through kvm-amd with the GHCB path in `mode`.
    fn run(mode: Mode, t: &mut bindings::kvm_svm_policy_ghcb_test) -> Result {
        GHCB.set_mode(mode);
        // SAFETY: `t` is valid for reads and writes; kvm-amd only uses it during the call.
        let ret = unsafe { bindings::kvm_svm_policy_test_ghcb(t) };
        GHCB.set_mode(Mode::Guard);
        kernel::error::to_result(ret)
    }

    /// A malformed request and the rule it breaks.
    struct Case {
        t: bindings::kvm_svm_policy_ghcb_test,
        rule: Rule,
    }

    /// Malformed requests, several per rule that a GHCB page can break.
    fn malformed() -> Result<KVec<Case>> {
        let mut v = KVec::new();
        let mut push = |t, rule| v.push(Case { t, rule }, GFP_KERNEL);
        // NotRegistered: an SNP guest's GHCB at a GPA it did not register.
        for registered in [0, GHCB_GPA + 0x1000, 0x4000_0000] {
            let mut t = req(0x72, 0, 0, &[GHCB_BIT_RAX, GHCB_BIT_RCX]);
            t.snp = 1;
            t.registered_gpa = registered;
            push(t, Rule::NotRegistered)?;
        }
        // InvalidUsage.
        for usage in [1, 2, u32::MAX] {
            let mut t = req(0x72, 0, 0, &[GHCB_BIT_RAX, GHCB_BIT_RCX]);
            t.usage = usage;
            push(t, Rule::InvalidUsage)?;
        }
        // SnpOnlyExitCode: from a non-SNP guest.
        for code in [0x8000_0010, 0x8000_0011, 0x8000_0012, 0x8000_0013] {
            push(
                req(code, 0, 0, &[GHCB_BIT_RAX, GHCB_BIT_SW_SCRATCH]),
                Rule::SnpOnlyExitCode,
            )?;
        }
        // MissingInput: each exit code without one field it needs.
        let missing: [(u64, u64, &[u8]); 12] = [
            (0x37, 0, &[]),
            (0x6f, 0, &[]),
            (0x72, 0, &[GHCB_BIT_RAX]),
            (0x72, 0, &[GHCB_BIT_RCX]),
            (0x7b, 0, &[]),
            (0x7b, 1 << 2, &[GHCB_BIT_RAX]),
            (0x7c, 0, &[]),
            (0x7c, 1, &[GHCB_BIT_RCX, GHCB_BIT_RAX]),
            (0x81, 0, &[GHCB_BIT_RAX]),
            (0x8a, 0, &[GHCB_BIT_RAX, GHCB_BIT_RCX]),
            (0x8b, 0, &[GHCB_BIT_RCX]),
            (0x8000_0001, 0, &[GHCB_BIT_RAX]),
        ];
        for (code, info1, extra) in missing {
            push(req(code, info1, 0, extra), Rule::MissingInput)?;
        }
        // CPUID leaf 0xD without XCR0.
        let mut t = req(0x72, 0, 0, &[GHCB_BIT_RAX, GHCB_BIT_RCX]);
        t.rax = 0xd;
        push(t, Rule::MissingInput)?;
        // A header field missing.
        for bit in HEADER {
            let mut t = req(0x8000_fffd, 0, 0, &[]);
            t.valid_bitmap = bits(&HEADER.map(|b| if b == bit { GHCB_BIT_CPL } else { b }));
            push(t, Rule::MissingInput)?;
        }
        // String I/O: count above INT_MAX, count x size overflow (beyond upstream).
        let ins = 1 | (1 << 2) | (1 << 4);
        for count in [0x8000_0000, u64::from(u32::MAX), u64::MAX] {
            let mut t = req(0x7b, ins, count, &[GHCB_BIT_SW_SCRATCH]);
            t.sw_scratch = SHARED;
            push(t, Rule::StringIoCount)?;
        }
        for (size, count) in [(4u64, 0x2000_0000u64), (2, 0x4000_0000), (7, 0x1249_2493)] {
            let mut t = req(0x7b, (1 << 2) | (size << 4), count, &[GHCB_BIT_SW_SCRATCH]);
            t.sw_scratch = SHARED;
            push(t, Rule::StringIoOverflow)?;
        }
        // MMIO longer than 8 bytes under GHCB v2.
        for len in [9, 0x10, 0x7f0] {
            let mut t = req(0x8000_0001, 0xfee0_0000, len, &[GHCB_BIT_SW_SCRATCH]);
            t.sw_scratch = SHARED;
            push(t, Rule::MmioLength)?;
        }
        // Scratch areas: zero, wrapping, outside the shared buffer, outside the GHCB (v2, v1).
        let mut t = req(0x8000_0001, 0, 8, &[GHCB_BIT_SW_SCRATCH]);
        t.sw_scratch = 0;
        push(t, Rule::ScratchZero)?;
        let mut t = req(0x8000_0002, 0, 8, &[GHCB_BIT_SW_SCRATCH]);
        t.sw_scratch = u64::MAX - 3;
        push(t, Rule::ScratchWrap)?;
        for scratch in [
            GHCB_GPA,
            GHCB_GPA + 0x7ff,
            GHCB_GPA + 0xfe9,
            GHCB_GPA + 0xff0,
        ] {
            let mut t = req(0x8000_0001, 0, 8, &[GHCB_BIT_SW_SCRATCH]);
            t.sw_scratch = scratch;
            push(t, Rule::ScratchOutsideSharedBuffer)?;
        }
        for scratch in [GHCB_GPA + 0x1000, GHCB_GPA - 8, 0x1234_5000] {
            let mut t = req(0x8000_0001, 0, 8, &[GHCB_BIT_SW_SCRATCH]);
            t.sw_scratch = scratch;
            push(t, Rule::ScratchOutsideGhcbV2)?;
        }
        let mut t = req(0x8000_0001, 0, 16 * 4096 + 1, &[GHCB_BIT_SW_SCRATCH]);
        t.sw_scratch = 0x20_0000;
        t.ghcb_version = 1;
        push(t, Rule::ScratchTooLarge)?;
        // The synthetic VM has no memory: any scratch area outside the GHCB is unbacked.
        for (scratch, len) in [
            (0x20_0000u64, 8u64),
            (0x1_0000_0000, 16 * 4096),
            (0x3000, 1),
        ] {
            let mut t = req(0x8000_0001, 0, len, &[GHCB_BIT_SW_SCRATCH]);
            t.sw_scratch = scratch;
            t.ghcb_version = 1;
            push(t, Rule::ScratchOutsideMemory)?;
        }
        // AP jump table sub-codes other than set (0) and get (1).
        for sub in [2, 3, u64::MAX] {
            push(req(0x8000_0005, sub, 0, &[]), Rule::ApJumpTableSubcode)?;
        }
        // SNP guest requests: unaligned or equal pages.
        for (code, a, b) in [
            (0x8000_0011u64, 0x1001u64, 0x2000u64),
            (0x8000_0011, 0x1000, 0x2010),
            (0x8000_0012, 0x3000, 0x3000),
        ] {
            let mut t = req(code, a, b, &[]);
            t.snp = 1;
            t.registered_gpa = GHCB_GPA;
            push(t, Rule::GuestRequestPages)?;
        }
        // SNP AP creation (the synthetic VM's SEV features are SNP_ACTIVE, bit 0, its only
        // vCPU has APIC ID 0 and MAXPHYADDR 48): no vCPU with the APIC ID, an unknown
        // request, other SEV features, a VMSA GPA unaligned or beyond MAXPHYADDR, a VMSA
        // GPA aligned to 2M.
        for (info1, rax, vmsa, rule) in [
            ((5u64 << 32) | 1, 1u64, 0x5000u64, Rule::ApCreationTarget),
            (3, 1, 0x5000, Rule::ApCreationRequest),
            (1, 3, 0x5000, Rule::ApCreationFeatures),
            (0, 1, 0x5008, Rule::ApCreationVmsaAddress),
            (1, 1, 1 << 50, Rule::ApCreationVmsaAddress),
            (1, 1, 0x20_0000, Rule::ApCreationVmsaHugeAligned),
        ] {
            let mut t = req(0x8000_0013, info1, vmsa, &[GHCB_BIT_RAX]);
            t.rax = rax;
            t.snp = 1;
            t.registered_gpa = GHCB_GPA;
            push(t, rule)?;
        }
        // Exit codes no handler knows, including the full 64 bits.
        for code in [0x0, 0x64, 0x8000_abcd, 0x1_0000_0072, u64::MAX] {
            push(req(code, 0, 0, &[]), Rule::UnknownExitCode)?;
        }
        Ok(v)
    }

    /// MSR-protocol requests that only SNP guests may send, from a non-SNP guest.
    const MSR_SNP_ONLY: [u64; 3] = [0x010, 0x1234_5000 | 0x012, 0x014];

    /// Checks a `MALFORMED` answer and the stats of one request.
    fn check_malformed(t: &bindings::kvm_svm_policy_ghcb_test, rule: Rule) -> bool {
        let code = rule.reason() as u64;
        let beyond = rule.beyond_upstream().map_or(0, |b| b as usize);
        let mut ok = t.ret == 1
            && t.sw_exit_info_1 == 2
            && t.sw_exit_info_2 == code
            && t.stat_accept == 0
            && t.stat_terminate == 0
            && t.stat_handler_malformed == 0;
        for (i, n) in t.stat_reason.iter().enumerate() {
            ok &= *n == u64::from(i as u64 == code);
        }
        for (i, n) in t.stat_beyond.iter().enumerate() {
            ok &= *n == u64::from(beyond != 0 && i == beyond);
        }
        if !ok {
            pr_err!(
                "rule {:?}: exit code {:#x}: ret {} info {:#x}/{:#x}\n",
                rule,
                t.exit_code,
                t.ret,
                t.sw_exit_info_1,
                t.sw_exit_info_2
            );
        }
        ok
    }

    #[test]
    fn every_ghcb_page_rule_has_malformed_requests() -> Result {
        let cases = malformed()?;
        for rule in Rule::ALL {
            let sent = cases.iter().filter(|case| case.rule == rule).count();
            // An MSR-protocol rule has no GHCB page; its requests are sent below.
            if rule != Rule::MsrSnpOnly && sent == 0 {
                pr_err!("no malformed request for rule {:?}\n", rule);
            }
            assert!(rule == Rule::MsrSnpOnly || sent > 0);
        }
        Ok(())
    }

    #[test]
    fn guard_answers_every_malformed_request_with_its_reason() -> Result {
        let before = GHCB.get(GhcbCounter::InvalidScratchArea);
        let mut scratch = 0;
        let cases = malformed()?;
        for mut case in cases {
            run(Mode::Guard, &mut case.t)?;
            assert!(check_malformed(&case.t, case.rule));
            if case.rule.reason() == MalformedReason::InvalidScratchArea {
                scratch += 1;
            }
        }
        assert_eq!(GHCB.get(GhcbCounter::InvalidScratchArea) - before, scratch);
        Ok(())
    }

    #[test]
    fn upstream_gives_the_same_reasons_or_fails_where_guard_goes_beyond() -> Result {
        for mut case in malformed()? {
            run(Mode::Upstream, &mut case.t)?;
            let t = &case.t;
            match case.rule.beyond_upstream() {
                // Linux 7.3.4 fails KVM_RUN for these.
                Some(BeyondUpstream::StringIoCount | BeyondUpstream::StringIoOverflow) => {
                    assert_eq!(t.ret, -(bindings::EINVAL as i32))
                }
                Some(BeyondUpstream::ScratchOutsideMemory) => {
                    assert_eq!(t.ret, -(bindings::EFAULT as i32))
                }
                _ => {
                    assert_eq!(t.ret, 1);
                    assert_eq!(t.sw_exit_info_1, 2);
                    assert_eq!(t.sw_exit_info_2, case.rule.reason() as u64);
                }
            }
            // No policy verdict was applied or counted.
            assert_eq!(t.stat_reason.iter().sum::<u64>(), 0);
            assert_eq!(t.stat_accept + t.stat_terminate, 0);
        }
        Ok(())
    }

    #[test]
    fn legacy_terminates_on_every_malformed_request() -> Result {
        for mut case in malformed()? {
            run(Mode::Legacy, &mut case.t)?;
            let t = &case.t;
            assert_eq!(t.ret, 0);
            assert_eq!(t.exit_reason, EXIT_SYSTEM_EVENT);
            assert_eq!(t.stat_terminate, 1);
            assert_eq!(t.stat_reason.iter().sum::<u64>(), 0);
        }
        Ok(())
    }

    #[test]
    fn guard_accepts_valid_requests_and_kvm_amd_handles_them() -> Result {
        // Hypervisor features, and the AP jump table set then get (shared VM state).
        let mut t = req(0x8000_fffd, 0, 0, &[]);
        run(Mode::Guard, &mut t)?;
        assert_eq!((t.ret, t.sw_exit_info_1, t.stat_accept), (1, 0, 1));
        assert_ne!(t.sw_exit_info_2, 0);
        for sub in [0, 1] {
            let mut t = req(0x8000_0005, sub, 0x9000, &[]);
            run(Mode::Guard, &mut t)?;
            assert_eq!((t.ret, t.sw_exit_info_1, t.stat_accept), (1, 0, 1));
            assert_eq!(t.stat_handler_malformed, 0);
        }
        // MMIO of length 0 and NMI completion are accepted without a scratch area.
        for code in [0x8000_0003, 0x8000_0001] {
            let mut t = req(code, 0, 0, &[GHCB_BIT_SW_SCRATCH]);
            run(Mode::Guard, &mut t)?;
            assert_eq!((t.ret, t.sw_exit_info_1, t.stat_accept), (1, 0, 1));
        }
        // Legacy punishes only what is malformed.
        let mut t = req(0x8000_fffd, 0, 0, &[GHCB_BIT_XCR0, GHCB_BIT_RDX]);
        run(Mode::Legacy, &mut t)?;
        assert_eq!((t.ret, t.stat_accept, t.stat_terminate), (1, 1, 0));
        Ok(())
    }

    #[test]
    fn snp_only_msr_requests_are_left_unanswered_in_guard_only() -> Result {
        for msr in MSR_SNP_ONLY {
            let mut t = bindings::kvm_svm_policy_ghcb_test {
                ghcb_msr: msr,
                ghcb_version: 2,
                ..Default::default()
            };
            run(Mode::Guard, &mut t)?;
            assert_eq!((t.ret, t.ghcb_msr_out), (1, msr));
            assert_eq!(t.stat_beyond[BeyondUpstream::MsrSnpOnly as usize], 1);
            assert_eq!(t.stat_reason.iter().sum::<u64>(), 0);

            run(Mode::Upstream, &mut t)?;
            assert_eq!((t.ret, t.exit_reason), (0, EXIT_SYSTEM_EVENT));
            run(Mode::Legacy, &mut t)?;
            assert_eq!(
                (t.ret, t.exit_reason, t.stat_terminate),
                (0, EXIT_SYSTEM_EVENT, 1)
            );
        }
        // The guest's own termination request still ends it; SEV_INFO is answered.
        let mut t = bindings::kvm_svm_policy_ghcb_test {
            ghcb_msr: 0x100,
            ..Default::default()
        };
        run(Mode::Guard, &mut t)?;
        assert_eq!(
            (t.ret, t.exit_reason, t.stat_accept),
            (0, EXIT_SYSTEM_EVENT, 1)
        );
        let mut t = bindings::kvm_svm_policy_ghcb_test {
            ghcb_msr: 0x002,
            ..Default::default()
        };
        run(Mode::Guard, &mut t)?;
        assert_eq!((t.ret, t.ghcb_msr_out & 0xfff), (1, 0x001));
        Ok(())
    }
}
