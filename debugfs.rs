// SPDX-License-Identifier: GPL-2.0

//! Per-path modes and verdict counters, and their debugfs files.
//!
//! Each path has a directory under `/sys/kernel/debug/svm_guard/` with a `mode` file (read and
//! write) and a `counters` file (one `name value` line per counter). Counters are named by
//! enums, so that the code that counts a verdict and the file that shows it cannot disagree.

use core::fmt;
use kernel::{
    debugfs::ScopedDir,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    uaccess::UserSliceReader, //
};

/// How the module decides one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The module's own decision.
    Guard = 0,
    /// kvm-amd's own code decides, as if the module were not loaded.
    Upstream = 1,
    /// The historical pre-fix behaviour of the path.
    Legacy = 2,
}

impl Mode {
    /// Returns the mode stored as `raw`; anything unknown is [`Mode::Guard`].
    fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Mode::Upstream,
            2 => Mode::Legacy,
            _ => Mode::Guard,
        }
    }

    /// Parses a mode name as written to debugfs.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "guard" => Some(Mode::Guard),
            "upstream" => Some(Mode::Upstream),
            "legacy" => Some(Mode::Legacy),
            _ => None,
        }
    }

    /// Returns the mode's debugfs name.
    fn name(self) -> &'static str {
        match self {
            Mode::Guard => "guard",
            Mode::Upstream => "upstream",
            Mode::Legacy => "legacy",
        }
    }
}

/// Declares the counters of a path: an enum whose discriminants index [`PathState`]'s counters,
/// and the debugfs name of each.
macro_rules! counters {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $label:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Debugfs names, in discriminant order.
            pub(crate) const NAMES: &'static [&'static str] = &[$($label,)*];
        }

        impl From<$name> for usize {
            fn from(counter: $name) -> usize {
                // CAST: a fieldless enum's discriminant, counted from 0.
                counter as usize
            }
        }
    };
}

counters! {
    /// Counters of the INTn skip path.
    SkipCounter {
        /// Handed back to kvm-amd.
        Upstream = "upstream",
        /// Skipped the validated INTn.
        Skip = "skip",
        /// Dropped the event for a retry.
        Drop = "drop",
        /// Legacy: skipped without checking.
        SkipUnchecked = "skip_unchecked",
    }
}

counters! {
    /// Counters of the SEV emulation-without-bytes path.
    SevSkipCounter {
        /// Handed back to kvm-amd.
        Upstream = "upstream",
        /// Failed the emulation.
        Fail = "fail",
        /// Legacy: queued #UD.
        QueueUd = "queue_ud",
    }
}

counters! {
    /// Counters of the NMI path, per site and verdict.
    NmiCounter {
        /// Handed back to kvm-amd.
        Upstream = "upstream",
        /// Injected without the IRET intercept.
        InjectOnly = "inject_only",
        /// Injected with the IRET intercept.
        InterceptIret = "intercept_iret",
        /// Masking set or cleared in `V_NMI_BLOCKING` (vNMI).
        MaskHardware = "mask_hardware",
        /// Masking set or cleared in software, IRET intercepted while masked.
        MaskSoftware = "mask_software",
    }
}

counters! {
    /// Counters of the GHCB path: verdicts, reasons of malformed answers, and the malformed
    /// requests kvm-amd on its own does not answer.
    GhcbCounter {
        /// Handed back to kvm-amd.
        Upstream = "upstream",
        /// Valid request, handled.
        Accept = "accept",
        /// Legacy: the guest was stopped.
        Terminate = "terminate",
        /// Reason 1.
        NotRegistered = "not_registered",
        /// Reason 2.
        InvalidUsage = "invalid_usage",
        /// Reason 3.
        InvalidScratchArea = "invalid_scratch_area",
        /// Reason 4.
        MissingInput = "missing_input",
        /// Reason 5.
        InvalidInput = "invalid_input",
        /// Reason 6.
        InvalidEvent = "invalid_event",
        /// String I/O count above `INT_MAX`.
        StringIoCount = "string_io_count",
        /// String I/O count x size overflow.
        StringIoOverflow = "string_io_overflow",
        /// Scratch area outside guest memory.
        ScratchOutsideMemory = "scratch_outside_memory",
        /// SNP-only MSR-protocol request from a non-SNP guest.
        MsrSnpOnly = "msr_snp_only",
    }
}

/// Most counters a path has.
const MAX_COUNTERS: usize = 16;
const _: () = assert!(GhcbCounter::NAMES.len() <= MAX_COUNTERS);

/// Mode and verdict counters of one decision path.
///
/// They are statics because kvm-amd calls the hooks without a context pointer.
pub(crate) struct PathState {
    /// The path's debugfs directory name.
    name: &'static CStr,
    /// Counter names, indexed like [`PathState::counters`].
    counter_names: &'static [&'static str],
    /// The current [`Mode`], as `u32`.
    mode: Atomic<u32>,
    /// How often each counted event happened.
    counters: [Atomic<u64>; MAX_COUNTERS],
}

impl PathState {
    /// Creates a path in mode `guard` with zeroed counters named `counter_names`.
    pub(crate) const fn new(name: &'static CStr, counter_names: &'static [&'static str]) -> Self {
        Self {
            name,
            counter_names,
            mode: Atomic::new(Mode::Guard as u32),
            counters: [const { Atomic::new(0) }; MAX_COUNTERS],
        }
    }

    /// Returns the current mode.
    pub(crate) fn mode(&self) -> Mode {
        Mode::from_raw(self.mode.load(Relaxed))
    }

    /// Sets the mode.
    #[cfg_attr(not(svm_guard_kunit), expect(dead_code))]
    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u32, Relaxed);
    }

    /// Counts one event; `counter` is one of the path's counter enum.
    pub(crate) fn count(&self, counter: impl Into<usize>) {
        if let Some(c) = self.counters.get(counter.into()) {
            c.add(1u64, Relaxed);
        }
    }

    /// Returns a counter's value.
    #[cfg_attr(not(svm_guard_kunit), expect(dead_code))]
    pub(crate) fn get(&self, counter: impl Into<usize>) -> u64 {
        self.counters
            .get(counter.into())
            .map_or(0, |c| c.load(Relaxed))
    }
}

/// INTn skip validation.
pub(crate) static SVM_SKIP: PathState = PathState::new(c"svm_skip", SkipCounter::NAMES);
/// SEV emulation without instruction bytes.
pub(crate) static SEV_SKIP: PathState = PathState::new(c"sev_skip", SevSkipCounter::NAMES);
/// Who tracks NMI blocking.
pub(crate) static NMI: PathState = PathState::new(c"nmi", NmiCounter::NAMES);
/// GHCB request validation.
pub(crate) static GHCB: PathState = PathState::new(c"ghcb", GhcbCounter::NAMES);
/// Every path, in debugfs order.
static PATHS: [&PathState; 4] = [&SVM_SKIP, &SEV_SKIP, &NMI, &GHCB];

/// Longest write the `mode` file accepts, in bytes.
const MODE_WRITE_MAX: usize = 16;

/// Prints a path's mode for debugfs.
fn show_mode(path: &PathState, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", path.mode().name())
}

/// Sets a path's mode from a debugfs write; a bad write changes nothing.
fn store_mode(path: &PathState, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; MODE_WRITE_MAX];
    let buf = buf.get_mut(..reader.len()).ok_or(EINVAL)?;
    reader.read_slice(buf)?;
    let name = core::str::from_utf8(buf).map_err(|_| EINVAL)?;
    let mode = Mode::parse(name.trim()).ok_or(EINVAL)?;
    if mode == Mode::Legacy && !crate::module_parameters::allow_legacy.value() {
        return Err(EPERM);
    }
    path.mode.store(mode as u32, Relaxed);
    pr_info!(
        "{}: mode {}\n",
        path.name.to_str().unwrap_or("?"),
        mode.name()
    );
    Ok(())
}

/// Prints a path's counters for debugfs, one `name value` line each.
fn show_counters(path: &PathState, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, counter) in path.counter_names.iter().zip(path.counters.iter()) {
        writeln!(f, "{name} {}", counter.load(Relaxed))?;
    }
    Ok(())
}

/// Creates the debugfs files of every path.
pub(crate) fn populate<'data>(dir: &ScopedDir<'data, '_>) {
    for path in PATHS {
        let sub = dir.dir(path.name);
        sub.read_write_callback_file(c"mode", path, &show_mode, &store_mode);
        sub.read_callback_file(c"counters", path, &show_counters);
    }
}
