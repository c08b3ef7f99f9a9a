// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the GHCB path, end to end in kvm-amd: each request goes through kvm-amd's
//! real VMGEXIT code on a synthetic SEV-ES vCPU (`kvm_svm_policy_test_ghcb()`), so the C
//! snapshot, the hook, the module's validator, and kvm-amd's application of the verdict and
//! its own checks all run. No SEV hardware is needed. Built only with `--cfg svm_guard_kunit`.
//!
//! The suite hands kvm-amd a policy of its own (`TEST_OPS`): its GHCB hook runs the module's
//! validator in the suite's own mode and counters (`TEST_GHCB`), so the module's modes and
//! counters, which guests running meanwhile use, never change.

#[kernel::prelude::kunit_tests(svm_guard_ghcb)]
mod tests {
    use crate::debugfs::{
        GhcbCounter,
        Mode,
        PathState, //
    };
    use crate::ghcb::{
        BeyondUpstream,
        MalformedReason,
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
    use crate::hooks::ghcb_verdict;
    use kernel::{
        bindings,
        prelude::*, //
    };

    /// The suite's own GHCB path: a mode and counters that no guest's request reaches.
    static TEST_GHCB: PathState<GhcbCounter> = PathState::new(c"ghcb_test");

    /// `kvm_svm_policy_ops::ghcb` of the suite's policy: the module's validator, deciding in
    /// [`TEST_GHCB`]'s mode and counting there.
    ///
    /// # Safety
    ///
    /// `ctx` must be null or valid for reads and writes, and not accessed by anything else, for the
    /// duration of the call. kvm-amd passes a context on its stack.
    unsafe extern "C" fn test_ghcb_hook(ctx: *mut bindings::kvm_svm_policy_ghcb) -> u32 {
        // SAFETY: By the safety requirements, `ctx` is null or valid and exclusive during the call.
        match unsafe { ctx.as_mut() } {
            Some(ctx) => ghcb_verdict(&TEST_GHCB, ctx),
            None => bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM,
        }
    }

    /// `kvm_svm_policy_ops::ghcb` of a policy that accepts every request, as a validator that lost
    /// a rule would.
    ///
    /// # Safety
    ///
    /// None: the context is not read.
    unsafe extern "C" fn accept_all_hook(_ctx: *mut bindings::kvm_svm_policy_ghcb) -> u32 {
        bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_ACCEPT
    }

    /// The suite's policy; `kvm_svm_policy_test_ghcb()` calls only its `ghcb`.
    static TEST_OPS: bindings::kvm_svm_policy_ops = bindings::kvm_svm_policy_ops {
        soft_int: None,
        sev_no_insn: None,
        nmi: None,
        ghcb: Some(test_ghcb_hook),
    };

    /// A policy that accepts everything.
    static ACCEPT_ALL_OPS: bindings::kvm_svm_policy_ops = bindings::kvm_svm_policy_ops {
        soft_int: None,
        sev_no_insn: None,
        nmi: None,
        ghcb: Some(accept_all_hook),
    };

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

    /// Runs `t` through kvm-amd with `ops` as the policy.
    fn run_with(
        ops: &'static bindings::kvm_svm_policy_ops,
        t: &mut bindings::kvm_svm_policy_ghcb_test,
    ) -> Result {
        // SAFETY: `ops` is a static ops table with a `ghcb` hook, `t` is valid for reads and
        // writes; kvm-amd uses both only during the call.
        kernel::error::to_result(unsafe { bindings::kvm_svm_policy_test_ghcb(ops, t) })
    }

    /// Runs `t` through kvm-amd with the suite's policy in `mode`.
    fn run(mode: Mode, t: &mut bindings::kvm_svm_policy_ghcb_test) -> Result {
        TEST_GHCB.set_mode(mode);
        run_with(&TEST_OPS, t)
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
        for (size, count) in [(4u64, 0x2000_0000u64), (2, 0x4000_0000), (4, 0x7fff_ffff)] {
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
        // IOIO operand sizes the CPU never decodes (beyond upstream): OUT, IN, string OUT.
        for (info1, size) in [(0u64, 3u64), (1, 5), (1 << 2, 6), (0, 7)] {
            let mut t = req(
                0x7b,
                info1 | (size << 4),
                1,
                &[GHCB_BIT_RAX, GHCB_BIT_SW_SCRATCH],
            );
            t.sw_scratch = SHARED;
            push(t, Rule::IoioSize)?;
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
            && t.stat_handler_malformed == 0
            && t.stat_disagree == 0;
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
        let before = TEST_GHCB.get(GhcbCounter::InvalidScratchArea);
        let mut scratch = 0;
        let cases = malformed()?;
        for mut case in cases {
            run(Mode::Guard, &mut case.t)?;
            assert!(check_malformed(&case.t, case.rule));
            if case.rule.reason() == MalformedReason::InvalidScratchArea {
                scratch += 1;
            }
        }
        assert_eq!(
            TEST_GHCB.get(GhcbCounter::InvalidScratchArea) - before,
            scratch
        );
        Ok(())
    }

    #[test]
    fn upstream_gives_the_same_reasons_or_fails_where_guard_goes_beyond() -> Result {
        for mut case in malformed()? {
            // 7.3.4 hands these to its port I/O code, which the synthetic vCPU does not have (no
            // PIO page, no I/O bus); svm_guard_ghcb_test shows 7.3.4's KVM_EXIT_IO from a guest.
            if case.rule == Rule::IoioSize {
                continue;
            }
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

    #[test]
    fn kvm_amd_still_refuses_what_a_loosened_policy_accepts() -> Result {
        // Requests kvm-amd's own checks refuse: usage 1, an SNP-only exit code from a non-SNP
        // guest, CPUID without RCX, an SNP guest's unregistered GHCB. A policy that accepts them
        // cannot make kvm-amd handle them: each is answered as kvm-amd says and counted as a
        // disagreement.
        let mut cases = KVec::new();
        let mut t = req(0x72, 0, 0, &[GHCB_BIT_RAX, GHCB_BIT_RCX]);
        t.usage = 1;
        cases.push((t, MalformedReason::InvalidUsage), GFP_KERNEL)?;
        cases.push(
            (
                req(0x8000_0010, 0, 0, &[GHCB_BIT_SW_SCRATCH]),
                MalformedReason::InvalidEvent,
            ),
            GFP_KERNEL,
        )?;
        cases.push(
            (
                req(0x72, 0, 0, &[GHCB_BIT_RAX]),
                MalformedReason::MissingInput,
            ),
            GFP_KERNEL,
        )?;
        let mut t = req(0x72, 0, 0, &[GHCB_BIT_RAX, GHCB_BIT_RCX]);
        t.snp = 1;
        t.registered_gpa = GHCB_GPA + 0x1000;
        cases.push((t, MalformedReason::NotRegistered), GFP_KERNEL)?;
        for (mut t, reason) in cases {
            run_with(&ACCEPT_ALL_OPS, &mut t)?;
            assert_eq!(
                (t.ret, t.sw_exit_info_1, t.sw_exit_info_2),
                (1, 2, reason as u64)
            );
            assert_eq!(
                (t.stat_accept, t.stat_disagree, t.stat_handler_malformed),
                (1, 1, 0)
            );
        }
        // A request kvm-amd handles: accepted, no disagreement.
        let mut t = req(0x8000_fffd, 0, 0, &[]);
        run_with(&ACCEPT_ALL_OPS, &mut t)?;
        assert_eq!((t.ret, t.sw_exit_info_1, t.stat_disagree), (1, 0, 0));
        // The module's own policy never disagrees: every malformed request is refused before.
        for mut case in malformed()? {
            run(Mode::Guard, &mut case.t)?;
            assert_eq!(case.t.stat_disagree, 0);
        }
        Ok(())
    }
}
