// SPDX-License-Identifier: GPL-2.0

//! Calls one decision of the pure files over one fixed input set, for `scripts/bench-host`.
//!
//! Usage: `bench_decisions DECISION SET REPS`, or `bench_decisions --list` for the pairs (one a
//! line: decision, set, wrapper symbol, empty wrapper symbol), or `bench_decisions --show
//! DECISION SET` for the verdict of each input of the set.
//!
//! The run calls the decision's `#[inline(never)]` wrapper (`bench_<decision>`) REPS times per
//! input of SET, in the set's order, and then the same number of times the matching empty
//! wrapper (`bench_empty_<kind>`: same argument, returns a constant), which measures what calling
//! a wrapper costs. Inputs and results go through `std::hint::black_box`, so nothing is folded
//! away. Instruction counts come from callgrind with `--toggle-collect` on the wrappers: each
//! wrapper's inclusive cost divided by its calls is the cost per call. The program itself only
//! prints the number of calls of each wrapper.

use std::hint::black_box;
use std::process::ExitCode;

use svm_guard_host::ghcb::{
    self, GhcbRequest, GhcbVerdict, MsrVerdict, GHCB_BIT_CPL, GHCB_BIT_RAX, GHCB_BIT_RCX,
    GHCB_BIT_RDX, GHCB_BIT_SW_EXIT_CODE, GHCB_BIT_SW_EXIT_INFO_1, GHCB_BIT_SW_EXIT_INFO_2,
    GHCB_BIT_SW_SCRATCH, GHCB_SHARED_BUFFER_START, SVM_EXIT_CPUID, SVM_EXIT_IOIO, SVM_EXIT_MSR,
    SVM_IOIO_SIZE_SHIFT, SVM_IOIO_STR_MASK, SVM_IOIO_TYPE_MASK, SVM_VMGEXIT_GUEST_REQUEST,
    SVM_VMGEXIT_HV_FEATURES, SVM_VMGEXIT_MMIO_READ,
};
use svm_guard_host::nmi::{self, NmiContext, NmiSite, NmiVerdict};
use svm_guard_host::svm_skip::{self, CpuMode, PendingEvent, SkipVerdict};

/// One `decide_skip()` input.
#[derive(Clone, Copy)]
struct SkipInput {
    bytes: Option<&'static [u8]>,
    mode: CpuMode,
    event: PendingEvent,
}

#[inline(never)]
fn bench_decide_skip(input: &SkipInput) -> SkipVerdict {
    svm_skip::decide_skip(input.bytes, input.mode, input.event)
}

#[inline(never)]
fn bench_empty_skip(input: &SkipInput) -> SkipVerdict {
    // CAST: a fieldless enum's discriminant.
    SkipVerdict::Skip {
        len: input.mode as u8,
    }
}

#[inline(never)]
fn bench_validate(req: &GhcbRequest) -> GhcbVerdict {
    ghcb::validate(req)
}

#[inline(never)]
fn bench_empty_ghcb(req: &GhcbRequest) -> GhcbVerdict {
    if req.snp {
        GhcbVerdict::Accept
    } else {
        GhcbVerdict::Malformed(ghcb::Rule::UnknownExitCode)
    }
}

#[inline(never)]
fn bench_validate_msr(input: &(u64, bool)) -> MsrVerdict {
    ghcb::validate_msr(input.0, input.1)
}

#[inline(never)]
fn bench_empty_msr(input: &(u64, bool)) -> MsrVerdict {
    if input.1 {
        MsrVerdict::Handle
    } else {
        MsrVerdict::Ignore(ghcb::Rule::MsrSnpOnly)
    }
}

#[inline(never)]
fn bench_nmi_verdict(ctx: &NmiContext) -> NmiVerdict {
    nmi::nmi_verdict(*ctx)
}

#[inline(never)]
fn bench_nmi_legacy_verdict(ctx: &NmiContext) -> NmiVerdict {
    nmi::nmi_legacy_verdict(*ctx)
}

#[inline(never)]
fn bench_empty_nmi(ctx: &NmiContext) -> NmiVerdict {
    if ctx.sev_es {
        NmiVerdict::Hardware
    } else {
        NmiVerdict::Software
    }
}

const fn soft(vector: u8) -> PendingEvent {
    PendingEvent { vector }
}

const fn skip(bytes: &'static [u8], mode: CpuMode, event: PendingEvent) -> SkipInput {
    SkipInput {
        bytes: Some(bytes),
        mode,
        event,
    }
}

/// What a guest re-injects in practice, and the drops around it.
const SKIP_MIX: &[SkipInput] = &[
    // INT3 (CC), 64-bit and 32-bit.
    skip(&[0xcc, 0x90], CpuMode::Long64, soft(3)),
    skip(&[0xcc, 0x90], CpuMode::Protected32, soft(3)),
    // INT n (CD ib): Linux's int $0x80, a real-mode int $0x10, a 16-bit protected int $0x21.
    skip(&[0xcd, 0x80], CpuMode::Protected32, soft(0x80)),
    skip(&[0xcd, 0x10], CpuMode::Real, soft(0x10)),
    skip(&[0xcd, 0x21], CpuMode::Protected16, soft(0x21)),
    skip(&[0xcd, 0x21], CpuMode::Vm86, soft(0x21)),
    // INTO (CE) in 32-bit protected mode and in compatibility mode.
    skip(&[0xce], CpuMode::Protected32, soft(4)),
    skip(&[0xce], CpuMode::Compat, soft(4)),
    // INT1 (F1), which matches no soft event.
    skip(&[0xf1], CpuMode::Long64, soft(1)),
    // INT3 rewritten back to a 5-byte NOP, and INT n rewritten to another vector.
    skip(&[0x0f, 0x1f, 0x44, 0x00, 0x00], CpuMode::Long64, soft(3)),
    skip(&[0xcd, 0x81], CpuMode::Protected32, soft(0x80)),
    // A few prefixes: operand size, REX.W, a segment override and REP.
    skip(&[0x66, 0xcd, 0x80], CpuMode::Protected32, soft(0x80)),
    skip(&[0x48, 0xcc], CpuMode::Long64, soft(3)),
    skip(&[0x2e, 0xf3, 0xcd, 0x29], CpuMode::Long64, soft(0x29)),
    // LOCK, INTO in 64-bit mode, no bytes (SEV).
    skip(&[0xf0, 0xcc], CpuMode::Long64, soft(3)),
    skip(&[0xce], CpuMode::Long64, soft(4)),
    SkipInput {
        bytes: None,
        mode: CpuMode::Long64,
        event: soft(3),
    },
];

/// 14 legacy prefixes, REX and CD ib in 64-bit mode: the window (15 bytes) is all prefixes,
/// each one tested against the legacy set and the REX range.
const SKIP_14_PREFIXES_REX: &[SkipInput] = &[skip(
    &[
        0x66, 0x67, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf2, 0xf3, 0x48,
        0xcd, 0x80,
    ],
    CpuMode::Long64,
    soft(0x80),
)];

/// 15 bytes of prefixes and nothing else, in 64-bit mode (REX last, the slowest to classify).
const SKIP_15_PREFIXES: &[SkipInput] = &[skip(
    &[
        0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x4f,
    ],
    CpuMode::Long64,
    soft(3),
)];

/// The longest instruction that is skipped: 13 prefixes and CD ib, 15 bytes.
const SKIP_15_BYTE_INT_N: &[SkipInput] = &[skip(
    &[
        0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x4f, 0xcd, 0x80,
    ],
    CpuMode::Long64,
    soft(0x80),
)];

const GHCB_GPA: u64 = 0x7000;

/// Valid-bitmap words with `bits` marked valid.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "const fn over constant bench inputs only: a bad index or shift fails the build"
)]
const fn bitmap(bits: &[u8]) -> [u64; 2] {
    let mut words = [0u64; 2];
    let mut i = 0;
    while i < bits.len() {
        let bit = bits[i];
        words[(bit / 64) as usize] |= 1 << (bit % 64);
        i += 1;
    }
    words
}

const EXIT_FIELDS: [u8; 3] = [
    GHCB_BIT_SW_EXIT_CODE,
    GHCB_BIT_SW_EXIT_INFO_1,
    GHCB_BIT_SW_EXIT_INFO_2,
];

/// An SNP request (version 2) at its registered GHCB with the exit fields and `more` valid.
const fn request(exit_code: u64, more: &[u8; 4]) -> GhcbRequest {
    let all = [
        EXIT_FIELDS[0],
        EXIT_FIELDS[1],
        EXIT_FIELDS[2],
        more[0],
        more[1],
        more[2],
        more[3],
    ];
    GhcbRequest {
        exit_code,
        exit_info_1: 0,
        exit_info_2: 0,
        valid_bitmap: bitmap(&all),
        rax: 0,
        sw_scratch: 0,
        ghcb_gpa: GHCB_GPA,
        registered_gpa: GHCB_GPA,
        scratch_mapped: 0,
        vmsa_features: 0,
        reserved_gpa_bits: 0,
        usage: 0,
        ghcb_version: 2,
        snp: true,
        ap_target: false,
    }
}

/// What SEV-ES and SNP guests send most, and the malformed answers around it.
const GHCB_MIX: &[GhcbRequest] = &[
    // CPUID leaf 1.
    GhcbRequest {
        rax: 1,
        ..request(
            SVM_EXIT_CPUID,
            &[GHCB_BIT_RAX, GHCB_BIT_RCX, GHCB_BIT_RAX, GHCB_BIT_RAX],
        )
    },
    // OUT of one byte (port in SW_EXITINFO1 bits 16-31).
    GhcbRequest {
        exit_info_1: (0x3f8 << 16) | (1 << SVM_IOIO_SIZE_SHIFT),
        ..request(
            SVM_EXIT_IOIO,
            &[GHCB_BIT_RAX, GHCB_BIT_RAX, GHCB_BIT_RAX, GHCB_BIT_RAX],
        )
    },
    // WRMSR.
    GhcbRequest {
        exit_info_1: 1,
        ..request(
            SVM_EXIT_MSR,
            &[GHCB_BIT_RAX, GHCB_BIT_RCX, GHCB_BIT_RDX, GHCB_BIT_RAX],
        )
    },
    // MMIO read of 4 bytes into the shared buffer.
    GhcbRequest {
        exit_info_1: 0xfee0_0030,
        exit_info_2: 4,
        sw_scratch: GHCB_GPA + GHCB_SHARED_BUFFER_START,
        ..request(
            SVM_VMGEXIT_MMIO_READ,
            &[
                GHCB_BIT_SW_SCRATCH,
                GHCB_BIT_SW_SCRATCH,
                GHCB_BIT_SW_SCRATCH,
                GHCB_BIT_SW_SCRATCH,
            ],
        )
    },
    // HV_FEATURES.
    request(
        SVM_VMGEXIT_HV_FEATURES,
        &[
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_CODE,
        ],
    ),
    // VMMCALL without CPL: MissingInput.
    request(
        ghcb::SVM_EXIT_VMMCALL,
        &[GHCB_BIT_RAX, GHCB_BIT_RAX, GHCB_BIT_RAX, GHCB_BIT_RAX],
    ),
    // An exit code KVM does not handle (HLT): UnknownExitCode.
    request(
        0x078,
        &[GHCB_BIT_RAX, GHCB_BIT_RAX, GHCB_BIT_RAX, GHCB_BIT_CPL],
    ),
];

/// The longest path: INS of 4-byte elements under protocol version 1, scratch area outside
/// the GHCB page and within guest memory; every check up to the last one of
/// `setup_vmgexit_scratch()` runs and passes.
const GHCB_STRING_IOIO_V1: &[GhcbRequest] = &[GhcbRequest {
    exit_info_1: (0x60 << 16) | SVM_IOIO_STR_MASK | SVM_IOIO_TYPE_MASK | (4 << SVM_IOIO_SIZE_SHIFT),
    exit_info_2: 1024,
    sw_scratch: 0x10_0000,
    scratch_mapped: 0x1_0000,
    ghcb_version: 1,
    ..request(
        SVM_EXIT_IOIO,
        &[
            GHCB_BIT_SW_SCRATCH,
            GHCB_BIT_SW_SCRATCH,
            GHCB_BIT_SW_SCRATCH,
            GHCB_BIT_SW_SCRATCH,
        ],
    )
}];

/// SNP guest request: the SNP-only and page checks.
const GHCB_SNP_GUEST_REQUEST: &[GhcbRequest] = &[GhcbRequest {
    exit_info_1: 0x20_0000,
    exit_info_2: 0x20_1000,
    ..request(
        SVM_VMGEXIT_GUEST_REQUEST,
        &[
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_CODE,
            GHCB_BIT_SW_EXIT_CODE,
        ],
    )
}];

/// MSR-protocol requests: CPUID, SEV info, the SNP-only three from SNP and non-SNP guests.
const MSR_MIX: &[(u64, bool)] = &[
    (0x0000_0001_0000_0004, false),
    (0x002, false),
    (0x010, false),
    (0x012, true),
    (0x7000 | 0x012, false),
    (0x014, true),
];

/// All 24 NMI contexts: three sites by vNMI by guest mode by SEV-ES.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "const fn over constant bench inputs only: n < 24, n / 8 < 3"
)]
const fn nmi_space() -> [NmiContext; 24] {
    let sites = [
        NmiSite::Inject,
        NmiSite::SetMask(true),
        NmiSite::SetMask(false),
    ];
    let mut out = [NmiContext {
        site: NmiSite::Inject,
        vnmi_enabled: false,
        guest_mode: false,
        sev_es: false,
    }; 24];
    let mut n = 0;
    while n < 24 {
        out[n] = NmiContext {
            site: sites[n / 8],
            vnmi_enabled: n & 4 != 0,
            guest_mode: n & 2 != 0,
            sev_es: n & 1 != 0,
        };
        n += 1;
    }
    out
}

const NMI_SPACE: [NmiContext; 24] = nmi_space();

/// Calls `real` and then `empty` `reps` times over `set`; returns the calls of each.
fn run<I, O>(set: &[I], reps: u64, real: fn(&I) -> O, empty: fn(&I) -> O) -> u64 {
    for wrapper in [real, empty] {
        for _ in 0..reps {
            for input in set {
                black_box(wrapper(black_box(input)));
            }
        }
    }
    // CAST: a set holds at most a few dozen inputs.
    reps.saturating_mul(set.len() as u64)
}

/// The (decision, set) pairs, each with its wrapper and its empty wrapper.
const PAIRS: &[(&str, &str, &str, &str)] = &[
    (
        "decide_skip",
        "mix",
        "bench_decide_skip",
        "bench_empty_skip",
    ),
    (
        "decide_skip",
        "14-prefixes-rex-cd-ib",
        "bench_decide_skip",
        "bench_empty_skip",
    ),
    (
        "decide_skip",
        "15-prefixes",
        "bench_decide_skip",
        "bench_empty_skip",
    ),
    (
        "decide_skip",
        "15-byte-int-n",
        "bench_decide_skip",
        "bench_empty_skip",
    ),
    ("validate", "mix", "bench_validate", "bench_empty_ghcb"),
    (
        "validate",
        "string-ioio-v1",
        "bench_validate",
        "bench_empty_ghcb",
    ),
    (
        "validate",
        "snp-guest-request",
        "bench_validate",
        "bench_empty_ghcb",
    ),
    (
        "validate_msr",
        "mix",
        "bench_validate_msr",
        "bench_empty_msr",
    ),
    (
        "nmi_verdict",
        "all-24",
        "bench_nmi_verdict",
        "bench_empty_nmi",
    ),
    (
        "nmi_legacy_verdict",
        "all-24",
        "bench_nmi_legacy_verdict",
        "bench_empty_nmi",
    ),
];

/// The input sets of each decision; an unknown set is empty.
fn skip_set(set: &str) -> &'static [SkipInput] {
    match set {
        "mix" => SKIP_MIX,
        "14-prefixes-rex-cd-ib" => SKIP_14_PREFIXES_REX,
        "15-prefixes" => SKIP_15_PREFIXES,
        "15-byte-int-n" => SKIP_15_BYTE_INT_N,
        _ => &[],
    }
}

fn ghcb_set(set: &str) -> &'static [GhcbRequest] {
    match set {
        "mix" => GHCB_MIX,
        "string-ioio-v1" => GHCB_STRING_IOIO_V1,
        "snp-guest-request" => GHCB_SNP_GUEST_REQUEST,
        _ => &[],
    }
}

fn msr_set(set: &str) -> &'static [(u64, bool)] {
    match set {
        "mix" => MSR_MIX,
        _ => &[],
    }
}

fn nmi_set(set: &str) -> &'static [NmiContext] {
    match set {
        "all-24" => &NMI_SPACE,
        _ => &[],
    }
}

/// Runs `decision` over `set`; returns the calls of each wrapper, `None` if there is no such set.
fn dispatch(decision: &str, set: &str, reps: u64) -> Option<u64> {
    let calls = match decision {
        "decide_skip" => run(skip_set(set), reps, bench_decide_skip, bench_empty_skip),
        "validate" => run(ghcb_set(set), reps, bench_validate, bench_empty_ghcb),
        "validate_msr" => run(msr_set(set), reps, bench_validate_msr, bench_empty_msr),
        "nmi_verdict" => run(nmi_set(set), reps, bench_nmi_verdict, bench_empty_nmi),
        "nmi_legacy_verdict" => run(
            nmi_set(set),
            reps,
            bench_nmi_legacy_verdict,
            bench_empty_nmi,
        ),
        _ => 0,
    };
    (calls != 0).then_some(calls)
}

/// Prints the verdict of every input of `set`, to check that a set takes the paths it claims.
fn show(decision: &str, set: &str) {
    match decision {
        "decide_skip" => skip_set(set)
            .iter()
            .for_each(|i| println!("{:02x?} {:?}: {:?}", i.bytes, i.mode, bench_decide_skip(i))),
        "validate" => ghcb_set(set)
            .iter()
            .for_each(|r| println!("{:#x}: {:?}", r.exit_code, bench_validate(r))),
        "validate_msr" => msr_set(set)
            .iter()
            .for_each(|m| println!("{:#x} snp={}: {:?}", m.0, m.1, bench_validate_msr(m))),
        "nmi_verdict" | "nmi_legacy_verdict" => nmi_set(set).iter().for_each(|c| {
            println!(
                "{c:?}: {:?} (legacy {:?})",
                bench_nmi_verdict(c),
                bench_nmi_legacy_verdict(c)
            )
        }),
        _ => {}
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, list] if list == "--list" => {
            for (decision, set, wrapper, empty) in PAIRS {
                println!("{decision} {set} bench_decisions::{wrapper} bench_decisions::{empty}");
            }
            ExitCode::SUCCESS
        }
        [_, flag, decision, set] if flag == "--show" => {
            show(decision, set);
            ExitCode::SUCCESS
        }
        [_, decision, set, reps] => {
            let Some(calls) = reps
                .parse::<u64>()
                .ok()
                .filter(|&r| r > 0)
                .and_then(|reps| dispatch(decision, set, reps))
            else {
                eprintln!("bench_decisions: no set '{set}' for '{decision}', or REPS is not > 0");
                return ExitCode::FAILURE;
            };
            println!("calls {calls}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: bench_decisions DECISION SET REPS | --list | --show DECISION SET");
            ExitCode::FAILURE
        }
    }
}
