// SPDX-License-Identifier: GPL-2.0

//! Per-path modes and verdict counters, and their debugfs files.
//!
//! Each path has a directory under `/sys/kernel/debug/svm_guard/` with a `mode` file (read and
//! write) and a `counters` file (one `name value` line per counter). Counters are named by
//! enums, one per path and part of the path's type, so that the code that counts a verdict and
//! the file that shows it cannot disagree, and no path counts another's verdict.

use core::{
    fmt,
    marker::PhantomData, //
};
use kernel::{
    cpu::CpuId,
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

/// The counters of one path: an enum whose every variant names one counter.
///
/// A [`PathState`] counts only its own enum's variants, so counting another path's verdict does
/// not compile.
pub(crate) trait Counter: Copy + Send + Sync + 'static {
    /// Debugfs names, in discriminant order.
    const NAMES: &'static [&'static str];

    /// Returns the counter's index in [`Counter::NAMES`].
    fn index(self) -> usize;
}

/// Declares the counters of a path: an enum implementing [`Counter`], with the debugfs name of
/// each variant.
macro_rules! counters {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $label:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl Counter for $name {
            const NAMES: &'static [&'static str] = &[$($label,)*];

            fn index(self) -> usize {
                // CAST: a fieldless enum's discriminant, counted from 0.
                self as usize
            }
        }

        const _: () = assert!($name::NAMES.len() <= MAX_COUNTERS);
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
        InjectHardware = "inject_hardware",
        /// Injected with the IRET intercept.
        InjectSoftware = "inject_software",
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
        /// IOIO operand size 3, 5, 6 or 7.
        IoioSize = "ioio_size",
    }
}

/// Most counters a path has.
const MAX_COUNTERS: usize = 16;

/// How many copies of a path's counters there are: CPU `n` counts in copy `n % STRIPES`, so
/// that with up to this many CPUs no two CPUs write the same cache line, and beyond it at most
/// `nr_cpu_ids / STRIPES` share one. A reader sums the copies.
const STRIPES: usize = 64;

/// One copy of a path's counters, alone in its cache lines.
#[repr(align(64))]
struct Stripe([Atomic<u64>; MAX_COUNTERS]);

/// Mode and verdict counters of one decision path, whose counters are the variants of `C`.
///
/// They are statics because kvm-amd calls the hooks without a context pointer. Counting is a
/// relaxed atomic add to the counting CPU's own stripe: no cache line is shared between CPUs on
/// the hot path. kvm-amd's per-vCPU stats (`svm_policy_*`) are the record of the verdicts it
/// applied; these counters add the verdicts it did not (`upstream`) and serve debugfs.
pub(crate) struct PathState<C: Counter> {
    /// The path's debugfs directory name.
    name: &'static CStr,
    /// The current [`Mode`], as `u32`.
    mode: Atomic<u32>,
    /// How often each counted event happened, per stripe.
    stripes: [Stripe; STRIPES],
    /// The path's counter enum.
    _counter: PhantomData<C>,
}

impl<C: Counter> PathState<C> {
    /// Creates a path in mode `guard` with zeroed counters.
    pub(crate) const fn new(name: &'static CStr) -> Self {
        Self {
            name,
            mode: Atomic::new(Mode::Guard as u32),
            stripes: [const { Stripe([const { Atomic::new(0) }; MAX_COUNTERS]) }; STRIPES],
            _counter: PhantomData,
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

    /// Counts one event, in the stripe of the CPU this runs on (if it moves meanwhile, the
    /// add is still atomic).
    pub(crate) fn count(&self, counter: C) {
        // CAST: a CPU number (u32) fits in usize.
        let stripe = CpuId::current().as_u32() as usize % STRIPES;
        if let Some(c) = self
            .stripes
            .get(stripe)
            .and_then(|s| s.0.get(counter.index()))
        {
            c.add(1u64, Relaxed);
        }
    }

    /// Returns a counter's value: the sum over the stripes.
    #[cfg_attr(not(svm_guard_kunit), expect(dead_code))]
    pub(crate) fn get(&self, counter: C) -> u64 {
        self.total(counter.index())
    }

    /// Returns the sum over the stripes of the counter at `index`.
    fn total(&self, index: usize) -> u64 {
        self.stripes
            .iter()
            .filter_map(|s| s.0.get(index))
            .fold(0u64, |sum, c| sum.wrapping_add(c.load(Relaxed)))
    }
}

/// INTn skip validation.
pub(crate) static SVM_SKIP: PathState<SkipCounter> = PathState::new(c"svm_skip");
/// SEV emulation without instruction bytes.
pub(crate) static SEV_SKIP: PathState<SevSkipCounter> = PathState::new(c"sev_skip");
/// Who tracks NMI blocking.
pub(crate) static NMI: PathState<NmiCounter> = PathState::new(c"nmi");
/// GHCB request validation.
pub(crate) static GHCB: PathState<GhcbCounter> = PathState::new(c"ghcb");

/// Longest write the `mode` file accepts, in bytes.
const MODE_WRITE_MAX: usize = 16;

/// Prints a path's mode for debugfs.
fn show_mode<C: Counter>(path: &PathState<C>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", path.mode().name())
}

/// Sets a path's mode from a debugfs write; a bad write changes nothing.
fn store_mode<C: Counter>(path: &PathState<C>, reader: &mut UserSliceReader) -> Result {
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
fn show_counters<C: Counter>(path: &PathState<C>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (index, name) in C::NAMES.iter().enumerate() {
        writeln!(f, "{name} {}", path.total(index))?;
    }
    Ok(())
}

/// Creates the debugfs directory of one path.
fn add_path<C: Counter>(dir: &ScopedDir<'_, '_>, path: &'static PathState<C>) {
    let sub = dir.dir(path.name);
    sub.read_write_callback_file(c"mode", path, &show_mode::<C>, &store_mode::<C>);
    sub.read_callback_file(c"counters", path, &show_counters::<C>);
}

/// Creates the debugfs files of every path, in the order of the hook ABI.
pub(crate) fn populate(dir: &ScopedDir<'_, '_>) {
    add_path(dir, &SVM_SKIP);
    add_path(dir, &SEV_SKIP);
    add_path(dir, &NMI);
    add_path(dir, &GHCB);
}
