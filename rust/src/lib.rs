// SPDX-License-Identifier: GPL-2.0

//! Host build of svm_guard's pure decision files.
//!
//! The kernel module compiles `svm_skip.rs`, `ghcb.rs` and `nmi.rs` as modules of its crate
//! root; this crate compiles the very same files with `#[path]`, so their unit tests, and later
//! property tests, fuzz targets and benchmarks, run on the host with `cargo`.

#[path = "../../ghcb.rs"]
pub mod ghcb;
#[path = "../../nmi.rs"]
pub mod nmi;
#[path = "../../svm_skip.rs"]
pub mod svm_skip;
