// SPDX-License-Identifier: GPL-2.0

//! Table tests for `ghcb`: one row per rule, exit codes x required fields, and the limits.
//!
//! The exit codes, valid-bitmap bits and limits below are written out from Linux 7.3.4
//! (`arch/x86/include/uapi/asm/svm.h`, `struct ghcb_save_area` in `arch/x86/include/asm/svm.h`,
//! `arch/x86/kvm/svm/sev.c`), not taken from `ghcb.rs`, so a wrong constant there fails here.
//! Every expected verdict comes from how the case was built.

// clippy.toml's allow-*-in-tests covers only #[test] functions, not their helpers here; the
// Cargo.toml denials guard the decision code, and a panic is how a test fails.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used
)]

use svm_guard_host::ghcb::{
    validate, validate_msr, BeyondUpstream, GhcbRequest, GhcbResponse, GhcbVerdict,
    MalformedReason, MsrVerdict, Rule,
};

// Exit codes (SW_EXITCODE).
const READ_DR7: u64 = 0x027;
const WRITE_DR7: u64 = 0x037;
const RDTSC: u64 = 0x06e;
const RDPMC: u64 = 0x06f;
const CPUID: u64 = 0x072;
const INVD: u64 = 0x076;
const IOIO: u64 = 0x07b;
const MSR: u64 = 0x07c;
const VMMCALL: u64 = 0x081;
const RDTSCP: u64 = 0x087;
const WBINVD: u64 = 0x089;
const MONITOR: u64 = 0x08a;
const MWAIT: u64 = 0x08b;
const MMIO_READ: u64 = 0x8000_0001;
const MMIO_WRITE: u64 = 0x8000_0002;
const NMI_COMPLETE: u64 = 0x8000_0003;
const AP_HLT_LOOP: u64 = 0x8000_0004;
const AP_JUMP_TABLE: u64 = 0x8000_0005;
const PSC: u64 = 0x8000_0010;
const GUEST_REQUEST: u64 = 0x8000_0011;
const EXT_GUEST_REQUEST: u64 = 0x8000_0012;
const AP_CREATION: u64 = 0x8000_0013;
const HV_FEATURES: u64 = 0x8000_fffd;
const TERM_REQUEST: u64 = 0x8000_fffe;
const UNSUPPORTED_EVENT: u64 = 0x8000_ffff;

/// Every exit code 7.3.4's `sev_handle_vmgexit()` handles.
const HANDLED: [u64; 25] = [
    READ_DR7,
    WRITE_DR7,
    RDTSC,
    RDPMC,
    CPUID,
    INVD,
    IOIO,
    MSR,
    VMMCALL,
    RDTSCP,
    WBINVD,
    MONITOR,
    MWAIT,
    MMIO_READ,
    MMIO_WRITE,
    NMI_COMPLETE,
    AP_HLT_LOOP,
    AP_JUMP_TABLE,
    PSC,
    GUEST_REQUEST,
    EXT_GUEST_REQUEST,
    AP_CREATION,
    HV_FEATURES,
    TERM_REQUEST,
    UNSUPPORTED_EVENT,
];

/// Exit codes 7.3.4 does not handle: intercepts without a GHCB path, SNP_RUN_VMPL, SAVIC, a
/// handled code with high bits set, and the extremes.
const UNHANDLED: [u64; 8] = [
    0x000,
    0x060,
    0x078,
    0x8000_0018,
    0x8000_001a,
    IOIO | (1 << 32),
    0xffff_ffff_8000_0001,
    u64::MAX,
];

/// SNP-only exit codes (`is_snp_only_vmgexit()`).
const SNP_ONLY: [u64; 4] = [AP_CREATION, GUEST_REQUEST, EXT_GUEST_REQUEST, PSC];

// Valid-bitmap bits: offsetof(struct ghcb_save_area, field) / 8.
const CPL: u8 = (0xcb / 8) as u8;
const RAX: u8 = (0x1f8 / 8) as u8;
const RCX: u8 = (0x308 / 8) as u8;
const RDX: u8 = (0x310 / 8) as u8;
const SW_EXIT_CODE: u8 = (0x390 / 8) as u8;
const SW_EXIT_INFO_1: u8 = (0x398 / 8) as u8;
const SW_EXIT_INFO_2: u8 = (0x3a0 / 8) as u8;
const SW_SCRATCH: u8 = (0x3a8 / 8) as u8;
const XCR0: u8 = (0x3e8 / 8) as u8;

/// The fields every request needs.
const ALWAYS: [u8; 3] = [SW_EXIT_CODE, SW_EXIT_INFO_1, SW_EXIT_INFO_2];

// IOIO SW_EXITINFO1: bit 0 IN, bit 2 string, bits 4-6 operand size.
const IO_IN: u64 = 1;
const IO_STR: u64 = 1 << 2;

fn io_size(size: u64) -> u64 {
    size << 4
}

const INT_MAX: u64 = i32::MAX as u64;
const PAGE: u64 = 0x1000;
/// The GHCB's GPA; its shared buffer is [GHCB + 0x800, GHCB + 0xff0).
const GHCB: u64 = 0x7000;
const BUFFER: u64 = GHCB + 0x800;
const BUFFER_END: u64 = GHCB + 0xff0;
/// A GPA outside the GHCB page.
const OUTSIDE: u64 = 0x10_0000;
/// GHCB_SCRATCH_AREA_LIMIT.
const SCRATCH_LIMIT: u64 = 16 * PAGE;
/// An AP's VMSA: page aligned, not 2M aligned, below MAXPHYADDR.
const VMSA: u64 = 0x5000;
/// `reserved_gpa_bits` of a vCPU with MAXPHYADDR 52.
const RESERVED_GPA: u64 = 0xfff0_0000_0000_0000;
/// The VM's SEV features (`sev->vmsa_features`), SNP active.
const VMSA_FEATURES: u64 = 1;
// AP_CREATION requests (low half of SW_EXITINFO1).
const AP_CREATE_ON_INIT: u64 = 0;
const AP_CREATE: u64 = 1;
const AP_DESTROY: u64 = 2;

fn bitmap(bits: &[u8]) -> [u64; 2] {
    let mut map = [0; 2];
    for &bit in bits {
        map[usize::from(bit / 64)] |= 1 << (bit % 64);
    }
    map
}

fn without(mut map: [u64; 2], bit: u8) -> [u64; 2] {
    map[usize::from(bit / 64)] &= !(1 << (bit % 64));
    map
}

fn has(map: [u64; 2], bit: u8) -> bool {
    map[usize::from(bit / 64)] & (1 << (bit % 64)) != 0
}

/// A request for `exit_code` from an SNP guest at its registered GHCB under GHCB version 2,
/// every field valid and the scratch area at the start of the shared buffer; for AP_CREATION,
/// create on INIT of an AP that exists, with the VM's SEV features and a valid VMSA.
fn request(exit_code: u64) -> GhcbRequest {
    let ap = exit_code == AP_CREATION;
    GhcbRequest {
        exit_code,
        exit_info_1: if ap { AP_CREATE_ON_INIT } else { 0 },
        exit_info_2: if ap { VMSA } else { 0 },
        valid_bitmap: [u64::MAX; 2],
        rax: if ap { VMSA_FEATURES } else { 0 },
        sw_scratch: BUFFER,
        ghcb_gpa: GHCB,
        registered_gpa: GHCB,
        scratch_mapped: 0,
        vmsa_features: VMSA_FEATURES,
        reserved_gpa_bits: RESERVED_GPA,
        usage: 0,
        ghcb_version: 2,
        snp: true,
        ap_target: true,
    }
}

/// `req` with RAX and SW_SCRATCH as `sev_es_sync_from_ghcb()` leaves them: 0 unless valid.
fn synced(mut req: GhcbRequest) -> GhcbRequest {
    if !has(req.valid_bitmap, RAX) {
        req.rax = 0;
    }
    if !has(req.valid_bitmap, SW_SCRATCH) {
        req.sw_scratch = 0;
    }
    req
}

/// `req` under GHCB version 1 with its scratch area outside the GHCB, all guest memory.
fn v1_outside(mut req: GhcbRequest) -> GhcbRequest {
    req.ghcb_version = 1;
    req.sw_scratch = OUTSIDE;
    req.scratch_mapped = u64::MAX;
    req
}

fn with(mut req: GhcbRequest, edit: impl FnOnce(&mut GhcbRequest)) -> GhcbRequest {
    edit(&mut req);
    req
}

fn string_io(count: u64, size: u64) -> GhcbRequest {
    with(request(IOIO), |r| {
        r.exit_info_1 = IO_STR | IO_IN | io_size(size);
        r.exit_info_2 = count;
    })
}

fn mmio(exit_code: u64, len: u64) -> GhcbRequest {
    with(request(exit_code), |r| r.exit_info_2 = len)
}

/// What a row sends: a GHCB request, or an MSR-protocol request (GHCB MSR value, SNP guest).
#[derive(Debug)]
enum Input {
    Ghcb(GhcbRequest),
    Msr(u64, bool),
}

struct Row {
    rule: Rule,
    /// The 7.3.4 function whose check the rule restates.
    source: &'static str,
    /// SW_EXITINFO2 of the answer (GHCB_ERR_*).
    code: u64,
    beyond: Option<BeyondUpstream>,
    input: Input,
}

const HANDLE_VMGEXIT: &str = "sev.c sev_handle_vmgexit()";
const SNP_ONLY_FN: &str = "sev.c is_snp_only_vmgexit()";
const FIELDS_FN: &str = "sev.c sev_es_are_required_ghcb_fields_valid()";
const STRING_IO_FN: &str = "sev.c sev_es_string_io()";
const SCRATCH_FN: &str = "sev.c setup_vmgexit_scratch()";
const MSR_FN: &str = "sev.c sev_handle_vmgexit_msr_protocol()";
const AP_CREATION_FN: &str = "sev.c sev_snp_ap_creation()";
const IO_FN: &str = "svm.c io_interception()";

/// One row per rule, in the order of the rules' values.
fn rows() -> Vec<Row> {
    use Input::{Ghcb, Msr};
    let row = |rule, source, code, beyond, input| Row {
        rule,
        source,
        code,
        beyond,
        input,
    };
    vec![
        row(
            Rule::NotRegistered,
            HANDLE_VMGEXIT,
            1,
            None,
            Ghcb(with(request(CPUID), |r| r.registered_gpa = GHCB + PAGE)),
        ),
        row(
            Rule::InvalidUsage,
            HANDLE_VMGEXIT,
            2,
            None,
            Ghcb(with(request(CPUID), |r| r.usage = 1)),
        ),
        row(
            Rule::SnpOnlyExitCode,
            SNP_ONLY_FN,
            6,
            None,
            Ghcb(with(request(PSC), |r| r.snp = false)),
        ),
        row(
            Rule::MissingInput,
            FIELDS_FN,
            4,
            None,
            Ghcb(with(request(CPUID), |r| {
                r.valid_bitmap = without(r.valid_bitmap, RCX)
            })),
        ),
        row(
            Rule::StringIoCount,
            STRING_IO_FN,
            5,
            Some(BeyondUpstream::StringIoCount),
            Ghcb(string_io(INT_MAX + 1, 1)),
        ),
        row(
            Rule::StringIoOverflow,
            STRING_IO_FN,
            5,
            Some(BeyondUpstream::StringIoOverflow),
            Ghcb(string_io(0x4000_0000, 2)),
        ),
        row(
            Rule::MmioLength,
            HANDLE_VMGEXIT,
            5,
            None,
            Ghcb(mmio(MMIO_READ, 9)),
        ),
        row(
            Rule::ScratchZero,
            SCRATCH_FN,
            3,
            None,
            Ghcb(with(request(PSC), |r| r.sw_scratch = 0)),
        ),
        row(
            Rule::ScratchWrap,
            SCRATCH_FN,
            3,
            None,
            Ghcb(with(v1_outside(mmio(MMIO_WRITE, 8)), |r| {
                r.sw_scratch = u64::MAX - 3
            })),
        ),
        row(
            Rule::ScratchOutsideSharedBuffer,
            SCRATCH_FN,
            3,
            None,
            Ghcb(with(request(PSC), |r| r.sw_scratch = GHCB + 0x10)),
        ),
        row(
            Rule::ScratchOutsideGhcbV2,
            SCRATCH_FN,
            3,
            None,
            Ghcb(with(mmio(MMIO_READ, 8), |r| r.sw_scratch = OUTSIDE)),
        ),
        row(
            Rule::ScratchTooLarge,
            SCRATCH_FN,
            3,
            None,
            Ghcb(v1_outside(string_io(SCRATCH_LIMIT + 1, 1))),
        ),
        row(
            Rule::ScratchOutsideMemory,
            SCRATCH_FN,
            3,
            Some(BeyondUpstream::ScratchOutsideMemory),
            Ghcb(with(v1_outside(mmio(MMIO_READ, 8)), |r| {
                r.scratch_mapped = 4
            })),
        ),
        row(
            Rule::ApJumpTableSubcode,
            HANDLE_VMGEXIT,
            5,
            None,
            Ghcb(with(request(AP_JUMP_TABLE), |r| r.exit_info_1 = 2)),
        ),
        row(
            Rule::GuestRequestPages,
            HANDLE_VMGEXIT,
            5,
            None,
            Ghcb(with(request(GUEST_REQUEST), |r| {
                r.exit_info_1 = 0x10000;
                r.exit_info_2 = 0x10000;
            })),
        ),
        row(
            Rule::UnknownExitCode,
            HANDLE_VMGEXIT,
            6,
            None,
            // SVM_VMGEXIT_SNP_RUN_VMPL: 7.3.4 has no handler for it.
            Ghcb(request(0x8000_0018)),
        ),
        row(
            Rule::MsrSnpOnly,
            MSR_FN,
            6,
            Some(BeyondUpstream::MsrSnpOnly),
            // GHCB_MSR_REG_GPA_REQ for GFN 0x1234.
            Msr((0x1234 << 12) | 0x012, false),
        ),
        row(
            Rule::ApCreationTarget,
            AP_CREATION_FN,
            5,
            None,
            Ghcb(with(request(AP_CREATION), |r| r.ap_target = false)),
        ),
        row(
            Rule::ApCreationRequest,
            AP_CREATION_FN,
            5,
            None,
            Ghcb(with(request(AP_CREATION), |r| r.exit_info_1 = 3)),
        ),
        row(
            Rule::ApCreationFeatures,
            AP_CREATION_FN,
            5,
            None,
            Ghcb(with(request(AP_CREATION), |r| r.rax = VMSA_FEATURES | 4)),
        ),
        row(
            Rule::ApCreationVmsaAddress,
            AP_CREATION_FN,
            5,
            None,
            Ghcb(with(request(AP_CREATION), |r| r.exit_info_2 = VMSA + 8)),
        ),
        row(
            Rule::ApCreationVmsaHugeAligned,
            AP_CREATION_FN,
            5,
            None,
            Ghcb(with(request(AP_CREATION), |r| r.exit_info_2 = 0x4000_0000)),
        ),
        row(
            Rule::IoioSize,
            IO_FN,
            5,
            Some(BeyondUpstream::IoioSize),
            // OUT to port 0x80 with SZ8 | SZ16 set.
            Ghcb(with(request(IOIO), |r| {
                r.exit_info_1 = (0x80 << 16) | io_size(3)
            })),
        ),
    ]
}

#[test]
fn one_row_per_rule_naming_its_upstream_check() {
    let rows = rows();
    assert_eq!(
        rows.iter().map(|row| row.rule).collect::<Vec<_>>(),
        Rule::ALL.to_vec()
    );
    for (row, raw) in rows.iter().zip(1u8..) {
        let rule = row.rule;
        assert_eq!(rule as u8, raw);
        assert_eq!(Rule::from_raw(raw), Some(rule));
        match row.input {
            Input::Ghcb(req) => assert_eq!(
                validate(&req),
                GhcbVerdict::Malformed(rule),
                "{rule:?}: {req:#x?}"
            ),
            Input::Msr(msr, snp) => {
                assert_eq!(validate_msr(msr, snp), MsrVerdict::Ignore(rule), "{rule:?}")
            }
        }
        assert_eq!(rule.reason() as u64, row.code, "{rule:?}");
        assert_eq!(
            rule.reason().response(),
            GhcbResponse {
                exit_info_1: 2,
                exit_info_2: row.code
            },
            "{rule:?}"
        );
        assert_eq!(rule.upstream_source(), row.source, "{rule:?}");
        assert_eq!(rule.beyond_upstream(), row.beyond, "{rule:?}");
    }
    assert_eq!(Rule::from_raw(0), None);
    assert_eq!(Rule::from_raw(24), None);
    for (beyond, raw) in BeyondUpstream::ALL.into_iter().zip(1u8..) {
        assert_eq!(beyond as u8, raw);
    }
}

/// The fields `sev_es_are_required_ghcb_fields_valid()` wants besides [`ALWAYS`].
struct Needs {
    name: &'static str,
    exit_code: u64,
    exit_info_1: u64,
    rax: u64,
    fields: &'static [u8],
}

fn needs() -> Vec<Needs> {
    let needs = |name, exit_code, exit_info_1, rax, fields| Needs {
        name,
        exit_code,
        exit_info_1,
        rax,
        fields,
    };
    let mut all = vec![
        needs("WRITE_DR7", WRITE_DR7, 0, 0, &[RAX][..]),
        needs("RDPMC", RDPMC, 0, 0, &[RCX]),
        needs("CPUID leaf 1", CPUID, 0, 1, &[RAX, RCX]),
        needs("CPUID leaf 0xd", CPUID, 0, 0xd, &[RAX, RCX, XCR0]),
        needs(
            "CPUID leaf 0xd, high RAX",
            CPUID,
            0,
            0x1_0000_000d,
            &[RAX, RCX],
        ),
        needs("INSB", IOIO, IO_STR | IO_IN | io_size(1), 0, &[SW_SCRATCH]),
        needs("OUTSW", IOIO, IO_STR | io_size(2), 0, &[SW_SCRATCH]),
        needs("OUT", IOIO, io_size(4), 0, &[RAX]),
        needs("IN", IOIO, IO_IN | io_size(4), 0, &[]),
        needs("RDMSR", MSR, 0, 0, &[RCX]),
        needs("WRMSR", MSR, 1, 0, &[RCX, RAX, RDX]),
        needs("WRMSR, high info1", MSR, 1 << 63, 0, &[RCX, RAX, RDX]),
        needs("VMMCALL", VMMCALL, 0, 0, &[RAX, CPL]),
        needs("MONITOR", MONITOR, 0, 0, &[RAX, RCX, RDX]),
        needs("MWAIT", MWAIT, 0, 0, &[RAX, RCX]),
        needs("AP_CREATE", AP_CREATION, 1, 0, &[RAX]),
        needs("AP_CREATE, high 2", AP_CREATION, (2 << 32) | 1, 0, &[RAX]),
        needs("AP_DESTROY", AP_CREATION, 2, 0, &[]),
        needs(
            "AP_DESTROY, high bits",
            AP_CREATION,
            (0xffff << 32) | 2,
            0,
            &[],
        ),
        needs("MMIO_READ", MMIO_READ, 0, 0, &[SW_SCRATCH]),
        needs("MMIO_WRITE", MMIO_WRITE, 0, 0, &[SW_SCRATCH]),
        needs("PSC", PSC, 0, 0, &[SW_SCRATCH]),
    ];
    // Every other exit code needs only the three of ALWAYS.
    for code in HANDLED.into_iter().chain(UNHANDLED) {
        if !all.iter().any(|n| n.exit_code == code) {
            all.push(needs("ALWAYS only", code, 0, 0, &[]));
        }
    }
    all
}

#[test]
fn every_exit_code_x_every_required_field() {
    for n in needs() {
        let required: Vec<u8> = ALWAYS.iter().chain(n.fields).copied().collect();
        let base = with(request(n.exit_code), |r| {
            r.exit_info_1 = n.exit_info_1;
            r.rax = n.rax;
        });
        let exact = synced(with(base, |r| r.valid_bitmap = bitmap(&required)));
        let complete = validate(&exact);
        assert_ne!(
            complete,
            GhcbVerdict::Malformed(Rule::MissingInput),
            "{} with all of {required:?}",
            n.name
        );
        // Fields beyond the required ones change nothing.
        assert_eq!(validate(&synced(base)), complete, "{}", n.name);
        for &bit in &required {
            for map in [bitmap(&required), [u64::MAX; 2]] {
                let req = synced(with(base, |r| r.valid_bitmap = without(map, bit)));
                assert_eq!(
                    validate(&req),
                    GhcbVerdict::Malformed(Rule::MissingInput),
                    "{} without bit {bit}: {req:#x?}",
                    n.name
                );
            }
        }
        // Any field that is not required may be missing.
        for bit in (0..128).filter(|bit| !required.contains(bit)) {
            let req = synced(with(base, |r| {
                r.valid_bitmap = without(r.valid_bitmap, bit)
            }));
            assert_ne!(
                validate(&req),
                GhcbVerdict::Malformed(Rule::MissingInput),
                "{} without bit {bit}",
                n.name
            );
        }
    }
}

/// A valid request for every exit code 7.3.4 handles, and its variants.
fn accepted() -> Vec<(&'static str, GhcbRequest)> {
    let guest_request = |code| {
        with(request(code), |r| {
            r.exit_info_1 = 0x10000;
            r.exit_info_2 = 0x11000;
        })
    };
    vec![
        ("READ_DR7", request(READ_DR7)),
        ("WRITE_DR7", request(WRITE_DR7)),
        ("RDTSC", request(RDTSC)),
        ("RDTSCP", request(RDTSCP)),
        ("RDPMC", request(RDPMC)),
        ("CPUID", with(request(CPUID), |r| r.rax = 0xd)),
        ("INVD", request(INVD)),
        ("RDMSR", request(MSR)),
        ("WRMSR", with(request(MSR), |r| r.exit_info_1 = 1)),
        ("VMMCALL", request(VMMCALL)),
        ("WBINVD", request(WBINVD)),
        ("MONITOR", request(MONITOR)),
        ("MWAIT", request(MWAIT)),
        ("OUT", with(request(IOIO), |r| r.exit_info_1 = io_size(1))),
        (
            "IN, any count",
            with(request(IOIO), |r| {
                r.exit_info_1 = IO_IN | io_size(4);
                r.exit_info_2 = u64::MAX;
            }),
        ),
        ("INSB, whole buffer", string_io(0x7f0, 1)),
        ("INSD, count 0", string_io(0, 4)),
        ("string I/O, size 0", string_io(u64::MAX, 0)),
        (
            "INSW, v1 outside",
            v1_outside(string_io(SCRATCH_LIMIT / 2, 2)),
        ),
        ("MMIO_READ, 8", mmio(MMIO_READ, 8)),
        ("MMIO_WRITE, 1", mmio(MMIO_WRITE, 1)),
        ("MMIO_READ, 0", mmio(MMIO_READ, 0)),
        (
            "MMIO_WRITE, v1 in GHCB",
            with(mmio(MMIO_WRITE, 0x7f0), |r| r.ghcb_version = 1),
        ),
        (
            "MMIO_READ, v1 outside",
            v1_outside(mmio(MMIO_READ, SCRATCH_LIMIT)),
        ),
        ("NMI_COMPLETE", request(NMI_COMPLETE)),
        ("AP_HLT_LOOP", request(AP_HLT_LOOP)),
        (
            "AP_JUMP_TABLE set",
            with(request(AP_JUMP_TABLE), |r| r.exit_info_2 = 0x9000),
        ),
        (
            "AP_JUMP_TABLE get",
            with(request(AP_JUMP_TABLE), |r| r.exit_info_1 = 1),
        ),
        ("PSC", request(PSC)),
        ("PSC, v1 outside", v1_outside(request(PSC))),
        ("GUEST_REQUEST", guest_request(GUEST_REQUEST)),
        ("EXT_GUEST_REQUEST", guest_request(EXT_GUEST_REQUEST)),
        ("AP_CREATE_ON_INIT", request(AP_CREATION)),
        (
            "AP_CREATE, APIC ID 5",
            with(request(AP_CREATION), |r| {
                r.exit_info_1 = (5 << 32) | AP_CREATE
            }),
        ),
        (
            "AP_CREATE, VMSA at the top of the GPA space",
            with(request(AP_CREATION), |r| {
                r.exit_info_1 = AP_CREATE;
                r.exit_info_2 = !RESERVED_GPA & !(PAGE - 1);
            }),
        ),
        (
            "AP_DESTROY, RAX not valid",
            synced(with(request(AP_CREATION), |r| {
                r.exit_info_1 = AP_DESTROY;
                r.exit_info_2 = 0;
                r.valid_bitmap = without(r.valid_bitmap, RAX);
            })),
        ),
        ("HV_FEATURES", request(HV_FEATURES)),
        (
            "TERM_REQUEST",
            with(request(TERM_REQUEST), |r| r.exit_info_1 = 0x100),
        ),
        ("UNSUPPORTED_EVENT", request(UNSUPPORTED_EVENT)),
    ]
}

#[test]
fn valid_requests_of_every_handled_exit_code_are_accepted() {
    let accepted = accepted();
    for code in HANDLED {
        assert!(
            accepted.iter().any(|(_, req)| req.exit_code == code),
            "no row for {code:#x}"
        );
    }
    for (name, req) in accepted {
        assert_eq!(validate(&req), GhcbVerdict::Accept, "{name}: {req:#x?}");
        // A non-SNP guest gets the same, except for the SNP-only exit codes.
        let non_snp = with(req, |r| {
            r.snp = false;
            r.registered_gpa = 0;
        });
        let expected = if SNP_ONLY.contains(&req.exit_code) {
            GhcbVerdict::Malformed(Rule::SnpOnlyExitCode)
        } else {
            GhcbVerdict::Accept
        };
        assert_eq!(validate(&non_snp), expected, "{name}, non-SNP");
    }
    for code in UNHANDLED {
        assert_eq!(
            validate(&request(code)),
            GhcbVerdict::Malformed(Rule::UnknownExitCode),
            "{code:#x}"
        );
    }
}

#[test]
fn string_io_count_and_byte_limits() {
    for outside in [false, true] {
        let place = |req| if outside { v1_outside(req) } else { req };
        // Whatever the scratch area, the count and byte checks come first; within them the
        // request goes on to the scratch checks (too large under v1, outside the buffer in v2).
        let too_big = if outside {
            Rule::ScratchTooLarge
        } else {
            Rule::ScratchOutsideSharedBuffer
        };
        let verdict = |count, size| validate(&place(string_io(count, size)));
        assert_eq!(verdict(INT_MAX, 1), GhcbVerdict::Malformed(too_big));
        assert_eq!(
            verdict(INT_MAX + 1, 1),
            GhcbVerdict::Malformed(Rule::StringIoCount)
        );
        assert_eq!(
            verdict(u64::MAX, 4),
            GhcbVerdict::Malformed(Rule::StringIoCount)
        );
        // Sizes 1, 2 and 4 are the ones the CPU decodes; any other combination of the three
        // bits is refused first, whatever the count.
        for size in [3, 5, 6, 7] {
            for count in [1, INT_MAX / size + 1, u64::MAX] {
                assert_eq!(
                    verdict(count, size),
                    GhcbVerdict::Malformed(Rule::IoioSize),
                    "size {size} count {count:#x}"
                );
            }
        }
        for size in [2, 4] {
            let max = INT_MAX / size;
            assert_eq!(
                verdict(max, size),
                GhcbVerdict::Malformed(too_big),
                "{size}"
            );
            assert_eq!(
                verdict(max + 1, size),
                GhcbVerdict::Malformed(Rule::StringIoOverflow),
                "size {size}"
            );
            assert_eq!(
                verdict(INT_MAX, size),
                GhcbVerdict::Malformed(Rule::StringIoOverflow),
                "size {size}"
            );
        }
    }
    // The last element that still fits in the shared buffer, and one more.
    assert_eq!(validate(&string_io(0x7f0 / 4, 4)), GhcbVerdict::Accept);
    assert_eq!(
        validate(&string_io(0x7f0 / 4 + 1, 4)),
        GhcbVerdict::Malformed(Rule::ScratchOutsideSharedBuffer)
    );
}

#[test]
fn scratch_area_must_be_guest_memory_to_the_last_byte() {
    for (name, req, len) in [
        ("MMIO_READ", mmio(MMIO_READ, 8), 8),
        ("MMIO_WRITE", mmio(MMIO_WRITE, 3), 3),
        ("INSW", string_io(10, 2), 20),
        ("PSC", request(PSC), 8),
        ("largest", string_io(SCRATCH_LIMIT, 1), SCRATCH_LIMIT),
    ] {
        let short = with(v1_outside(req), |r| r.scratch_mapped = len - 1);
        let exact = with(v1_outside(req), |r| r.scratch_mapped = len);
        assert_eq!(
            validate(&short),
            GhcbVerdict::Malformed(Rule::ScratchOutsideMemory),
            "{name}"
        );
        assert_eq!(validate(&exact), GhcbVerdict::Accept, "{name}");
        // Under v2 the area is refused before its memory is looked at.
        let v2 = with(short, |r| r.ghcb_version = 2);
        assert_eq!(
            validate(&v2),
            GhcbVerdict::Malformed(Rule::ScratchOutsideGhcbV2),
            "{name}"
        );
    }
    // Too large beats unmapped: 7.3.4 refuses the size before it reads the guest.
    let huge = with(v1_outside(mmio(MMIO_READ, SCRATCH_LIMIT + 1)), |r| {
        r.scratch_mapped = 0
    });
    assert_eq!(
        validate(&huge),
        GhcbVerdict::Malformed(Rule::ScratchTooLarge)
    );
}

#[test]
fn scratch_area_in_the_ghcb_stays_in_the_shared_buffer() {
    // Every start in the GHCB page, for every MMIO length and the PSC header.
    for len in 1..=8 {
        for offset in 0..PAGE {
            let start = GHCB + offset;
            let inside = start >= BUFFER && start + len <= BUFFER_END;
            let expected = if inside {
                GhcbVerdict::Accept
            } else {
                GhcbVerdict::Malformed(Rule::ScratchOutsideSharedBuffer)
            };
            for version in [1, 2] {
                let req = with(mmio(MMIO_WRITE, len), |r| {
                    r.sw_scratch = start;
                    r.ghcb_version = version;
                });
                assert_eq!(
                    validate(&req),
                    expected,
                    "{len} bytes at {offset:#x}, v{version}"
                );
            }
            if len == 8 {
                let psc = with(request(PSC), |r| r.sw_scratch = start);
                assert_eq!(validate(&psc), expected, "PSC at {offset:#x}");
            }
        }
    }
    // A zero start in the GHCB page at GPA 0 is still "not provided".
    let at_zero = with(request(PSC), |r| {
        r.ghcb_gpa = 0;
        r.registered_gpa = 0;
        r.sw_scratch = 0;
    });
    assert_eq!(
        validate(&at_zero),
        GhcbVerdict::Malformed(Rule::ScratchZero)
    );
    // The last page of the address space: the buffer end does not wrap.
    let last = with(mmio(MMIO_READ, 8), |r| {
        r.ghcb_gpa = u64::MAX - 0xfff;
        r.registered_gpa = r.ghcb_gpa;
        r.sw_scratch = r.ghcb_gpa + 0xff0 - 8;
    });
    assert_eq!(validate(&last), GhcbVerdict::Accept);
    let wraps = with(last, |r| r.sw_scratch = u64::MAX - 6);
    assert_eq!(validate(&wraps), GhcbVerdict::Malformed(Rule::ScratchWrap));
}

#[test]
fn ap_creation_checks_in_the_order_of_sev_snp_ap_creation() {
    let ap = |edit: fn(&mut GhcbRequest)| validate(&with(request(AP_CREATION), edit));
    let malformed = GhcbVerdict::Malformed;
    // The target comes first: every other check fails too.
    assert_eq!(
        ap(|r| {
            r.ap_target = false;
            r.exit_info_1 = 7;
        }),
        malformed(Rule::ApCreationTarget)
    );
    assert_eq!(
        ap(|r| {
            r.ap_target = false;
            r.exit_info_1 = AP_DESTROY;
        }),
        malformed(Rule::ApCreationTarget)
    );
    // The request is the low half of SW_EXITINFO1; the APIC ID (high half) does not matter.
    for request in [3, 0xffff_ffff, (1 << 32) | 3] {
        let req = with(request_ap(request), |r| r.rax = 0);
        assert_eq!(
            validate(&req),
            malformed(Rule::ApCreationRequest),
            "{request:#x}"
        );
    }
    for create in [AP_CREATE_ON_INIT, AP_CREATE] {
        let base = request_ap((9 << 32) | create);
        let check = |edit: &dyn Fn(&mut GhcbRequest)| validate(&with(base, edit));
        assert_eq!(check(&|_| {}), GhcbVerdict::Accept);
        // Features first, then the VMSA's address, then its 2M alignment.
        assert_eq!(
            check(&|r| {
                r.rax = 0;
                r.exit_info_2 = 0;
            }),
            malformed(Rule::ApCreationFeatures)
        );
        assert_eq!(
            check(&|r| r.rax = VMSA_FEATURES << 32),
            malformed(Rule::ApCreationFeatures)
        );
        for vmsa in [VMSA | 1, VMSA | 0x800, 1 << 52, VMSA | (1 << 63)] {
            assert_eq!(
                check(&|r| r.exit_info_2 = vmsa),
                malformed(Rule::ApCreationVmsaAddress),
                "{vmsa:#x}"
            );
        }
        for vmsa in [0, 0x20_0000, 0x4000_0000, 0x000f_ffff_ffe0_0000] {
            assert_eq!(
                check(&|r| r.exit_info_2 = vmsa),
                malformed(Rule::ApCreationVmsaHugeAligned),
                "{vmsa:#x}"
            );
        }
        for vmsa in [0x1000, 0x1f_f000, 0x20_1000, 0x000f_ffff_ffff_f000] {
            assert_eq!(
                check(&|r| r.exit_info_2 = vmsa),
                GhcbVerdict::Accept,
                "{vmsa:#x}"
            );
        }
    }
    // Destroy takes neither features nor a VMSA.
    let destroy = with(request_ap(AP_DESTROY), |r| {
        r.rax = 0;
        r.exit_info_2 = 1;
    });
    assert_eq!(validate(&destroy), GhcbVerdict::Accept);
    // Not an SNP guest: the SNP-only exit code comes before any AP check.
    let non_snp = with(request_ap(7), |r| {
        r.snp = false;
        r.ap_target = false;
    });
    assert_eq!(validate(&non_snp), malformed(Rule::SnpOnlyExitCode));
}

/// An AP_CREATION request with SW_EXITINFO1 `info1`, otherwise as [`request()`] builds it.
fn request_ap(info1: u64) -> GhcbRequest {
    with(request(AP_CREATION), |r| r.exit_info_1 = info1)
}

#[test]
fn snp_only_msr_protocol_requests() {
    for info in 0..0x1000u64 {
        for high in [0, 0x1234 << 12, u64::MAX << 12] {
            let msr = high | info;
            let snp_only = matches!(info, 0x010 | 0x012 | 0x014);
            let expected = if snp_only {
                MsrVerdict::Ignore(Rule::MsrSnpOnly)
            } else {
                MsrVerdict::Handle
            };
            assert_eq!(validate_msr(msr, false), expected, "{msr:#x}, non-SNP");
            assert_eq!(validate_msr(msr, true), MsrVerdict::Handle, "{msr:#x}, SNP");
        }
    }
    // GHCB_MSR_TERM_REQ is served (the termination is the guest's to ask for).
    assert_eq!(validate_msr(0x100, false), MsrVerdict::Handle);
    assert_eq!(validate_msr(0x100, true), MsrVerdict::Handle);
}

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// One of `pool`, or (one time in `pool.len() + 1`) a random value.
    fn pick(&mut self, pool: &[u64]) -> u64 {
        let i = (self.next() % (pool.len() as u64 + 1)) as usize;
        match pool.get(i) {
            Some(&value) => value,
            None => self.next(),
        }
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }
}

/// A request built from values near every boundary of the rules.
fn random_request(rng: &mut Rng) -> GhcbRequest {
    let exit_code = rng.pick(&[HANDLED.as_slice(), UNHANDLED.as_slice()].concat());
    let exit_info_1 = rng.pick(&[
        0,
        1,
        2,
        IO_IN | io_size(1),
        io_size(2),
        IO_STR | IO_IN | io_size(1),
        IO_STR | io_size(2),
        IO_STR | io_size(4),
        IO_STR | io_size(7),
        0x10000,
        0xffff_0000_0000_0002,
    ]);
    let exit_info_2 = rng.pick(&[
        0,
        1,
        8,
        9,
        0x10000,
        0x11000,
        0x7f0,
        SCRATCH_LIMIT,
        SCRATCH_LIMIT + 1,
        INT_MAX,
        INT_MAX + 1,
        0x4000_0000,
        u64::MAX,
    ]);
    let valid_bitmap = if rng.chance(4) {
        [rng.next(), rng.next()]
    } else if rng.chance(8) {
        without([u64::MAX; 2], (rng.next() % 128) as u8)
    } else {
        [u64::MAX; 2]
    };
    let snp = rng.chance(2);
    GhcbRequest {
        exit_code,
        exit_info_1,
        exit_info_2,
        valid_bitmap,
        rax: rng.pick(&[0, 0xd, 1]),
        sw_scratch: rng.pick(&[
            0,
            BUFFER,
            BUFFER + 8,
            BUFFER_END - 8,
            BUFFER - 1,
            GHCB,
            OUTSIDE,
            u64::MAX - 3,
        ]),
        ghcb_gpa: GHCB,
        registered_gpa: if rng.chance(16) { 0 } else { GHCB },
        scratch_mapped: rng.pick(&[0, 4, 8, SCRATCH_LIMIT, u64::MAX]),
        usage: u32::from(rng.chance(16)),
        vmsa_features: VMSA_FEATURES,
        reserved_gpa_bits: RESERVED_GPA,
        ghcb_version: if rng.chance(2) { 1 } else { 2 },
        snp,
        ap_target: !rng.chance(8),
    }
}

#[test]
fn every_rule_reason_and_beyond_case_is_reachable_and_ordered() {
    let mut rng = Rng(0x5eed_6c0b);
    let mut rules = Vec::new();
    let mut accepted = 0;
    for _ in 0..200_000 {
        let req = synced(random_request(&mut rng));
        let verdict = validate(&req);
        assert_eq!(validate(&req), verdict, "not deterministic");
        let first = if req.snp && req.ghcb_gpa != req.registered_gpa {
            Some(Rule::NotRegistered)
        } else if req.usage != 0 {
            Some(Rule::InvalidUsage)
        } else if !req.snp && SNP_ONLY.contains(&req.exit_code) {
            Some(Rule::SnpOnlyExitCode)
        } else if !ALWAYS.iter().all(|&bit| has(req.valid_bitmap, bit)) {
            Some(Rule::MissingInput)
        } else {
            None
        };
        match (first, verdict) {
            (Some(rule), _) => assert_eq!(verdict, GhcbVerdict::Malformed(rule), "{req:#x?}"),
            (None, GhcbVerdict::Accept) => accepted += 1,
            (None, GhcbVerdict::Malformed(rule)) => {
                assert_ne!(rule, Rule::MsrSnpOnly);
                if rule.reason() == MalformedReason::InvalidScratchArea {
                    assert!(
                        [IOIO, MMIO_READ, MMIO_WRITE, PSC].contains(&req.exit_code),
                        "{rule:?} for {req:#x?}"
                    );
                }
                if rule == Rule::UnknownExitCode {
                    assert!(!HANDLED.contains(&req.exit_code));
                }
                // The scratch memory is the last thing looked at.
                if rule == Rule::ScratchOutsideMemory {
                    let mapped = with(req, |r| r.scratch_mapped = u64::MAX);
                    assert_eq!(validate(&mapped), GhcbVerdict::Accept, "{req:#x?}");
                }
            }
        }
        if let GhcbVerdict::Malformed(rule) = verdict {
            rules.push(rule);
        }
    }
    for _ in 0..10_000 {
        let msr = (rng.next() & !0xfff) | (rng.pick(&[0x010, 0x012, 0x014, 0x100, 0x002]) & 0xfff);
        if let MsrVerdict::Ignore(rule) = validate_msr(msr, rng.chance(2)) {
            rules.push(rule);
        }
    }
    assert!(accepted > 1000, "only {accepted} accepted");
    for rule in Rule::ALL {
        assert!(rules.contains(&rule), "{rule:?} never reached");
    }
    for reason in MalformedReason::ALL {
        assert!(
            rules.iter().any(|rule| rule.reason() == reason),
            "{reason:?} never reached"
        );
    }
    for beyond in BeyondUpstream::ALL {
        assert!(
            rules
                .iter()
                .any(|rule| rule.beyond_upstream() == Some(beyond)),
            "{beyond:?} never reached"
        );
    }
    assert_eq!(
        MalformedReason::ALL.map(|reason| reason as u64),
        [1, 2, 3, 4, 5, 6]
    );
}
