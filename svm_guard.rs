// SPDX-License-Identifier: GPL-2.0

//! Safe decisions for four guest-triggerable cases in KVM's AMD SVM exit paths.
//!
//! The decisions live in [`svm_skip`], [`ghcb`] and [`nmi`], which use only `core` so that the
//! host test crate builds the same files. This crate root owns everything that touches the
//! kernel. Until the kvm-amd hook series is applied the module registers nothing, and KVM
//! decides every case as upstream does.

use kernel::prelude::*;

pub mod ghcb;
pub mod nmi;
pub mod svm_skip;

module! {
    type: SvmGuard,
    name: "svm_guard",
    authors: ["svm_guard developers"],
    description: "Safe decisions for guest-triggerable cases in KVM's AMD SVM exit paths",
    license: "GPL",
}

/// The loaded module.
struct SvmGuard;

impl kernel::Module for SvmGuard {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded; no kvm-amd policy hook to register in this kernel\n");
        Ok(SvmGuard)
    }
}

impl Drop for SvmGuard {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
