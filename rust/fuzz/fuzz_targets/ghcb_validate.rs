// SPDX-License-Identifier: GPL-2.0

//! Fuzzes `ghcb::validate()` and `validate_msr()` on arbitrary bytes, checking their invariants.
//!
//! Input layout (little endian; missing bytes read as 0): ten u64 words, then the usage (u32),
//! the GHCB version (u16) and a control byte, then the GHCB MSR value (u64), the VM's SEV
//! features (u64) and the reserved GPA bits (u64): 111 bytes. The words are exit code,
//! SW_EXITINFO1, SW_EXITINFO2, the two valid-bitmap words, RAX, SW_SCRATCH, GHCB GPA,
//! registered GPA and the mapped scratch bytes. Control bits steer the fuzzer toward the deep
//! checks: bit 0 SNP, bit 1 registered GPA = GHCB GPA, bit 2 GHCB GPA page aligned, bit 3
//! SW_SCRATCH in the GHCB page (its low 12 bits kept), bit 4 the exit code taken from the list
//! of handled ones (low byte as index), bit 5 the three always-required fields valid, bit 6 the
//! AP creation's target vCPU exists, bit 7 RAX equal to the SEV features.

#![no_main]

use libfuzzer_sys::fuzz_target;
use svm_guard_host::ghcb::{
    validate, validate_msr, GhcbRequest, GhcbVerdict, MalformedReason, MsrVerdict, Rule,
    GHCB_BIT_SW_EXIT_CODE, GHCB_BIT_SW_EXIT_INFO_1, GHCB_BIT_SW_EXIT_INFO_2,
    GHCB_HV_RESP_MALFORMED_INPUT, GHCB_MSR_INFO_MASK, SVM_EXIT_CPUID, SVM_EXIT_INVD, SVM_EXIT_IOIO,
    SVM_EXIT_MONITOR, SVM_EXIT_MSR, SVM_EXIT_MWAIT, SVM_EXIT_RDPMC, SVM_EXIT_RDTSC,
    SVM_EXIT_RDTSCP, SVM_EXIT_READ_DR7, SVM_EXIT_VMMCALL, SVM_EXIT_WBINVD, SVM_EXIT_WRITE_DR7,
    SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_AP_HLT_LOOP, SVM_VMGEXIT_AP_JUMP_TABLE,
    SVM_VMGEXIT_EXT_GUEST_REQUEST, SVM_VMGEXIT_GUEST_REQUEST, SVM_VMGEXIT_HV_FEATURES,
    SVM_VMGEXIT_MMIO_READ, SVM_VMGEXIT_MMIO_WRITE, SVM_VMGEXIT_NMI_COMPLETE, SVM_VMGEXIT_PSC,
    SVM_VMGEXIT_TERM_REQUEST, SVM_VMGEXIT_UNSUPPORTED_EVENT,
};

const HANDLED: [u64; 25] = [
    SVM_EXIT_READ_DR7,
    SVM_EXIT_WRITE_DR7,
    SVM_EXIT_RDTSC,
    SVM_EXIT_RDPMC,
    SVM_EXIT_CPUID,
    SVM_EXIT_INVD,
    SVM_EXIT_IOIO,
    SVM_EXIT_MSR,
    SVM_EXIT_VMMCALL,
    SVM_EXIT_RDTSCP,
    SVM_EXIT_WBINVD,
    SVM_EXIT_MONITOR,
    SVM_EXIT_MWAIT,
    SVM_VMGEXIT_MMIO_READ,
    SVM_VMGEXIT_MMIO_WRITE,
    SVM_VMGEXIT_NMI_COMPLETE,
    SVM_VMGEXIT_AP_HLT_LOOP,
    SVM_VMGEXIT_AP_JUMP_TABLE,
    SVM_VMGEXIT_PSC,
    SVM_VMGEXIT_GUEST_REQUEST,
    SVM_VMGEXIT_EXT_GUEST_REQUEST,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_HV_FEATURES,
    SVM_VMGEXIT_TERM_REQUEST,
    SVM_VMGEXIT_UNSUPPORTED_EVENT,
];

/// Little-endian field of `N` bytes at `at`; bytes past the input read as 0.
fn field<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut bytes = [0; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = data.get(at + i).copied().unwrap_or(0);
    }
    bytes
}

fn word(data: &[u8], index: usize) -> u64 {
    u64::from_le_bytes(field(data, index * 8))
}

fn set(map: &mut [u64; 2], bit: u8) {
    map[usize::from(bit / 64)] |= 1 << (bit % 64);
}

/// The IOIO operand size field, SW_EXITINFO1 bits 6:4.
fn ioio_size(req: &GhcbRequest) -> u64 {
    (req.exit_info_1 >> 4) & 7
}

fn has(map: [u64; 2], bit: u8) -> bool {
    map[usize::from(bit / 64)] & (1 << (bit % 64)) != 0
}

fuzz_target!(|data: &[u8]| {
    let control = field::<1>(data, 86)[0];
    let mut req = GhcbRequest {
        exit_code: word(data, 0),
        exit_info_1: word(data, 1),
        exit_info_2: word(data, 2),
        valid_bitmap: [word(data, 3), word(data, 4)],
        rax: word(data, 5),
        sw_scratch: word(data, 6),
        ghcb_gpa: word(data, 7),
        registered_gpa: word(data, 8),
        scratch_mapped: word(data, 9),
        usage: u32::from_le_bytes(field(data, 80)),
        vmsa_features: u64::from_le_bytes(field(data, 95)),
        reserved_gpa_bits: u64::from_le_bytes(field(data, 103)),
        ghcb_version: u16::from_le_bytes(field(data, 84)),
        snp: control & 1 != 0,
        ap_target: control & 64 != 0,
    };
    let msr = u64::from_le_bytes(field(data, 87));
    if control & 128 != 0 {
        req.rax = req.vmsa_features;
    }
    if control & 2 != 0 {
        req.registered_gpa = req.ghcb_gpa;
    }
    if control & 4 != 0 {
        req.ghcb_gpa &= !0xfff;
        if control & 2 != 0 {
            req.registered_gpa = req.ghcb_gpa;
        }
    }
    if control & 8 != 0 {
        req.sw_scratch = req.ghcb_gpa | (req.sw_scratch & 0xfff);
    }
    if control & 16 != 0 {
        req.exit_code = HANDLED[usize::from(req.exit_code as u8) % HANDLED.len()];
    }
    if control & 32 != 0 {
        for bit in [
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_INFO_1,
            GHCB_BIT_SW_EXIT_INFO_2,
        ] {
            set(&mut req.valid_bitmap, bit);
        }
    }

    let verdict = validate(&req);
    assert_eq!(validate(&req), verdict, "validate() is not deterministic");
    if let GhcbVerdict::Malformed(rule) = verdict {
        let code = rule.reason() as u64;
        assert!((1..=6).contains(&code), "{rule:?}: code {code}");
        let response = rule.reason().response();
        assert_eq!(response.exit_info_1, GHCB_HV_RESP_MALFORMED_INPUT);
        assert_eq!(response.exit_info_1, 2);
        assert_eq!(response.exit_info_2, code);
        assert_eq!(Rule::from_raw(rule as u8), Some(rule));
        assert_ne!(
            rule,
            Rule::MsrSnpOnly,
            "an MSR-protocol rule for a GHCB request"
        );
        if rule.reason() == MalformedReason::InvalidScratchArea {
            assert!(
                [
                    SVM_EXIT_IOIO,
                    SVM_VMGEXIT_MMIO_READ,
                    SVM_VMGEXIT_MMIO_WRITE,
                    SVM_VMGEXIT_PSC
                ]
                .contains(&req.exit_code),
                "{rule:?} for exit code {:#x}",
                req.exit_code
            );
        }
        if rule == Rule::UnknownExitCode {
            assert!(!HANDLED.contains(&req.exit_code));
        }
        if rule == Rule::IoioSize {
            assert_eq!(req.exit_code, SVM_EXIT_IOIO);
            assert!(matches!(ioio_size(&req), 3 | 5 | 6 | 7), "{req:#x?}");
        }
        if matches!(
            rule,
            Rule::ApCreationTarget
                | Rule::ApCreationRequest
                | Rule::ApCreationFeatures
                | Rule::ApCreationVmsaAddress
                | Rule::ApCreationVmsaHugeAligned
        ) {
            assert!(
                req.snp && req.exit_code == SVM_VMGEXIT_AP_CREATION,
                "{rule:?}"
            );
        }
        // The memory behind the scratch area is the last check.
        if rule == Rule::ScratchOutsideMemory {
            let mapped = GhcbRequest {
                scratch_mapped: u64::MAX,
                ..req
            };
            assert_eq!(validate(&mapped), GhcbVerdict::Accept, "{req:#x?}");
        }
    }
    // The header rules come first, in 7.3.4's order.
    let unregistered = req.snp && req.ghcb_gpa != req.registered_gpa;
    if unregistered {
        assert_eq!(verdict, GhcbVerdict::Malformed(Rule::NotRegistered));
    } else if req.usage != 0 {
        assert_eq!(verdict, GhcbVerdict::Malformed(Rule::InvalidUsage));
    }
    if verdict == GhcbVerdict::Accept {
        assert!(HANDLED.contains(&req.exit_code));
        // No IOIO access of a size the CPU never decodes reaches the VMM.
        if req.exit_code == SVM_EXIT_IOIO {
            assert!(matches!(ioio_size(&req), 0 | 1 | 2 | 4), "{req:#x?}");
        }
        for bit in [
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_INFO_1,
            GHCB_BIT_SW_EXIT_INFO_2,
        ] {
            assert!(has(req.valid_bitmap, bit), "accepted without bit {bit}");
        }
    }

    let msr_verdict = validate_msr(msr, req.snp);
    assert_eq!(validate_msr(msr, req.snp), msr_verdict);
    match msr_verdict {
        MsrVerdict::Handle => {}
        MsrVerdict::Ignore(rule) => {
            assert_eq!(rule, Rule::MsrSnpOnly);
            assert!(!req.snp);
            assert!(matches!(msr & GHCB_MSR_INFO_MASK, 0x010 | 0x012 | 0x014));
            assert!((1..=6).contains(&(rule.reason() as u64)));
            assert!(rule.beyond_upstream().is_some());
        }
    }
    // An SNP guest's MSR-protocol requests are all served.
    assert_eq!(validate_msr(msr, true), MsrVerdict::Handle);
});
