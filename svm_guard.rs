// SPDX-License-Identifier: GPL-2.0

//! Safe decisions for four guest-triggerable cases in KVM's AMD SVM exit paths.
//!
//! kvm-amd, with the project's hook series applied, hands a plain-data snapshot to this module
//! at four points (`srctree/arch/x86/include/asm/kvm_svm_policy.h`) and applies the verdict it
//! returns. The decisions live in [`svm_skip`], [`ghcb`] and [`nmi`], which use only `core` so
//! that the host test crate builds the same files. The glue that touches the kernel is split by
//! concern: this crate root owns the registration, [`hooks`] the trampolines kvm-amd calls,
//! [`debugfs`] the modes and counters, and, with `--cfg svm_guard_kunit` only, `ghcb_kunit` the
//! KUnit suite that drives the GHCB hook through kvm-amd.
//!
//! Each path has a mode in debugfs (`/sys/kernel/debug/svm_guard/<path>/mode`): `guard` (the
//! default) applies the module's decision, `upstream` hands the decision back to kvm-amd's own
//! code, and `legacy` reproduces the historical pre-fix behaviour of the path, so that a
//! selftest can show it detects the bug. `legacy` is refused unless the module was loaded with
//! `allow_legacy=1`. Each path also counts the verdicts it returned.

use kernel::{
    bindings,
    debugfs::Scope,
    error::to_result,
    prelude::*,
    types::Opaque, //
};

mod debugfs;
pub mod ghcb;
#[cfg(svm_guard_kunit)]
mod ghcb_kunit;
mod hooks;
pub mod nmi;
pub mod svm_skip;

/// Declares the module; `$($imports)*` are the `imports_ns` of the build.
macro_rules! svm_guard_module {
    ($($imports:tt)*) => {
        module! {
            type: SvmGuard,
            name: "svm_guard",
            authors: ["svm_guard developers"],
            description: "Safe decisions for guest-triggerable cases in KVM's AMD SVM exit paths",
            license: "GPL",
            $($imports)*
            params: {
                allow_legacy: bool {
                    default: false,
                    description: "Allow the debugfs mode 'legacy' (historical pre-fix behaviour)",
                },
            },
        }
    };
}

#[cfg(not(svm_guard_kunit))]
svm_guard_module!();
// The KUnit suite calls kvm_svm_policy_test_ghcb(), exported for KUnit tests only.
#[cfg(svm_guard_kunit)]
svm_guard_module!(imports_ns: ["EXPORTED_FOR_KUNIT_TESTING"],);

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
            _debugfs <- Scope::dir((), c"svm_guard", |(), dir| debugfs::populate(dir)),
            ops <- Opaque::try_ffi_init(|slot: *mut bindings::kvm_svm_policy_ops| {
                // SAFETY: `slot` is valid for writes.
                unsafe {
                    slot.write(bindings::kvm_svm_policy_ops {
                        soft_int: Some(hooks::soft_int_hook),
                        sev_no_insn: Some(hooks::sev_no_insn_hook),
                        nmi: Some(hooks::nmi_hook),
                        ghcb: Some(hooks::ghcb_hook),
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
