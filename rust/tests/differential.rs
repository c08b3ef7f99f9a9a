// SPDX-License-Identifier: GPL-2.0

//! Differential test of `svm_skip::decode()` and `decide_skip()` against the iced-x86 decoder.
//!
//! Over four million seeded pseudo-random inputs (structured soft interrupts behind random
//! prefix runs, byte strings over the prefix and opcode alphabet, and fully random byte
//! strings of 0 to 16 bytes) in random CPU modes, our decoder must accept exactly the inputs
//! that iced decodes as INT3, INT n, INTO or INT1, with the same length and vector, and
//! `decide_skip()` must skip exactly when the instruction iced decoded raises the event.
//!
//! iced is run three times per input. The strict run (`DecoderOptions::NONE`) is the oracle: it
//! rejects a LOCK prefix on these instructions, INTO in 64-bit mode, and encodings longer than
//! 15 bytes (reported as an invalid instruction, or as missing bytes when fewer than 15 are
//! there). The lax run (`NO_INVALID_CHECK`) decodes a LOCKed soft interrupt with its lock
//! flag set; ours must reject every such input as `Locked`. A third, strict run with
//! `DecoderOptions::AMD` (SVM guests run on AMD CPUs) must agree with the first.

// clippy.toml's allow-*-in-tests covers only #[test] functions, not their helpers here; the
// Cargo.toml denials guard the decision code, and a panic is how a test fails.
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::time::Instant;

use iced_x86::{Code, Decoder, DecoderError, DecoderOptions};
use svm_guard_host::svm_skip::{
    decide_skip, decode, CpuMode, DecodeError, Decoded, PendingEvent, SkipVerdict, SoftInsn,
    MAX_INSN_LEN,
};

const MODES: [CpuMode; 6] = [
    CpuMode::Real,
    CpuMode::Vm86,
    CpuMode::Protected16,
    CpuMode::Protected32,
    CpuMode::Compat,
    CpuMode::Long64,
];

const LEGACY: [u8; 10] = [0x66, 0x67, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];
const SOFT_OPCODES: [u8; 4] = [0xcc, 0xcd, 0xce, 0xf1];
const LOCK: u8 = 0xf0;

/// Bytes the alphabet inputs are drawn from: prefixes, REX, LOCK, the soft interrupt opcodes
/// and a few immediates and other opcodes.
const ALPHABET: [u8; 32] = [
    0x66, 0x67, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x40, 0x41, 0x48, 0x4f, 0xf0, 0xcc,
    0xcd, 0xce, 0xf1, 0xcc, 0xcd, 0xce, 0xf1, 0x00, 0x01, 0x03, 0x04, 0x80, 0xff, 0x90, 0x0f, 0xc4,
];

const STRUCTURED_INPUTS: u64 = 2_000_000;
const ALPHABET_INPUTS: u64 = 1_000_000;
const RANDOM_INPUTS: u64 = 1_000_000;
const SEED: u64 = 0x5356_4d5f_4755_4152; // "SVM_GUAR"

/// xorshift64*: small, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 32) % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// iced bitnesses a mode is compared under; a compatibility-mode code segment is 16- or 32-bit.
fn bitnesses(mode: CpuMode) -> &'static [u32] {
    match mode {
        CpuMode::Real | CpuMode::Vm86 | CpuMode::Protected16 => &[16],
        CpuMode::Protected32 => &[32],
        CpuMode::Compat => &[16, 32],
        CpuMode::Long64 => &[64],
    }
}

/// What iced makes of the first instruction in `bytes`.
#[derive(Debug)]
struct Iced {
    /// The strict decoding, when it is a soft interrupt instruction.
    soft: Option<Decoded>,
    /// The strict decoder's error.
    error: DecoderError,
    /// The strict decoding with AMD's decoding rules, when it is a soft interrupt instruction.
    soft_amd: Option<Decoded>,
    /// The lax decoding is a soft interrupt instruction with a LOCK prefix.
    locked_soft: bool,
}

fn soft_insn(instr: &iced_x86::Instruction) -> Option<SoftInsn> {
    match instr.code() {
        Code::Int3 => Some(SoftInsn::Int3),
        Code::Int_imm8 => Some(SoftInsn::IntN(instr.immediate8())),
        Code::Into => Some(SoftInsn::Into),
        Code::Int1 => Some(SoftInsn::Int1),
        _ => None,
    }
}

/// Decodes the first instruction in `bytes` with `options`: the soft interrupt instruction if
/// it is one, and the decoder's error.
fn iced_strict(bytes: &[u8], bitness: u32, options: u32) -> (Option<Decoded>, DecoderError) {
    let mut decoder = Decoder::new(bitness, bytes, options);
    let instr = decoder.decode();
    let soft = soft_insn(&instr).map(|insn| {
        assert!(instr.len() <= MAX_INSN_LEN, "iced: {instr:?} is too long");
        assert!(!instr.has_lock_prefix(), "iced: strict {instr:?} has LOCK");
        Decoded {
            insn,
            len: instr.len() as u8,
        }
    });
    (soft, decoder.last_error())
}

fn iced(bytes: &[u8], bitness: u32) -> Iced {
    let (soft, error) = iced_strict(bytes, bitness, DecoderOptions::NONE);
    let (soft_amd, _) = iced_strict(bytes, bitness, DecoderOptions::AMD);
    let mut lax = Decoder::new(bitness, bytes, DecoderOptions::NO_INVALID_CHECK);
    let instr = lax.decode();
    let locked_soft = soft_insn(&instr).is_some() && instr.has_lock_prefix();
    Iced {
        soft,
        error,
        soft_amd,
        locked_soft,
    }
}

/// Whether executing `insn` raises `event`, written from the SDM independently of
/// `PendingEvent::raised_by()`: INT3, INTO and INT n raise a software exception or interrupt
/// with their vector; INT1 raises a privileged software exception, which is never the soft
/// event kvm-amd re-injects by a skip.
fn raises(insn: SoftInsn, event: PendingEvent) -> bool {
    match insn {
        SoftInsn::Int3 => event.vector == 3,
        SoftInsn::IntN(n) => event.vector == n,
        SoftInsn::Into => event.vector == 4,
        SoftInsn::Int1 => false,
    }
}

/// Outcome of comparing one input in one mode.
enum Outcome {
    BothAccept,
    BothReject,
    Disagree(String),
}

/// Compares ours with iced on `bytes` in `mode` under one iced `bitness`.
fn compare(bytes: &[u8], mode: CpuMode, bitness: u32, event: PendingEvent) -> Outcome {
    let ours = decode(bytes, mode);
    let theirs = iced(bytes, bitness);
    let why = |what: &str| {
        Outcome::Disagree(format!(
            "{what}: bytes {bytes:02x?} mode {mode:?} bitness {bitness}: ours {ours:?}, \
             iced {theirs:?}"
        ))
    };

    if theirs.soft != theirs.soft_amd {
        return why("iced's Intel and AMD decodings differ");
    }

    // LOCK makes these instructions #UD: iced's lax decoding flags it, ours must reject it.
    if theirs.locked_soft && ours != Err(DecodeError::Locked) {
        return why("LOCKed soft interrupt not rejected as Locked");
    }

    // decide_skip() skips exactly when iced's instruction raises the event, by iced's length.
    let expected = match theirs.soft {
        Some(d) if raises(d.insn, event) => Some(d.len),
        _ => None,
    };
    let verdict = decide_skip(Some(bytes), mode, event);
    let skipped = match verdict {
        SkipVerdict::Skip { len } => Some(len),
        SkipVerdict::DropAndRetry(_) => None,
    };
    if skipped != expected {
        return why(&format!("decide_skip for {event:?} gave {verdict:?}"));
    }
    if let Some(len) = skipped {
        if !(1..=MAX_INSN_LEN as u8).contains(&len) || usize::from(len) > bytes.len() {
            return why(&format!("skip length {len} out of range"));
        }
    }

    match (ours, theirs.soft) {
        (Ok(d), Some(i)) if d == i => Outcome::BothAccept,
        (Ok(_), _) | (_, Some(_)) => why("decodings differ"),
        (Err(e), None) => {
            // Where ours names the reason, iced must agree on it.
            let consistent = match e {
                DecodeError::Truncated => theirs.error == DecoderError::NoMoreBytes,
                // Ours says too long only with at least 15 bytes present.
                DecodeError::TooLong => theirs.error == DecoderError::InvalidInstruction,
                // iced reports an invalid opcode as missing bytes while fewer than 15 are
                // present: more bytes could not make it valid, but that is its convention.
                DecodeError::IntoIn64BitMode => {
                    theirs.error == DecoderError::InvalidInstruction
                        || (theirs.error == DecoderError::NoMoreBytes && bytes.len() < MAX_INSN_LEN)
                }
                DecodeError::Locked | DecodeError::NotSoftInt(_) => true,
            };
            if consistent {
                Outcome::BothReject
            } else {
                why("rejection reasons differ")
            }
        }
    }
}

/// A soft interrupt opcode (or, rarely, another byte) behind a random prefix run of 0 to 17
/// bytes mixing legacy prefixes, REX, LOCK and stray bytes, then an immediate and 0 to 6
/// trailing bytes; one in ten is cut short at a random length.
fn structured(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    let prefixes = if rng.chance(70) {
        rng.below(6)
    } else {
        rng.below(18)
    };
    for _ in 0..prefixes {
        let r = rng.below(100);
        bytes.push(match r {
            0..=59 => rng.pick(&LEGACY),
            60..=91 => 0x40 | (rng.byte() & 0xf),
            92..=94 => LOCK,
            _ => rng.byte(),
        });
    }
    bytes.push(if rng.chance(90) {
        rng.pick(&SOFT_OPCODES)
    } else {
        rng.byte()
    });
    bytes.push(rng.byte());
    for _ in 0..rng.below(7) {
        bytes.push(rng.byte());
    }
    if rng.chance(10) {
        let cut = rng.below(bytes.len() + 1);
        bytes.truncate(cut);
    }
    bytes
}

/// 0 to 17 bytes from [`ALPHABET`].
fn alphabet(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(18)).map(|_| rng.pick(&ALPHABET)).collect()
}

/// 0 to 16 fully random bytes.
fn random(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(17)).map(|_| rng.byte()).collect()
}

/// A pending event: often the one the instruction in `bytes` would raise, else random.
fn event(rng: &mut Rng, bytes: &[u8]) -> PendingEvent {
    let vector = match rng.below(4) {
        0 => rng.byte(),
        1 => rng.pick(&[1, 3, 4]),
        // The byte after the first INT n opcode, so that INT n vectors match often.
        _ => match bytes.iter().position(|&b| b == 0xcd) {
            Some(at) => bytes.get(at + 1).copied().unwrap_or(0),
            None => rng.pick(&[1, 3, 4]),
        },
    };
    PendingEvent { vector }
}

/// Makes one input.
type Generator = fn(&mut Rng) -> Vec<u8>;

#[derive(Default)]
struct Counts {
    inputs: u64,
    comparisons: u64,
    both_accept: u64,
    both_reject: u64,
    disagreements: u64,
    skips: u64,
    locked_soft: u64,
    too_long_or_truncated: u64,
}

#[test]
fn svm_skip_agrees_with_iced() {
    let start = Instant::now();
    let mut rng = Rng(SEED);
    let mut counts = Counts::default();
    let mut examples = Vec::new();
    let generators: [(u64, Generator); 3] = [
        (STRUCTURED_INPUTS, structured),
        (ALPHABET_INPUTS, alphabet),
        (RANDOM_INPUTS, random),
    ];
    for (inputs, generate) in generators {
        for _ in 0..inputs {
            let bytes = generate(&mut rng);
            let mode = rng.pick(&MODES);
            let event = event(&mut rng, &bytes);
            counts.inputs += 1;
            let (mut accept, mut reject, mut disagree) = (0, 0, 0);
            for &bitness in bitnesses(mode) {
                counts.comparisons += 1;
                match compare(&bytes, mode, bitness, event) {
                    Outcome::BothAccept => accept += 1,
                    Outcome::BothReject => reject += 1,
                    Outcome::Disagree(why) => {
                        disagree += 1;
                        if examples.len() < 20 {
                            examples.push(why);
                        }
                    }
                }
            }
            if disagree > 0 || (accept > 0 && reject > 0) {
                counts.disagreements += 1;
            } else if accept > 0 {
                counts.both_accept += 1;
            } else {
                counts.both_reject += 1;
            }
            if matches!(
                decide_skip(Some(&bytes), mode, event),
                SkipVerdict::Skip { .. }
            ) {
                counts.skips += 1;
            }
            if bitnesses(mode).iter().any(|&b| iced(&bytes, b).locked_soft) {
                counts.locked_soft += 1;
            }
            if matches!(
                decode(&bytes, mode),
                Err(DecodeError::TooLong | DecodeError::Truncated)
            ) {
                counts.too_long_or_truncated += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "differential: seed {SEED:#x}: {} inputs ({} comparisons with iced), {} both decoded \
         as a soft interrupt, {} both rejected, {} disagreements; {} skips, {} LOCKed soft \
         interrupts, {} too long or truncated; {:.1} s",
        counts.inputs,
        counts.comparisons,
        counts.both_accept,
        counts.both_reject,
        counts.disagreements,
        counts.skips,
        counts.locked_soft,
        counts.too_long_or_truncated,
        elapsed.as_secs_f64()
    );
    for why in &examples {
        eprintln!("  {why}");
    }
    assert!(counts.inputs >= 1_000_000);
    assert_eq!(
        counts.inputs,
        counts.both_accept + counts.both_reject + counts.disagreements
    );
    // The generators must reach every class, or the comparison proves little.
    assert!(counts.both_accept > 100_000 && counts.both_reject > 100_000);
    assert!(counts.skips > 10_000 && counts.locked_soft > 1_000);
    assert!(counts.too_long_or_truncated > 1_000);
    assert_eq!(
        counts.disagreements, 0,
        "first disagreements: {examples:#?}"
    );
}
