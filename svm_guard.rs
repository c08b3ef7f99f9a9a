// SPDX-License-Identifier: GPL-2.0

//! Safe decisions for four guest-triggerable cases in KVM's AMD SVM exit paths.
//!
//! kvm-amd, with the project's hook series applied, hands a plain-data snapshot to this module
//! at four points (`srctree/include/linux/kvm_svm_policy.h`) and applies the verdict it
//! returns. The decisions live in [`svm_skip`], [`ghcb`] and [`nmi`], which use only `core` so
//! that the host test crate builds the same files. This crate root owns everything that touches
//! the kernel: the registration, the trampolines kvm-amd calls, and debugfs.
//!
//! Each path has a mode in debugfs (`/sys/kernel/debug/svm_guard/<path>/mode`): `guard` (the
//! default) applies the module's decision, `upstream` hands the decision back to kvm-amd's own
//! code, and `legacy` reproduces the historical pre-fix behaviour of the path, so that a
//! selftest can show it detects the bug. `legacy` is refused unless the module was loaded with
//! `allow_legacy=1`. Each path also counts the verdicts it returned.

use core::fmt;
use kernel::{
    bindings,
    debugfs::{
        Scope,
        ScopedDir, //
    },
    error::to_result,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    types::Opaque,
    uaccess::UserSliceReader, //
};

pub mod ghcb;
pub mod nmi;
pub mod svm_skip;

use ghcb::MalformedReason;
use nmi::{
    nmi_inject_verdict,
    NmiInjectContext,
    NmiInjectVerdict, //
};
use svm_skip::{
    decide_skip,
    sev_no_insn_verdict,
    CpuMode,
    EventKind,
    PendingEvent,
    SevNoInsnVerdict,
    SkipVerdict, //
};

module! {
    type: SvmGuard,
    name: "svm_guard",
    authors: ["svm_guard developers"],
    description: "Safe decisions for guest-triggerable cases in KVM's AMD SVM exit paths",
    license: "GPL",
    params: {
        allow_legacy: bool {
            default: false,
            description: "Allow the debugfs mode 'legacy' (historical pre-fix behaviour)",
        },
    },
}

/// How the module decides one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
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

/// Most counters a path has.
const MAX_COUNTERS: usize = 8;

/// Mode and verdict counters of one decision path.
///
/// They are statics because kvm-amd calls the hooks without a context pointer.
struct PathState {
    /// The path's debugfs directory name.
    name: &'static CStr,
    /// Counter names, in the order of [`PathState::counters`].
    counter_names: &'static [&'static str],
    /// The current [`Mode`], as `u32`.
    mode: Atomic<u32>,
    /// How often each verdict was returned.
    counters: [Atomic<u64>; MAX_COUNTERS],
}

impl PathState {
    /// Creates a path in mode `guard` with zeroed counters.
    const fn new(name: &'static CStr, counter_names: &'static [&'static str]) -> Self {
        Self {
            name,
            counter_names,
            mode: Atomic::new(Mode::Guard as u32),
            counters: [const { Atomic::new(0) }; MAX_COUNTERS],
        }
    }

    /// Returns the current mode.
    fn mode(&self) -> Mode {
        Mode::from_raw(self.mode.load(Relaxed))
    }

    /// Counts one verdict; `index` is a position in [`PathState::counter_names`].
    fn count(&self, index: usize) {
        if let Some(counter) = self.counters.get(index) {
            counter.add(1u64, Relaxed);
        }
    }
}

/// INTn skip validation.
static SVM_SKIP: PathState =
    PathState::new(c"svm_skip", &["upstream", "skip", "drop", "skip_unchecked"]);
/// SEV emulation without instruction bytes.
static SEV_SKIP: PathState = PathState::new(c"sev_skip", &["upstream", "fail", "queue_ud"]);
/// IRET interception on NMI injection.
static NMI: PathState = PathState::new(c"nmi", &["upstream", "inject_only", "intercept_iret"]);
/// Malformed GHCB requests; `malformed_<n>` counts reason code n.
static GHCB: PathState = PathState::new(
    c"ghcb",
    &[
        "upstream",
        "terminate",
        "malformed_1",
        "malformed_2",
        "malformed_3",
        "malformed_4",
        "malformed_5",
        "malformed_6",
    ],
);
/// Every path, in debugfs order.
static PATHS: [&PathState; 4] = [&SVM_SKIP, &SEV_SKIP, &NMI, &GHCB];

/// Prints a path's mode for debugfs.
fn show_mode(path: &PathState, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", path.mode().name())
}

/// Sets a path's mode from a debugfs write; a bad write changes nothing.
fn store_mode(path: &PathState, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let buf = buf.get_mut(..reader.len()).ok_or(EINVAL)?;
    reader.read_slice(buf)?;
    let name = core::str::from_utf8(buf).map_err(|_| EINVAL)?;
    let mode = Mode::parse(name.trim()).ok_or(EINVAL)?;
    if mode == Mode::Legacy && !module_parameters::allow_legacy.value() {
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
fn populate_debugfs<'data>(dir: &ScopedDir<'data, '_>) {
    for path in PATHS {
        let sub = dir.dir(path.name);
        sub.read_write_callback_file(c"mode", path, &show_mode, &store_mode);
        sub.read_callback_file(c"counters", path, &show_counters);
    }
}

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
            SVM_SKIP.count(0);
            return bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_UPSTREAM;
        }
        Mode::Legacy => {
            SVM_SKIP.count(3);
            return bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_SKIP_UNCHECKED;
        }
        Mode::Guard => {}
    }
    let Some(mode) = cpu_mode(ctx.cpu_mode) else {
        SVM_SKIP.count(0);
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
            SVM_SKIP.count(1);
            ctx.skip_len = len;
            bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_SKIP
        }
        SkipVerdict::DropAndRetry(_) => {
            SVM_SKIP.count(2);
            bindings::kvm_svm_policy_soft_int_verdict_KVM_SVM_POLICY_SOFT_INT_DROP
        }
    }
}

/// Decides an SEV emulation without instruction bytes.
fn sev_no_insn(ctx: &bindings::kvm_svm_policy_sev_no_insn) -> u32 {
    let verdict = match SEV_SKIP.mode() {
        Mode::Upstream => {
            SEV_SKIP.count(0);
            return bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_UPSTREAM;
        }
        // Before the fix, a skip without bytes queued #UD like any other emulation.
        Mode::Legacy => SevNoInsnVerdict::QueueUd,
        Mode::Guard => sev_no_insn_verdict(ctx.skip != 0),
    };
    match verdict {
        SevNoInsnVerdict::Fail => {
            SEV_SKIP.count(1);
            bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_FAIL
        }
        SevNoInsnVerdict::QueueUd => {
            SEV_SKIP.count(2);
            bindings::kvm_svm_policy_sev_no_insn_verdict_KVM_SVM_POLICY_SEV_NO_INSN_QUEUE_UD
        }
    }
}

/// Decides the IRET intercept of an NMI injection.
fn nmi(ctx: &bindings::kvm_svm_policy_nmi) -> u32 {
    let verdict = match NMI.mode() {
        Mode::Upstream => {
            NMI.count(0);
            return bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_UPSTREAM;
        }
        // Before the fix, every NMI injection intercepted IRET, vNMI or not.
        Mode::Legacy => NmiInjectVerdict::InjectAndInterceptIret,
        Mode::Guard => nmi_inject_verdict(NmiInjectContext {
            vnmi_enabled: ctx.vnmi_enabled != 0,
        }),
    };
    match verdict {
        NmiInjectVerdict::InjectOnly => {
            NMI.count(1);
            bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_INJECT_ONLY
        }
        NmiInjectVerdict::InjectAndInterceptIret => {
            NMI.count(2);
            bindings::kvm_svm_policy_nmi_verdict_KVM_SVM_POLICY_NMI_INTERCEPT_IRET
        }
    }
}

/// Decides the answer to a malformed GHCB request.
fn ghcb(ctx: &bindings::kvm_svm_policy_ghcb) -> u32 {
    match GHCB.mode() {
        Mode::Upstream => {
            GHCB.count(0);
            bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM
        }
        // Before the fix, malformed input terminated the guest.
        Mode::Legacy => {
            GHCB.count(1);
            bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_TERMINATE
        }
        Mode::Guard => match MalformedReason::from_code(ctx.reason) {
            Some(reason) => {
                // CAST: reason codes are 1 to 6; counters 2 to 7 are `malformed_1` to `_6`.
                GHCB.count((reason as usize).saturating_add(1));
                bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_MALFORMED
            }
            // A reason this module does not know: kvm-amd answers as it would without us.
            None => {
                GHCB.count(0);
                bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM
            }
        },
    }
}

/// Trampoline for `kvm_svm_policy_ops::soft_int`.
///
/// # Safety
///
/// `ctx` must be null or valid for reads and writes, and not accessed by anything else, for the
/// duration of the call. kvm-amd passes a context on its stack.
unsafe extern "C" fn soft_int_hook(ctx: *mut bindings::kvm_svm_policy_soft_int) -> u32 {
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
unsafe extern "C" fn sev_no_insn_hook(ctx: *const bindings::kvm_svm_policy_sev_no_insn) -> u32 {
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
unsafe extern "C" fn nmi_hook(ctx: *const bindings::kvm_svm_policy_nmi) -> u32 {
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
/// `ctx` must be null or valid for reads for the duration of the call.
unsafe extern "C" fn ghcb_hook(ctx: *const bindings::kvm_svm_policy_ghcb) -> u32 {
    // SAFETY: By the safety requirements, `ctx` is null or valid for reads during the call.
    match unsafe { ctx.as_ref() } {
        Some(ctx) => ghcb(ctx),
        None => bindings::kvm_svm_policy_ghcb_verdict_KVM_SVM_POLICY_GHCB_UPSTREAM,
    }
}

/// The loaded module: its debugfs files and its registration with kvm-amd.
///
/// # Invariants
///
/// `ops` holds the trampolines and is registered with kvm-amd from initialisation until
/// [`PinnedDrop::drop`] unregisters it.
#[pin_data(PinnedDrop)]
struct SvmGuard {
    /// The `svm_guard` debugfs directory.
    #[pin]
    _debugfs: Scope<()>,
    /// The ops table kvm-amd calls; pinned, since kvm-amd keeps its address.
    #[pin]
    ops: Opaque<bindings::kvm_svm_policy_ops>,
}

// SAFETY: `ops` is written only while the module initialises, before it is shared; afterwards
// only kvm-amd reads it, and `&SvmGuard` grants no access to its contents.
unsafe impl Sync for SvmGuard {}

impl kernel::InPlaceModule for SvmGuard {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _debugfs <- Scope::dir((), c"svm_guard", |(), dir| populate_debugfs(dir)),
            ops <- Opaque::try_ffi_init(|slot: *mut bindings::kvm_svm_policy_ops| {
                // SAFETY: `slot` is valid for writes.
                unsafe {
                    slot.write(bindings::kvm_svm_policy_ops {
                        soft_int: Some(soft_int_hook),
                        sev_no_insn: Some(sev_no_insn_hook),
                        nmi: Some(nmi_hook),
                        ghcb: Some(ghcb_hook),
                    })
                };
                // SAFETY: `slot` is initialised and pinned: it stays valid and in place until
                // `PinnedDrop::drop` unregisters it.
                to_result(unsafe { bindings::kvm_svm_policy_register(slot) })?;
                // INVARIANT: `ops` is registered.
                pr_info!(
                    "registered with kvm-amd; legacy modes {}\n",
                    if module_parameters::allow_legacy.value() {
                        "allowed"
                    } else {
                        "refused"
                    }
                );
                Ok::<(), Error>(())
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for SvmGuard {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `ops` is registered; this is the only unregistration.
        // It returns once no vCPU can still run the trampolines.
        unsafe { bindings::kvm_svm_policy_unregister(self.ops.get()) };
        pr_info!("unregistered from kvm-amd\n");
    }
}
