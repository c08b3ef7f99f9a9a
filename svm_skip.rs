// SPDX-License-Identifier: GPL-2.0

//! Decides whether KVM may skip the soft INTn instruction at CS:RIP when it re-injects its event.
//!
//! When a guest's INT3, INTO or INT n is interrupted while the CPU vectors it (for example
//! by a nested page fault on the IDT or the stack), KVM re-injects the event and, without a
//! NextRIP from hardware, must find the return address by decoding the instruction at CS:RIP.
//! The guest may have rewritten those bytes meanwhile (INT3 patching swaps INT3 in and out), so
//! the bytes are only trusted if they still encode the very event that is pending. Anything else
//! drops the event, and the guest re-executes whatever instruction is there now.
//!
//! This file uses only `core`: it is built into the module and into the host test crate.

/// Longest legal x86 instruction, in bytes; longer encodings raise #GP.
pub const MAX_INSN_LEN: usize = 15;

/// Processor mode of the guest's code segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    /// Real-address mode.
    Real,
    /// Virtual-8086 mode.
    Vm86,
    /// Protected mode with a 16-bit code segment.
    Protected16,
    /// Protected mode with a 32-bit code segment.
    Protected32,
    /// Long mode, compatibility submode (16- or 32-bit code segment).
    Compat,
    /// Long mode, 64-bit code segment.
    Long64,
}

/// A soft interrupt instruction decoded from the bytes at CS:RIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftInsn {
    /// `CC`: INT3, vector 3.
    Int3,
    /// `CD ib`: INT n, the vector is the immediate (0 is legal).
    IntN(u8),
    /// `CE`: INTO, vector 4; invalid (#UD) in 64-bit mode.
    Into,
    /// `F1`: INT1 (ICEBP), vector 1, a privileged software exception.
    Int1,
}

impl SoftInsn {
    /// Vector the instruction raises.
    pub fn vector(self) -> u8 {
        match self {
            SoftInsn::Int3 => 3,
            SoftInsn::IntN(vector) => vector,
            SoftInsn::Into => 4,
            SoftInsn::Int1 => 1,
        }
    }
}

/// A decoded soft interrupt instruction and its length including prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The instruction.
    pub insn: SoftInsn,
    /// Its length in bytes, 1 to [`MAX_INSN_LEN`].
    pub len: u8,
}

/// Why the bytes at CS:RIP are not a soft interrupt instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the instruction does.
    Truncated,
    /// Prefixes push the instruction past [`MAX_INSN_LEN`] bytes (#GP).
    TooLong,
    /// A LOCK prefix: it makes INTn raise #UD.
    Locked,
    /// INTO in 64-bit mode (#UD).
    IntoIn64BitMode,
    /// Another opcode.
    NotSoftInt(u8),
}

/// [`CLASS`] bit of the legacy prefixes other than LOCK: operand and address size, REP/REPNE
/// and the six segment overrides.
const LEGACY: u8 = 1;
/// [`CLASS`] bit of the REX prefixes `40`-`4F`, which are prefixes in 64-bit mode only.
const REX: u8 = 2;

/// Prefix class of `byte`: [`LEGACY`], [`REX`] or 0.
const fn prefix_class(byte: u8) -> u8 {
    match byte {
        0x66 | 0x67 | 0xf2 | 0xf3 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => LEGACY,
        0x40..=0x4f => REX,
        _ => 0,
    }
}

/// [`prefix_class`] of every byte value: one table load per byte scanned, where testing each
/// byte against ten legacy prefixes and a range costs a dozen instructions (svm_skip's worst
/// case, fourteen prefixes, is what `make bench-host` judges).
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of bounds fails the build"
)]
const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut byte = 0;
    while byte < class.len() {
        // CAST: `byte` < 256.
        class[byte] = prefix_class(byte as u8);
        byte += 1;
    }
    class
};

/// Index and value in `window` of the first byte that is not a prefix in `mode`, if any.
#[inline]
fn opcode_at(window: &[u8], mode: CpuMode) -> Option<(usize, u8)> {
    let prefix = if mode == CpuMode::Long64 {
        LEGACY | REX
    } else {
        LEGACY
    };
    let opcode = |(at, &b): (usize, &u8)| {
        (CLASS.get(usize::from(b)).map_or(0, |c| c & prefix) == 0).then_some((at, b))
    };
    // A full window (the common case: KVM reads 15 bytes unless a page ends) is scanned as a
    // fixed-size array, which the compiler unrolls without a bounds check per byte.
    match window.first_chunk::<MAX_INSN_LEN>() {
        Some(full) => full.iter().enumerate().find_map(opcode),
        None => window.iter().enumerate().find_map(opcode),
    }
}

/// Decodes `bytes` (fetched at CS:RIP) as a soft interrupt instruction in `mode`.
///
/// Accepts legacy prefixes (operand and address size, REP/REPNE, segment overrides) and, in
/// 64-bit mode only, REX prefixes; outside 64-bit mode `40`-`4F` are INC/DEC opcodes. Never
/// reads past `bytes` or past [`MAX_INSN_LEN`].
///
/// Inlined into [`decide_skip`], its one caller in the module: the verdict is then built
/// straight from the decoded bytes instead of from a `Result` packed into registers.
#[inline]
pub fn decode(bytes: &[u8], mode: CpuMode) -> Result<Decoded, DecodeError> {
    let window = bytes.get(..MAX_INSN_LEN).unwrap_or(bytes);
    let Some((op_at, op)) = opcode_at(window, mode) else {
        return Err(if bytes.len() >= MAX_INSN_LEN {
            DecodeError::TooLong
        } else {
            DecodeError::Truncated
        });
    };
    // `op_at` < MAX_INSN_LEN, so neither addition overflows.
    let imm_at = op_at.saturating_add(1);
    // Tests in order, not a jump table: CD ib, the longest case, is tested first.
    let (insn, len) = if op == 0xcd {
        match window.get(imm_at) {
            Some(&vector) => (SoftInsn::IntN(vector), imm_at.saturating_add(1)),
            None if imm_at >= MAX_INSN_LEN => return Err(DecodeError::TooLong),
            None => return Err(DecodeError::Truncated),
        }
    } else if op == 0xcc {
        (SoftInsn::Int3, imm_at)
    } else if op == 0xce && mode == CpuMode::Long64 {
        return Err(DecodeError::IntoIn64BitMode);
    } else if op == 0xce {
        (SoftInsn::Into, imm_at)
    } else if op == 0xf1 {
        (SoftInsn::Int1, imm_at)
    } else if op == 0xf0 {
        return Err(DecodeError::Locked);
    } else {
        return Err(DecodeError::NotSoftInt(op));
    };
    // CAST: every byte of the instruction is in `window`, so `len` <= MAX_INSN_LEN (15).
    Ok(Decoded {
        insn,
        len: len as u8,
    })
}

/// The soft event pending re-injection: a software exception (INT3, INTO) or a software
/// interrupt (INT n), the only events kvm-amd re-injects by skipping the instruction.
///
/// Both are matched by vector alone: emulators report INT3 as a software interrupt, and the
/// skip length is taken from the bytes that are present, so it always matches the instruction
/// that is treated as executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// Its vector.
    pub vector: u8,
}

impl PendingEvent {
    /// Returns whether executing `insn` raises this event: the vectors must match, and INT1
    /// (ICEBP), which raises a privileged software exception (#DB) that kvm-amd never
    /// re-injects this way, raises none.
    pub fn raised_by(self, insn: SoftInsn) -> bool {
        insn != SoftInsn::Int1 && self.vector == insn.vector()
    }
}

/// Why a skip was refused and the event dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No instruction bytes could be read (an SEV guest's encrypted memory).
    NoBytes,
    /// The bytes do not decode as a soft interrupt instruction.
    Undecodable(DecodeError),
    /// The bytes decode as a soft interrupt instruction that raises another event.
    Mismatch(SoftInsn),
}

/// What KVM does with the pending soft event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipVerdict {
    /// Advance RIP by `len` and re-inject the event.
    Skip {
        /// Bytes to skip, 1 to [`MAX_INSN_LEN`].
        len: u8,
    },
    /// Drop the event and resume at the same RIP; the guest re-executes what is there.
    DropAndRetry(DropReason),
}

/// Decides the skip for `event` given the bytes at CS:RIP (`None` when they cannot be read).
pub fn decide_skip(bytes: Option<&[u8]>, mode: CpuMode, event: PendingEvent) -> SkipVerdict {
    let Some(bytes) = bytes else {
        return SkipVerdict::DropAndRetry(DropReason::NoBytes);
    };
    match decode(bytes, mode) {
        Ok(d) if event.raised_by(d.insn) => SkipVerdict::Skip { len: d.len },
        Ok(d) => SkipVerdict::DropAndRetry(DropReason::Mismatch(d.insn)),
        Err(e) => SkipVerdict::DropAndRetry(DropReason::Undecodable(e)),
    }
}

/// What KVM does when an SEV guest's emulation has no instruction bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SevNoInsnVerdict {
    /// Fail the emulation: a skip fails and the soft event being re-injected is dropped, so
    /// the guest retries the instruction.
    Fail,
    /// Queue #UD for the guest.
    QueueUd,
}

/// Decides an SEV emulation without instruction bytes; `skip` says it only skips.
///
/// A skip never queues #UD: the guest executed a valid instruction that KVM merely cannot
/// read, and the retry re-executes it. Only a full emulation, which cannot proceed at all,
/// gets #UD.
pub fn sev_no_insn_verdict(skip: bool) -> SevNoInsnVerdict {
    if skip {
        SevNoInsnVerdict::Fail
    } else {
        SevNoInsnVerdict::QueueUd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOFT3: PendingEvent = PendingEvent { vector: 3 };

    fn soft(vector: u8) -> PendingEvent {
        PendingEvent { vector }
    }

    #[test]
    fn int3_is_skipped_by_one_byte() {
        assert_eq!(
            decide_skip(Some(&[0xcc, 0x90]), CpuMode::Long64, SOFT3),
            SkipVerdict::Skip { len: 1 }
        );
    }

    #[test]
    fn rewritten_int3_is_dropped() {
        // INT3 patched back to the first byte of a 5-byte NOP.
        assert_eq!(
            decide_skip(Some(&[0x0f, 0x1f, 0x44, 0, 0]), CpuMode::Long64, SOFT3),
            SkipVerdict::DropAndRetry(DropReason::Undecodable(DecodeError::NotSoftInt(0x0f)))
        );
    }

    #[test]
    fn int_n_needs_the_same_vector() {
        assert_eq!(
            decide_skip(Some(&[0xcd, 0x20]), CpuMode::Long64, soft(0x20)),
            SkipVerdict::Skip { len: 2 }
        );
        assert_eq!(
            decide_skip(Some(&[0xcd, 0x21]), CpuMode::Long64, soft(0x20)),
            SkipVerdict::DropAndRetry(DropReason::Mismatch(SoftInsn::IntN(0x21)))
        );
        // Vector 0 is legal.
        assert_eq!(
            decide_skip(Some(&[0xcd, 0x00]), CpuMode::Protected32, soft(0)),
            SkipVerdict::Skip { len: 2 }
        );
    }

    #[test]
    fn into_is_invalid_only_in_64_bit_mode() {
        assert_eq!(
            decide_skip(Some(&[0xce]), CpuMode::Compat, soft(4)),
            SkipVerdict::Skip { len: 1 }
        );
        assert_eq!(
            decode(&[0xce], CpuMode::Long64),
            Err(DecodeError::IntoIn64BitMode)
        );
    }

    #[test]
    fn rex_is_a_prefix_only_in_64_bit_mode() {
        assert_eq!(
            decode(&[0x48, 0xcc], CpuMode::Long64),
            Ok(Decoded {
                insn: SoftInsn::Int3,
                len: 2
            })
        );
        assert_eq!(
            decode(&[0x48, 0xcc], CpuMode::Protected32),
            Err(DecodeError::NotSoftInt(0x48))
        );
    }

    #[test]
    fn length_limit_is_fifteen_bytes() {
        let mut insn = [0x66u8; 16];
        insn[13] = 0xcd;
        insn[14] = 0x80;
        assert_eq!(
            decode(&insn[..15], CpuMode::Protected32),
            Ok(Decoded {
                insn: SoftInsn::IntN(0x80),
                len: 15
            })
        );
        // Fourteen prefixes: the opcode is byte 15 and the immediate byte 16.
        insn[13] = 0x66;
        insn[14] = 0xcd;
        insn[15] = 0x80;
        assert_eq!(
            decode(&insn, CpuMode::Protected32),
            Err(DecodeError::TooLong)
        );
        assert_eq!(
            decode(&[0x66; 15], CpuMode::Real),
            Err(DecodeError::TooLong)
        );
    }

    #[test]
    fn truncated_bytes_are_dropped() {
        assert_eq!(
            decode(&[0x66, 0xcd], CpuMode::Real),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decode(&[], CpuMode::Real), Err(DecodeError::Truncated));
        assert_eq!(
            decode(&[0x2e; 14], CpuMode::Vm86),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn lock_and_int1_kinds() {
        assert_eq!(
            decode(&[0xf0, 0xcc], CpuMode::Long64),
            Err(DecodeError::Locked)
        );
        // ICEBP (F1) raises #DB as a privileged software exception, which kvm-amd does not
        // re-inject by a skip: it matches no soft event, not even vector 1 (INT 1, CD 01).
        assert_eq!(
            decide_skip(Some(&[0xf1]), CpuMode::Long64, soft(1)),
            SkipVerdict::DropAndRetry(DropReason::Mismatch(SoftInsn::Int1))
        );
        assert_eq!(
            decide_skip(Some(&[0xcd, 0x01]), CpuMode::Long64, soft(1)),
            SkipVerdict::Skip { len: 2 }
        );
    }

    #[test]
    fn sev_skip_without_bytes_never_queues_ud() {
        assert_eq!(sev_no_insn_verdict(true), SevNoInsnVerdict::Fail);
        assert_eq!(sev_no_insn_verdict(false), SevNoInsnVerdict::QueueUd);
    }

    #[test]
    fn sev_without_bytes_drops_never_skips() {
        assert_eq!(
            decide_skip(None, CpuMode::Long64, SOFT3),
            SkipVerdict::DropAndRetry(DropReason::NoBytes)
        );
    }
}
