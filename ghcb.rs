// SPDX-License-Identifier: GPL-2.0

//! Validates a GHCB request from an SEV-ES guest and decides the answer to a malformed one.
//!
//! The guest asks for a service by filling the GHCB page and exiting with VMGEXIT. A request
//! KVM cannot accept is answered, not punished: SW_EXITINFO1 is set to 2 (malformed input) and
//! SW_EXITINFO2 to a reason code, and the guest resumes. The codes are the ones of
//! `srctree/arch/x86/include/asm/sev-common.h` (`GHCB_ERR_*`).
//!
//! [`validate()`] restates the checks of Linux 7.3.4's `sev_handle_vmgexit()`
//! (`srctree/arch/x86/kvm/svm/sev.c`) in its order: the SNP GHCB registration, the usage, the
//! SNP-only exit codes, `sev_es_are_required_ghcb_fields_valid()`, then the checks of the exit
//! code's handler and of `setup_vmgexit_scratch()`. A request gets the [`Rule`] of the first
//! check that fails, as in 7.3.4.
//!
//! Five rules go beyond 7.3.4 ([`BeyondUpstream`]): there 7.3.4 fails `KVM_RUN`, terminates
//! the guest or passes the VMM a request no hardware makes, although the guest only sent bad
//! data. [`Rule::StringIoCount`] and [`Rule::StringIoOverflow`] answer what
//! `sev_es_string_io()` fails with -EINVAL, [`Rule::ScratchOutsideMemory`] what
//! `setup_vmgexit_scratch()` fails with -EFAULT, [`Rule::IoioSize`] an IOIO operand size that
//! 7.3.4 hands the VMM as `io.size` 3, 5, 6 or 7, and [`Rule::MsrSnpOnly`] leaves unanswered the
//! SNP-only MSR-protocol requests of a non-SNP guest, which `sev_handle_vmgexit_msr_protocol()`
//! answers with `KVM_SYSTEM_EVENT_SEV_TERM`.
//!
//! This file uses only `core`: it is built into the module and into the host test crate.

/// `GHCB_HV_RESP_MALFORMED_INPUT`: SW_EXITINFO1 of a request the hypervisor rejects.
pub const GHCB_HV_RESP_MALFORMED_INPUT: u64 = 2;

/// `SVM_EXIT_READ_DR7`.
pub const SVM_EXIT_READ_DR7: u64 = 0x027;
/// `SVM_EXIT_WRITE_DR7`.
pub const SVM_EXIT_WRITE_DR7: u64 = 0x037;
/// `SVM_EXIT_RDTSC`.
pub const SVM_EXIT_RDTSC: u64 = 0x06e;
/// `SVM_EXIT_RDPMC`.
pub const SVM_EXIT_RDPMC: u64 = 0x06f;
/// `SVM_EXIT_CPUID`.
pub const SVM_EXIT_CPUID: u64 = 0x072;
/// `SVM_EXIT_INVD`.
pub const SVM_EXIT_INVD: u64 = 0x076;
/// `SVM_EXIT_IOIO`.
pub const SVM_EXIT_IOIO: u64 = 0x07b;
/// `SVM_EXIT_MSR`.
pub const SVM_EXIT_MSR: u64 = 0x07c;
/// `SVM_EXIT_VMMCALL`.
pub const SVM_EXIT_VMMCALL: u64 = 0x081;
/// `SVM_EXIT_RDTSCP`.
pub const SVM_EXIT_RDTSCP: u64 = 0x087;
/// `SVM_EXIT_WBINVD`.
pub const SVM_EXIT_WBINVD: u64 = 0x089;
/// `SVM_EXIT_MONITOR`.
pub const SVM_EXIT_MONITOR: u64 = 0x08a;
/// `SVM_EXIT_MWAIT`.
pub const SVM_EXIT_MWAIT: u64 = 0x08b;
/// `SVM_VMGEXIT_MMIO_READ`.
pub const SVM_VMGEXIT_MMIO_READ: u64 = 0x8000_0001;
/// `SVM_VMGEXIT_MMIO_WRITE`.
pub const SVM_VMGEXIT_MMIO_WRITE: u64 = 0x8000_0002;
/// `SVM_VMGEXIT_NMI_COMPLETE`.
pub const SVM_VMGEXIT_NMI_COMPLETE: u64 = 0x8000_0003;
/// `SVM_VMGEXIT_AP_HLT_LOOP`.
pub const SVM_VMGEXIT_AP_HLT_LOOP: u64 = 0x8000_0004;
/// `SVM_VMGEXIT_AP_JUMP_TABLE`.
pub const SVM_VMGEXIT_AP_JUMP_TABLE: u64 = 0x8000_0005;
/// `SVM_VMGEXIT_PSC` (SNP only).
pub const SVM_VMGEXIT_PSC: u64 = 0x8000_0010;
/// `SVM_VMGEXIT_GUEST_REQUEST` (SNP only).
pub const SVM_VMGEXIT_GUEST_REQUEST: u64 = 0x8000_0011;
/// `SVM_VMGEXIT_EXT_GUEST_REQUEST` (SNP only).
pub const SVM_VMGEXIT_EXT_GUEST_REQUEST: u64 = 0x8000_0012;
/// `SVM_VMGEXIT_AP_CREATION` (SNP only).
pub const SVM_VMGEXIT_AP_CREATION: u64 = 0x8000_0013;
/// `SVM_VMGEXIT_HV_FEATURES`.
pub const SVM_VMGEXIT_HV_FEATURES: u64 = 0x8000_fffd;
/// `SVM_VMGEXIT_TERM_REQUEST`.
pub const SVM_VMGEXIT_TERM_REQUEST: u64 = 0x8000_fffe;
/// `SVM_VMGEXIT_UNSUPPORTED_EVENT`.
pub const SVM_VMGEXIT_UNSUPPORTED_EVENT: u64 = 0x8000_ffff;

/// `SVM_VMGEXIT_SET_AP_JUMP_TABLE`: AP_JUMP_TABLE sub-code (SW_EXITINFO1) that sets the table.
pub(crate) const SVM_VMGEXIT_SET_AP_JUMP_TABLE: u64 = 0;
/// `SVM_VMGEXIT_GET_AP_JUMP_TABLE`: AP_JUMP_TABLE sub-code (SW_EXITINFO1) that reads the table.
pub(crate) const SVM_VMGEXIT_GET_AP_JUMP_TABLE: u64 = 1;
/// `SVM_VMGEXIT_AP_CREATE_ON_INIT`: AP_CREATION request (low half of SW_EXITINFO1) that
/// creates the AP when it next gets INIT.
pub(crate) const SVM_VMGEXIT_AP_CREATE_ON_INIT: u32 = 0;
/// `SVM_VMGEXIT_AP_CREATE`: AP_CREATION request that creates the AP now.
pub(crate) const SVM_VMGEXIT_AP_CREATE: u32 = 1;
/// `SVM_VMGEXIT_AP_DESTROY`: AP_CREATION request (low half of SW_EXITINFO1) that needs no RAX.
pub(crate) const SVM_VMGEXIT_AP_DESTROY: u32 = 2;

/// `SVM_IOIO_TYPE_MASK`: IOIO SW_EXITINFO1 bit set for IN, clear for OUT.
pub const SVM_IOIO_TYPE_MASK: u64 = 1;
/// `SVM_IOIO_STR_MASK`: IOIO SW_EXITINFO1 bit set for string I/O (INS, OUTS).
pub const SVM_IOIO_STR_MASK: u64 = 1 << 2;
/// `SVM_IOIO_SIZE_SHIFT`: position of the IOIO operand size in SW_EXITINFO1.
pub const SVM_IOIO_SIZE_SHIFT: u32 = 4;
/// `SVM_IOIO_SIZE_MASK`: IOIO operand size bits of SW_EXITINFO1.
pub(crate) const SVM_IOIO_SIZE_MASK: u64 = 7 << SVM_IOIO_SIZE_SHIFT;

/// `GHCB_BITMAP_IDX(cpl)`: valid-bitmap bit of CPL (offset 0xcb).
pub const GHCB_BIT_CPL: u8 = 25;
/// `GHCB_BITMAP_IDX(rax)`: valid-bitmap bit of RAX (offset 0x1f8).
pub const GHCB_BIT_RAX: u8 = 63;
/// `GHCB_BITMAP_IDX(rcx)`: valid-bitmap bit of RCX (offset 0x308).
pub const GHCB_BIT_RCX: u8 = 97;
/// `GHCB_BITMAP_IDX(rdx)`: valid-bitmap bit of RDX (offset 0x310).
pub const GHCB_BIT_RDX: u8 = 98;
/// `GHCB_BITMAP_IDX(sw_exit_code)`: valid-bitmap bit of SW_EXITCODE (offset 0x390).
pub const GHCB_BIT_SW_EXIT_CODE: u8 = 114;
/// `GHCB_BITMAP_IDX(sw_exit_info_1)`: valid-bitmap bit of SW_EXITINFO1 (offset 0x398).
pub const GHCB_BIT_SW_EXIT_INFO_1: u8 = 115;
/// `GHCB_BITMAP_IDX(sw_exit_info_2)`: valid-bitmap bit of SW_EXITINFO2 (offset 0x3a0).
pub const GHCB_BIT_SW_EXIT_INFO_2: u8 = 116;
/// `GHCB_BITMAP_IDX(sw_scratch)`: valid-bitmap bit of SW_SCRATCH (offset 0x3a8).
pub const GHCB_BIT_SW_SCRATCH: u8 = 117;
/// `GHCB_BITMAP_IDX(xcr0)`: valid-bitmap bit of XCR0 (offset 0x3e8).
pub(crate) const GHCB_BIT_XCR0: u8 = 125;

/// CPUID leaf 0xD (XSAVE state): a CPUID request for it also needs XCR0.
pub(crate) const CPUID_LEAF_XSTATE: u64 = 0xd;
/// `PAGE_SIZE`.
pub(crate) const PAGE_SIZE: u64 = 0x1000;
/// `PMD_SIZE`: an AP's VMSA at a GPA aligned to it is refused (an SNP erratum).
pub(crate) const PMD_SIZE: u64 = 0x20_0000;
/// `offsetof(struct ghcb, shared_buffer)`: start of the GHCB shared buffer.
pub const GHCB_SHARED_BUFFER_START: u64 = 0x800;
/// `offsetof(struct ghcb, reserved_0xff0)`: end (exclusive) of the GHCB shared buffer.
pub(crate) const GHCB_SHARED_BUFFER_END: u64 = 0xff0;
/// `GHCB_SCRATCH_AREA_LIMIT` (16 * `PAGE_SIZE`): largest scratch area outside the GHCB.
pub const GHCB_SCRATCH_AREA_LIMIT: u64 = 0x10000;
/// `sizeof(struct psc_hdr)`: scratch bytes a page state change request needs at least.
pub(crate) const PSC_HDR_SIZE: u64 = 8;
/// `INT_MAX`: the largest string I/O count and byte count `sev_es_string_io()` takes.
pub const INT_MAX: u64 = 0x7fff_ffff;
/// GHCB protocol version from which the scratch area must lie in the GHCB and MMIO is at most
/// [`GHCB_V2_MMIO_MAX_LEN`] bytes (`sev->ghcb_version >= 2`).
pub(crate) const GHCB_VERSION_2: u16 = 2;
/// Longest MMIO access under GHCB protocol version 2.
pub(crate) const GHCB_V2_MMIO_MAX_LEN: u64 = 8;

/// `GHCB_MSR_INFO_MASK`: the request code bits of the GHCB MSR; 0 means a GHCB page request.
pub const GHCB_MSR_INFO_MASK: u64 = 0xfff;
/// `GHCB_MSR_PREF_GPA_REQ` (SNP only).
pub(crate) const GHCB_MSR_PREF_GPA_REQ: u64 = 0x010;
/// `GHCB_MSR_REG_GPA_REQ` (SNP only).
pub const GHCB_MSR_REG_GPA_REQ: u64 = 0x012;
/// `GHCB_MSR_PSC_REQ` (SNP only).
pub(crate) const GHCB_MSR_PSC_REQ: u64 = 0x014;

/// Why a GHCB request is malformed; the value goes to SW_EXITINFO2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum MalformedReason {
    /// The GHCB was not registered at the GPA the guest used.
    NotRegistered = 1,
    /// The GHCB usage field is not the default (0).
    InvalidUsage = 2,
    /// The scratch area is outside the GHCB or guest memory, or too large.
    InvalidScratchArea = 3,
    /// A field the exit code requires is not marked valid.
    MissingInput = 4,
    /// A field holds a value the exit code does not accept.
    InvalidInput = 5,
    /// The exit code is not one KVM handles for this guest.
    InvalidEvent = 6,
}

/// The two words KVM writes back to the GHCB to answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GhcbResponse {
    /// SW_EXITINFO1.
    pub exit_info_1: u64,
    /// SW_EXITINFO2.
    pub exit_info_2: u64,
}

impl MalformedReason {
    /// Every reason, in the order of its code.
    pub const ALL: [MalformedReason; 6] = [
        MalformedReason::NotRegistered,
        MalformedReason::InvalidUsage,
        MalformedReason::InvalidScratchArea,
        MalformedReason::MissingInput,
        MalformedReason::InvalidInput,
        MalformedReason::InvalidEvent,
    ];

    /// Returns the reason with SW_EXITINFO2 code `code`, if there is one.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => MalformedReason::NotRegistered,
            2 => MalformedReason::InvalidUsage,
            3 => MalformedReason::InvalidScratchArea,
            4 => MalformedReason::MissingInput,
            5 => MalformedReason::InvalidInput,
            6 => MalformedReason::InvalidEvent,
            _ => return None,
        })
    }

    /// Returns the answer to a request rejected for this reason; the guest is not terminated.
    pub fn response(self) -> GhcbResponse {
        GhcbResponse {
            exit_info_1: GHCB_HV_RESP_MALFORMED_INPUT,
            exit_info_2: self as u64,
        }
    }
}

/// A GHCB request as kvm-amd sees it after `sev_es_sync_from_ghcb()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GhcbRequest {
    /// SW_EXITCODE, all 64 bits.
    pub exit_code: u64,
    /// SW_EXITINFO1.
    pub exit_info_1: u64,
    /// SW_EXITINFO2.
    pub exit_info_2: u64,
    /// The GHCB valid bitmap: bit `n` is bit `n % 64` of word `n / 64`, and a field's bit is
    /// `offsetof(struct ghcb_save_area, field) / 8` (the `GHCB_BIT_*` constants).
    pub valid_bitmap: [u64; 2],
    /// RAX as KVM synced it: 0 unless RAX is marked valid.
    pub rax: u64,
    /// SW_SCRATCH as KVM synced it: 0 unless SW_SCRATCH is marked valid.
    pub sw_scratch: u64,
    /// GPA of this GHCB, from the GHCB MSR (page aligned).
    pub ghcb_gpa: u64,
    /// GPA the SNP guest registered for its GHCB (`ghcb_registered_gpa`).
    pub registered_gpa: u64,
    /// Bytes of guest memory from `sw_scratch` on, for a scratch area outside the GHCB page
    /// under GHCB protocol version 1; 0 otherwise.
    pub scratch_mapped: u64,
    /// The VM's SEV features (`sev->vmsa_features`), which an AP's must equal; AP creation only.
    pub vmsa_features: u64,
    /// The vCPU's reserved GPA bits (`vcpu->arch.reserved_gpa_bits`); AP creation only.
    pub reserved_gpa_bits: u64,
    /// GHCB usage, from the live page.
    pub usage: u32,
    /// The VM's negotiated GHCB protocol version (`sev->ghcb_version`).
    pub ghcb_version: u16,
    /// Whether the guest is an SEV-SNP guest.
    pub snp: bool,
    /// AP creation only: whether a vCPU has the APIC ID in the high half of SW_EXITINFO1.
    pub ap_target: bool,
}

impl GhcbRequest {
    /// Returns whether the valid bitmap marks the field with bit `bit` (a `GHCB_BIT_*`) valid.
    fn has(&self, bit: u8) -> bool {
        match self.valid_bitmap.get(usize::from(bit >> 6)) {
            Some(word) => word.wrapping_shr(u32::from(bit)) & 1 != 0,
            None => false,
        }
    }
}

/// A check of [`validate()`] or [`validate_msr()`]; the value is the `rule` of the hook ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Rule {
    /// An SNP guest used a GHCB at a GPA other than the one it registered.
    NotRegistered = 1,
    /// The GHCB usage is not 0.
    InvalidUsage = 2,
    /// A non-SNP guest asked for an SNP-only exit code.
    SnpOnlyExitCode = 3,
    /// A field the exit code requires is not marked valid.
    MissingInput = 4,
    /// A string I/O count above `INT_MAX`.
    StringIoCount = 5,
    /// A string I/O count times operand size above `INT_MAX`.
    StringIoOverflow = 6,
    /// MMIO longer than 8 bytes under GHCB protocol version 2.
    MmioLength = 7,
    /// SW_SCRATCH is 0.
    ScratchZero = 8,
    /// The scratch area wraps around the end of the address space.
    ScratchWrap = 9,
    /// The scratch area starts in the GHCB page but is not within its shared buffer.
    ScratchOutsideSharedBuffer = 10,
    /// The scratch area is outside the GHCB page under GHCB protocol version 2.
    ScratchOutsideGhcbV2 = 11,
    /// The scratch area is outside the GHCB page and larger than 16 pages.
    ScratchTooLarge = 12,
    /// The scratch area is outside the GHCB page and not all guest memory.
    ScratchOutsideMemory = 13,
    /// An AP_JUMP_TABLE sub-code other than set (0) and get (1).
    ApJumpTableSubcode = 14,
    /// Guest request pages not 4K aligned, or the same page.
    GuestRequestPages = 15,
    /// An exit code KVM does not handle.
    UnknownExitCode = 16,
    /// A non-SNP guest sent an SNP-only MSR-protocol request.
    MsrSnpOnly = 17,
    /// AP creation for an APIC ID that no vCPU has.
    ApCreationTarget = 18,
    /// An AP creation request other than create on INIT (0), create (1) and destroy (2).
    ApCreationRequest = 19,
    /// AP creation with SEV features (RAX) other than the VM's.
    ApCreationFeatures = 20,
    /// AP creation with a VMSA GPA that is not page aligned or sets a reserved GPA bit.
    ApCreationVmsaAddress = 21,
    /// AP creation with a VMSA GPA aligned to 2M.
    ApCreationVmsaHugeAligned = 22,
    /// An IOIO operand size (SW_EXITINFO1 bits 6:4) of 3, 5, 6 or 7: hardware sets one bit.
    IoioSize = 23,
}

impl Rule {
    /// Every rule, in the order of its value.
    pub const ALL: [Rule; 23] = [
        Rule::NotRegistered,
        Rule::InvalidUsage,
        Rule::SnpOnlyExitCode,
        Rule::MissingInput,
        Rule::StringIoCount,
        Rule::StringIoOverflow,
        Rule::MmioLength,
        Rule::ScratchZero,
        Rule::ScratchWrap,
        Rule::ScratchOutsideSharedBuffer,
        Rule::ScratchOutsideGhcbV2,
        Rule::ScratchTooLarge,
        Rule::ScratchOutsideMemory,
        Rule::ApJumpTableSubcode,
        Rule::GuestRequestPages,
        Rule::UnknownExitCode,
        Rule::MsrSnpOnly,
        Rule::ApCreationTarget,
        Rule::ApCreationRequest,
        Rule::ApCreationFeatures,
        Rule::ApCreationVmsaAddress,
        Rule::ApCreationVmsaHugeAligned,
        Rule::IoioSize,
    ];

    /// Returns the rule with value `raw`, if there is one.
    pub const fn from_raw(raw: u8) -> Option<Rule> {
        Some(match raw {
            1 => Rule::NotRegistered,
            2 => Rule::InvalidUsage,
            3 => Rule::SnpOnlyExitCode,
            4 => Rule::MissingInput,
            5 => Rule::StringIoCount,
            6 => Rule::StringIoOverflow,
            7 => Rule::MmioLength,
            8 => Rule::ScratchZero,
            9 => Rule::ScratchWrap,
            10 => Rule::ScratchOutsideSharedBuffer,
            11 => Rule::ScratchOutsideGhcbV2,
            12 => Rule::ScratchTooLarge,
            13 => Rule::ScratchOutsideMemory,
            14 => Rule::ApJumpTableSubcode,
            15 => Rule::GuestRequestPages,
            16 => Rule::UnknownExitCode,
            17 => Rule::MsrSnpOnly,
            18 => Rule::ApCreationTarget,
            19 => Rule::ApCreationRequest,
            20 => Rule::ApCreationFeatures,
            21 => Rule::ApCreationVmsaAddress,
            22 => Rule::ApCreationVmsaHugeAligned,
            23 => Rule::IoioSize,
            _ => return None,
        })
    }

    /// Returns the `GHCB_ERR_*` reason the rule answers with.
    ///
    /// [`Rule::MsrSnpOnly`] has no answer on the wire (an MSR-protocol request is left
    /// unanswered); its reason, [`MalformedReason::InvalidEvent`] as for an SNP-only exit code,
    /// only classifies it.
    pub const fn reason(self) -> MalformedReason {
        match self {
            Rule::NotRegistered => MalformedReason::NotRegistered,
            Rule::InvalidUsage => MalformedReason::InvalidUsage,
            Rule::MissingInput => MalformedReason::MissingInput,
            Rule::ScratchZero
            | Rule::ScratchWrap
            | Rule::ScratchOutsideSharedBuffer
            | Rule::ScratchOutsideGhcbV2
            | Rule::ScratchTooLarge
            | Rule::ScratchOutsideMemory => MalformedReason::InvalidScratchArea,
            Rule::StringIoCount
            | Rule::StringIoOverflow
            | Rule::MmioLength
            | Rule::ApJumpTableSubcode
            | Rule::GuestRequestPages
            | Rule::ApCreationTarget
            | Rule::ApCreationRequest
            | Rule::ApCreationFeatures
            | Rule::ApCreationVmsaAddress
            | Rule::ApCreationVmsaHugeAligned
            | Rule::IoioSize => MalformedReason::InvalidInput,
            Rule::SnpOnlyExitCode | Rule::UnknownExitCode | Rule::MsrSnpOnly => {
                MalformedReason::InvalidEvent
            }
        }
    }

    /// Returns which case beyond 7.3.4 the rule is, or `None` if 7.3.4 answers it the same way.
    pub const fn beyond_upstream(self) -> Option<BeyondUpstream> {
        match self {
            Rule::StringIoCount => Some(BeyondUpstream::StringIoCount),
            Rule::StringIoOverflow => Some(BeyondUpstream::StringIoOverflow),
            Rule::ScratchOutsideMemory => Some(BeyondUpstream::ScratchOutsideMemory),
            Rule::MsrSnpOnly => Some(BeyondUpstream::MsrSnpOnly),
            Rule::IoioSize => Some(BeyondUpstream::IoioSize),
            _ => None,
        }
    }

    /// Returns the 7.3.4 function whose check the rule restates.
    pub const fn upstream_source(self) -> &'static str {
        match self {
            Rule::SnpOnlyExitCode => "sev.c is_snp_only_vmgexit()",
            Rule::MissingInput => "sev.c sev_es_are_required_ghcb_fields_valid()",
            Rule::StringIoCount | Rule::StringIoOverflow => "sev.c sev_es_string_io()",
            Rule::ScratchZero
            | Rule::ScratchWrap
            | Rule::ScratchOutsideSharedBuffer
            | Rule::ScratchOutsideGhcbV2
            | Rule::ScratchTooLarge
            | Rule::ScratchOutsideMemory => "sev.c setup_vmgexit_scratch()",
            Rule::MsrSnpOnly => "sev.c sev_handle_vmgexit_msr_protocol()",
            Rule::IoioSize => "svm.c io_interception()",
            Rule::ApCreationTarget
            | Rule::ApCreationRequest
            | Rule::ApCreationFeatures
            | Rule::ApCreationVmsaAddress
            | Rule::ApCreationVmsaHugeAligned => "sev.c sev_snp_ap_creation()",
            Rule::NotRegistered
            | Rule::InvalidUsage
            | Rule::MmioLength
            | Rule::ApJumpTableSubcode
            | Rule::GuestRequestPages
            | Rule::UnknownExitCode => "sev.c sev_handle_vmgexit()",
        }
    }
}

/// A case that 7.3.4 does not answer with a GHCB error; the value is the `beyond` of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BeyondUpstream {
    /// String I/O count above `INT_MAX`: 7.3.4 fails `KVM_RUN` with -EINVAL.
    StringIoCount = 1,
    /// String I/O byte count above `INT_MAX`: 7.3.4 fails `KVM_RUN` with -EINVAL.
    StringIoOverflow = 2,
    /// Scratch area outside guest memory: 7.3.4 fails `KVM_RUN` with -EFAULT.
    ScratchOutsideMemory = 3,
    /// SNP-only MSR-protocol request from a non-SNP guest: 7.3.4 terminates the guest.
    MsrSnpOnly = 4,
    /// IOIO operand size 3, 5, 6 or 7: 7.3.4 passes it to the VMM as the access size.
    IoioSize = 5,
}

impl BeyondUpstream {
    /// Every case, in the order of its value.
    pub const ALL: [BeyondUpstream; 5] = [
        BeyondUpstream::StringIoCount,
        BeyondUpstream::StringIoOverflow,
        BeyondUpstream::ScratchOutsideMemory,
        BeyondUpstream::MsrSnpOnly,
        BeyondUpstream::IoioSize,
    ];
}

/// What KVM does with a GHCB request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhcbVerdict {
    /// Let kvm-amd's handler serve it.
    Accept,
    /// Answer it with `rule.reason().response()` and resume the guest.
    Malformed(Rule),
}

/// Validates `req` as 7.3.4's `sev_handle_vmgexit()` does, and beyond it (see the module docs).
pub fn validate(req: &GhcbRequest) -> GhcbVerdict {
    let checked = check_header(req).and_then(|()| {
        if required_fields_valid(req) {
            check_handler(req)
        } else {
            Err(Rule::MissingInput)
        }
    });
    match checked {
        Ok(()) => GhcbVerdict::Accept,
        Err(rule) => GhcbVerdict::Malformed(rule),
    }
}

/// The checks `sev_handle_vmgexit()` makes before it looks at the fields.
fn check_header(req: &GhcbRequest) -> Result<(), Rule> {
    if req.snp && req.ghcb_gpa != req.registered_gpa {
        return Err(Rule::NotRegistered);
    }
    if req.usage != 0 {
        return Err(Rule::InvalidUsage);
    }
    // is_snp_only_vmgexit().
    let snp_only = matches!(
        req.exit_code,
        SVM_VMGEXIT_AP_CREATION
            | SVM_VMGEXIT_GUEST_REQUEST
            | SVM_VMGEXIT_EXT_GUEST_REQUEST
            | SVM_VMGEXIT_PSC
    );
    if snp_only && !req.snp {
        return Err(Rule::SnpOnlyExitCode);
    }
    Ok(())
}

/// `sev_es_are_required_ghcb_fields_valid()`: whether every field the exit code needs is valid.
fn required_fields_valid(req: &GhcbRequest) -> bool {
    let has = |bit| req.has(bit);
    let exit_fields =
        has(GHCB_BIT_SW_EXIT_CODE) && has(GHCB_BIT_SW_EXIT_INFO_1) && has(GHCB_BIT_SW_EXIT_INFO_2);
    if !exit_fields {
        return false;
    }
    match req.exit_code {
        SVM_EXIT_WRITE_DR7 => has(GHCB_BIT_RAX),
        SVM_EXIT_RDPMC => has(GHCB_BIT_RCX),
        SVM_EXIT_CPUID => {
            has(GHCB_BIT_RAX)
                && has(GHCB_BIT_RCX)
                && (req.rax != CPUID_LEAF_XSTATE || has(GHCB_BIT_XCR0))
        }
        SVM_EXIT_IOIO if req.exit_info_1 & SVM_IOIO_STR_MASK != 0 => has(GHCB_BIT_SW_SCRATCH),
        SVM_EXIT_IOIO => req.exit_info_1 & SVM_IOIO_TYPE_MASK != 0 || has(GHCB_BIT_RAX),
        SVM_EXIT_MSR => {
            has(GHCB_BIT_RCX) && (req.exit_info_1 == 0 || (has(GHCB_BIT_RAX) && has(GHCB_BIT_RDX)))
        }
        SVM_EXIT_VMMCALL => has(GHCB_BIT_RAX) && has(GHCB_BIT_CPL),
        SVM_EXIT_MONITOR => has(GHCB_BIT_RAX) && has(GHCB_BIT_RCX) && has(GHCB_BIT_RDX),
        SVM_EXIT_MWAIT => has(GHCB_BIT_RAX) && has(GHCB_BIT_RCX),
        SVM_VMGEXIT_AP_CREATION => {
            // CAST: `lower_32_bits()`, as 7.3.4 compares it.
            has(GHCB_BIT_RAX) || req.exit_info_1 as u32 == SVM_VMGEXIT_AP_DESTROY
        }
        SVM_VMGEXIT_MMIO_READ | SVM_VMGEXIT_MMIO_WRITE | SVM_VMGEXIT_PSC => {
            has(GHCB_BIT_SW_SCRATCH)
        }
        _ => true,
    }
}

/// The checks of the `sev_handle_vmgexit()` switch on the exit code, and of its handlers.
fn check_handler(req: &GhcbRequest) -> Result<(), Rule> {
    match req.exit_code {
        SVM_EXIT_IOIO => check_ioio(req),
        SVM_EXIT_READ_DR7 | SVM_EXIT_WRITE_DR7 | SVM_EXIT_RDTSC | SVM_EXIT_RDTSCP
        | SVM_EXIT_RDPMC | SVM_EXIT_CPUID | SVM_EXIT_INVD | SVM_EXIT_MSR | SVM_EXIT_VMMCALL
        | SVM_EXIT_WBINVD | SVM_EXIT_MONITOR | SVM_EXIT_MWAIT => Ok(()),
        SVM_VMGEXIT_MMIO_READ | SVM_VMGEXIT_MMIO_WRITE => {
            let len = req.exit_info_2;
            if len == 0 {
                Ok(())
            } else if req.ghcb_version >= GHCB_VERSION_2 && len > GHCB_V2_MMIO_MAX_LEN {
                Err(Rule::MmioLength)
            } else {
                check_scratch(req, len)
            }
        }
        // Termination and an unsupported #VC are the guest's own choice.
        SVM_VMGEXIT_NMI_COMPLETE
        | SVM_VMGEXIT_AP_HLT_LOOP
        | SVM_VMGEXIT_HV_FEATURES
        | SVM_VMGEXIT_TERM_REQUEST
        | SVM_VMGEXIT_UNSUPPORTED_EVENT => Ok(()),
        SVM_VMGEXIT_AP_CREATION => check_ap_creation(req),
        SVM_VMGEXIT_AP_JUMP_TABLE => match req.exit_info_1 {
            SVM_VMGEXIT_SET_AP_JUMP_TABLE | SVM_VMGEXIT_GET_AP_JUMP_TABLE => Ok(()),
            _ => Err(Rule::ApJumpTableSubcode),
        },
        SVM_VMGEXIT_PSC => check_scratch(req, PSC_HDR_SIZE),
        SVM_VMGEXIT_GUEST_REQUEST | SVM_VMGEXIT_EXT_GUEST_REQUEST => {
            let (req_gpa, resp_gpa) = (req.exit_info_1, req.exit_info_2);
            let unaligned = (req_gpa | resp_gpa) & (PAGE_SIZE - 1) != 0;
            if unaligned || req_gpa == resp_gpa {
                Err(Rule::GuestRequestPages)
            } else {
                Ok(())
            }
        }
        _ => Err(Rule::UnknownExitCode),
    }
}

/// The IOIO checks of `sev_handle_vmgexit()` and `sev_es_string_io()`, after one of our own.
fn check_ioio(req: &GhcbRequest) -> Result<(), Rule> {
    let size = (req.exit_info_1 & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
    // The CPU sets one of SZ8, SZ16 and SZ32 for an IN or OUT it intercepts; an SEV-ES guest
    // writes the field itself. 7.3.4 takes any value as the access size. Size 0 stays 7.3.4's
    // (a string request with it moves nothing).
    if matches!(size, 3 | 5 | 6 | 7) {
        return Err(Rule::IoioSize);
    }
    if size == 0 || req.exit_info_1 & SVM_IOIO_STR_MASK == 0 {
        return Ok(());
    }
    let count = req.exit_info_2;
    if count > INT_MAX {
        return Err(Rule::StringIoCount);
    }
    // `count` < 2^31 and `size` < 8: the product never overflows a `u64`, only an `int`.
    let bytes = match count.checked_mul(size) {
        Some(bytes) if bytes <= INT_MAX => bytes,
        _ => return Err(Rule::StringIoOverflow),
    };
    if bytes == 0 {
        return Ok(());
    }
    check_scratch(req, bytes)
}

/// The checks of `sev_snp_ap_creation()`, in its order; each answers INVALID_INPUT.
fn check_ap_creation(req: &GhcbRequest) -> Result<(), Rule> {
    if !req.ap_target {
        return Err(Rule::ApCreationTarget);
    }
    // CAST: `lower_32_bits()`, as 7.3.4 takes the request.
    match req.exit_info_1 as u32 {
        SVM_VMGEXIT_AP_CREATE_ON_INIT | SVM_VMGEXIT_AP_CREATE => {
            let vmsa = req.exit_info_2;
            if req.rax != req.vmsa_features {
                Err(Rule::ApCreationFeatures)
            } else if vmsa & (PAGE_SIZE - 1) != 0 || vmsa & req.reserved_gpa_bits != 0 {
                // page_address_valid().
                Err(Rule::ApCreationVmsaAddress)
            } else if vmsa & (PMD_SIZE - 1) == 0 {
                Err(Rule::ApCreationVmsaHugeAligned)
            } else {
                Ok(())
            }
        }
        SVM_VMGEXIT_AP_DESTROY => Ok(()),
        _ => Err(Rule::ApCreationRequest),
    }
}

/// `setup_vmgexit_scratch()` for a scratch area of `len` (> 0) bytes.
fn check_scratch(req: &GhcbRequest, len: u64) -> Result<(), Rule> {
    let start = req.sw_scratch;
    if start == 0 {
        return Err(Rule::ScratchZero);
    }
    let Some(end) = start.checked_add(len) else {
        return Err(Rule::ScratchWrap);
    };
    if start & !(PAGE_SIZE - 1) == req.ghcb_gpa {
        // `ghcb_gpa` is then the page of `start`, at most 2^64 - PAGE_SIZE: neither wraps.
        let buffer_start = req.ghcb_gpa.wrapping_add(GHCB_SHARED_BUFFER_START);
        let buffer_end = req.ghcb_gpa.wrapping_add(GHCB_SHARED_BUFFER_END);
        if start < buffer_start || end > buffer_end {
            return Err(Rule::ScratchOutsideSharedBuffer);
        }
        return Ok(());
    }
    if req.ghcb_version >= GHCB_VERSION_2 {
        return Err(Rule::ScratchOutsideGhcbV2);
    }
    if len > GHCB_SCRATCH_AREA_LIMIT {
        return Err(Rule::ScratchTooLarge);
    }
    if len > req.scratch_mapped {
        return Err(Rule::ScratchOutsideMemory);
    }
    Ok(())
}

/// What KVM does with an MSR-protocol request (GHCB MSR request code, bits 0-11, not 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrVerdict {
    /// Let kvm-amd's `sev_handle_vmgexit_msr_protocol()` serve it.
    Handle,
    /// Leave the request unanswered and resume the guest.
    Ignore(Rule),
}

/// Validates the MSR-protocol request in GHCB MSR value `ghcb_msr` of a guest (SNP if `snp`).
pub fn validate_msr(ghcb_msr: u64, snp: bool) -> MsrVerdict {
    match ghcb_msr & GHCB_MSR_INFO_MASK {
        GHCB_MSR_PREF_GPA_REQ | GHCB_MSR_REG_GPA_REQ | GHCB_MSR_PSC_REQ if !snp => {
            MsrVerdict::Ignore(Rule::MsrSnpOnly)
        }
        _ => MsrVerdict::Handle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHCB: u64 = 0x7000;

    /// An SNP request for `exit_code` with every field valid, at its registered GHCB, version 2.
    fn request(exit_code: u64) -> GhcbRequest {
        GhcbRequest {
            exit_code,
            valid_bitmap: [u64::MAX; 2],
            sw_scratch: GHCB + GHCB_SHARED_BUFFER_START,
            ghcb_gpa: GHCB,
            registered_gpa: GHCB,
            ghcb_version: 2,
            snp: true,
            ..GhcbRequest::default()
        }
    }

    fn malformed(rule: Rule) -> GhcbVerdict {
        GhcbVerdict::Malformed(rule)
    }

    #[test]
    fn every_reason_answers_malformed_with_its_code() {
        for (reason, code) in MalformedReason::ALL.into_iter().zip(1..) {
            assert_eq!(
                reason.response(),
                GhcbResponse {
                    exit_info_1: 2,
                    exit_info_2: code
                }
            );
            assert_eq!(MalformedReason::from_code(code), Some(reason));
        }
        assert_eq!(MalformedReason::from_code(0), None);
        assert_eq!(MalformedReason::from_code(7), None);
        assert_eq!(MalformedReason::from_code(u64::MAX), None);
    }

    #[test]
    fn rule_values_round_trip() {
        for (rule, raw) in Rule::ALL.into_iter().zip(1..) {
            assert_eq!(rule as u8, raw);
            assert_eq!(Rule::from_raw(raw), Some(rule));
        }
        assert_eq!(Rule::from_raw(0), None);
        assert_eq!(Rule::from_raw(24), None);
        for (beyond, raw) in BeyondUpstream::ALL.into_iter().zip(1..) {
            assert_eq!(beyond as u8, raw);
        }
    }

    #[test]
    fn first_failing_rule_wins_in_upstream_order() {
        // Unregistered, bad usage, SNP-only, nothing valid: the registration comes first.
        let mut req = request(SVM_VMGEXIT_PSC);
        req.registered_gpa = 0;
        req.usage = 1;
        req.snp = true;
        req.valid_bitmap = [0; 2];
        assert_eq!(validate(&req), malformed(Rule::NotRegistered));
        req.registered_gpa = GHCB;
        assert_eq!(validate(&req), malformed(Rule::InvalidUsage));
        req.usage = 0;
        req.snp = false;
        assert_eq!(validate(&req), malformed(Rule::SnpOnlyExitCode));
        req.snp = true;
        assert_eq!(validate(&req), malformed(Rule::MissingInput));
        req.valid_bitmap = [u64::MAX; 2];
        req.sw_scratch = 0;
        assert_eq!(validate(&req), malformed(Rule::ScratchZero));
        // A non-SNP guest has no registered GPA to check.
        req.snp = false;
        req.registered_gpa = 0;
        req.exit_code = SVM_EXIT_CPUID;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
    }

    #[test]
    fn shared_buffer_edges() {
        let mut req = request(SVM_VMGEXIT_PSC);
        // The 8-byte header at the very start and at the very end of 0x800..0xff0.
        for (scratch, verdict) in [
            (0x7ff, malformed(Rule::ScratchOutsideSharedBuffer)),
            (0x800, GhcbVerdict::Accept),
            (0xfe8, GhcbVerdict::Accept),
            (0xfe9, malformed(Rule::ScratchOutsideSharedBuffer)),
            (0xff8, malformed(Rule::ScratchOutsideSharedBuffer)),
        ] {
            req.sw_scratch = GHCB + scratch;
            assert_eq!(validate(&req), verdict, "scratch at {scratch:#x}");
        }
        // The next page is outside the GHCB: refused under version 2 whatever its size.
        req.sw_scratch = GHCB + PAGE_SIZE;
        assert_eq!(validate(&req), malformed(Rule::ScratchOutsideGhcbV2));
    }

    #[test]
    fn sixteen_pages_outside_the_ghcb_under_version_one() {
        let mut req = request(SVM_VMGEXIT_MMIO_READ);
        req.ghcb_version = 1;
        req.sw_scratch = 0x10_0000;
        req.scratch_mapped = u64::MAX;
        req.exit_info_2 = GHCB_SCRATCH_AREA_LIMIT;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
        req.exit_info_2 = GHCB_SCRATCH_AREA_LIMIT + 1;
        assert_eq!(validate(&req), malformed(Rule::ScratchTooLarge));
        // A scratch area must be guest memory, to the last byte.
        req.exit_info_2 = 16;
        req.scratch_mapped = 15;
        assert_eq!(validate(&req), malformed(Rule::ScratchOutsideMemory));
        req.scratch_mapped = 16;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
        // The same area wrapping around the address space.
        req.sw_scratch = u64::MAX - 15;
        assert_eq!(validate(&req), malformed(Rule::ScratchWrap));
    }

    #[test]
    fn string_io_count_limit_is_int_max() {
        // INS of one byte, counted in SW_EXITINFO2, with a scratch area outside the GHCB.
        let mut req = request(SVM_EXIT_IOIO);
        req.exit_info_1 = SVM_IOIO_STR_MASK | SVM_IOIO_TYPE_MASK | (1 << SVM_IOIO_SIZE_SHIFT);
        req.ghcb_version = 1;
        req.sw_scratch = 0x10_0000;
        req.exit_info_2 = INT_MAX;
        assert_eq!(validate(&req), malformed(Rule::ScratchTooLarge));
        req.exit_info_2 = INT_MAX + 1;
        assert_eq!(validate(&req), malformed(Rule::StringIoCount));
        // Four-byte operands: INT_MAX / 4 elements fit in an int, one more does not.
        req.exit_info_1 = SVM_IOIO_STR_MASK | (4 << SVM_IOIO_SIZE_SHIFT);
        req.exit_info_2 = INT_MAX / 4;
        assert_eq!(validate(&req), malformed(Rule::ScratchTooLarge));
        req.exit_info_2 = INT_MAX / 4 + 1;
        assert_eq!(validate(&req), malformed(Rule::StringIoOverflow));
        // No elements, or no operand size: nothing to check.
        req.exit_info_2 = 0;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
        req.exit_info_1 = SVM_IOIO_STR_MASK;
        req.exit_info_2 = u64::MAX;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
    }

    #[test]
    fn ioio_size_is_one_of_the_three_the_cpu_decodes() {
        let mut req = request(SVM_EXIT_IOIO);
        for (size, verdict) in [
            (0, GhcbVerdict::Accept),
            (1, GhcbVerdict::Accept),
            (2, GhcbVerdict::Accept),
            (3, malformed(Rule::IoioSize)),
            (4, GhcbVerdict::Accept),
            (5, malformed(Rule::IoioSize)),
            (6, malformed(Rule::IoioSize)),
            (7, malformed(Rule::IoioSize)),
        ] {
            // OUT, then IN, then string OUT of one element in the shared buffer.
            for info in [0, SVM_IOIO_TYPE_MASK, SVM_IOIO_STR_MASK] {
                req.exit_info_1 = info | (size << SVM_IOIO_SIZE_SHIFT);
                req.exit_info_2 = 1;
                assert_eq!(validate(&req), verdict, "size {size}, info {info:#x}");
            }
        }
        // The size is checked before the string count.
        req.exit_info_1 = SVM_IOIO_STR_MASK | (3 << SVM_IOIO_SIZE_SHIFT);
        req.exit_info_2 = u64::MAX;
        assert_eq!(validate(&req), malformed(Rule::IoioSize));
    }

    #[test]
    fn cpuid_leaf_0xd_needs_xcr0() {
        let mut req = request(SVM_EXIT_CPUID);
        req.valid_bitmap[1] &= !(1 << (GHCB_BIT_XCR0 - 64));
        req.rax = 0xc;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
        req.rax = 0xd;
        assert_eq!(validate(&req), malformed(Rule::MissingInput));
        // All 64 bits of RAX are compared.
        req.rax = 0x1_0000_000d;
        assert_eq!(validate(&req), GhcbVerdict::Accept);
        req.rax = 0xd;
        req.valid_bitmap[1] |= 1 << (GHCB_BIT_XCR0 - 64);
        assert_eq!(validate(&req), GhcbVerdict::Accept);
    }

    #[test]
    fn snp_only_msr_requests() {
        for msr in [0x010, 0x012, 0x014, 0xabc_d000 | 0x012] {
            assert_eq!(
                validate_msr(msr, false),
                MsrVerdict::Ignore(Rule::MsrSnpOnly)
            );
            assert_eq!(validate_msr(msr, true), MsrVerdict::Handle);
        }
        assert_eq!(validate_msr(0x100, false), MsrVerdict::Handle);
        assert_eq!(validate_msr(0x016, false), MsrVerdict::Handle);
    }
}
