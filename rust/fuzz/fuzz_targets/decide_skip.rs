// SPDX-License-Identifier: GPL-2.0

//! Fuzzes `svm_skip::decide_skip()` and `decode()` on arbitrary bytes, checking their invariants.
//!
//! Input layout: byte 0 chooses the CPU mode (bits 0-2, modulo 6) and, when bits 4-7 are all
//! set, unreadable bytes (`None`); byte 1 is the event's vector; the rest are the instruction
//! bytes at CS:RIP.

#![no_main]

use libfuzzer_sys::fuzz_target;
use svm_guard_host::svm_skip::{
    decide_skip, decode, CpuMode, DecodeError, DropReason, PendingEvent, SkipVerdict,
    SoftInsn, MAX_INSN_LEN,
};

const MODES: [CpuMode; 6] = [
    CpuMode::Real,
    CpuMode::Vm86,
    CpuMode::Protected16,
    CpuMode::Protected32,
    CpuMode::Compat,
    CpuMode::Long64,
];

fuzz_target!(|data: &[u8]| {
    let (&control, rest) = match data.split_first() {
        Some(split) => split,
        None => return,
    };
    let (&vector, insn) = match rest.split_first() {
        Some(split) => split,
        None => return,
    };
    let mode = MODES[usize::from(control & 7) % MODES.len()];
    let event = PendingEvent { vector };

    if control >> 4 == 0xf {
        assert_eq!(
            decide_skip(None, mode, event),
            SkipVerdict::DropAndRetry(DropReason::NoBytes)
        );
        return;
    }

    let decoded = decode(insn, mode);
    match decoded {
        Ok(d) => {
            let len = usize::from(d.len);
            assert!((1..=MAX_INSN_LEN).contains(&len), "{d:?}");
            assert!(len <= insn.len(), "{d:?} from {} bytes", insn.len());
            // The instruction is self-contained: the bytes after it do not matter.
            assert_eq!(decode(&insn[..len], mode), decoded);
            // INTO does not exist in 64-bit mode.
            assert!(!(d.insn == SoftInsn::Into && mode == CpuMode::Long64));
            // Its last byte is the opcode, or the immediate of INT n.
            let last = insn[len - 1];
            match d.insn {
                SoftInsn::Int3 => assert_eq!(last, 0xcc),
                SoftInsn::IntN(n) => {
                    assert_eq!(last, n);
                    assert_eq!(insn[len - 2], 0xcd);
                }
                SoftInsn::Into => assert_eq!(last, 0xce),
                SoftInsn::Int1 => assert_eq!(last, 0xf1),
            }
        }
        Err(DecodeError::Truncated) => assert!(insn.len() < MAX_INSN_LEN),
        Err(DecodeError::TooLong) => assert!(insn.len() >= MAX_INSN_LEN),
        Err(DecodeError::IntoIn64BitMode) => assert_eq!(mode, CpuMode::Long64),
        Err(DecodeError::NotSoftInt(op)) => {
            assert!(!matches!(op, 0xcc | 0xcd | 0xce | 0xf0 | 0xf1));
            assert!(insn.contains(&op));
        }
        Err(DecodeError::Locked) => assert!(insn.contains(&0xf0)),
    }

    let verdict = decide_skip(Some(insn), mode, event);
    match verdict {
        SkipVerdict::Skip { len } => {
            let d = decoded.unwrap_or_else(|e| panic!("skip of {len} but decode failed: {e:?}"));
            assert!((1..=MAX_INSN_LEN).contains(&usize::from(len)));
            assert!(usize::from(len) <= insn.len());
            assert_eq!(len, d.len);
            assert!(event.raised_by(d.insn));
            // The skipped instruction raises exactly this event; INT1 raises none.
            assert!(d.insn != SoftInsn::Int1 && d.insn.vector() == vector);
        }
        SkipVerdict::DropAndRetry(DropReason::Mismatch(insn_seen)) => {
            let d = decoded.unwrap_or_else(|e| panic!("mismatch but decode failed: {e:?}"));
            assert_eq!(insn_seen, d.insn);
            assert!(!event.raised_by(d.insn));
        }
        SkipVerdict::DropAndRetry(DropReason::Undecodable(e)) => assert_eq!(decoded, Err(e)),
        SkipVerdict::DropAndRetry(DropReason::NoBytes) => panic!("NoBytes with bytes present"),
    }
});
