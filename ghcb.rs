// SPDX-License-Identifier: GPL-2.0

//! Decides how KVM answers a malformed GHCB request from an SEV-ES guest.
//!
//! The guest asks for a service by filling the GHCB page and exiting with VMGEXIT. A request
//! KVM cannot accept is answered, not punished: SW_EXITINFO1 is set to 2 (malformed input) and
//! SW_EXITINFO2 to a reason code, and the guest resumes. The codes are the ones of
//! `srctree/arch/x86/include/asm/sev-common.h` (`GHCB_ERR_*`).
//!
//! This file uses only `core`: it is built into the module and into the host test crate.

/// SW_EXITINFO1 value for a request the hypervisor rejects as malformed.
pub const GHCB_HV_RESP_MALFORMED_INPUT: u64 = 2;

/// GHCB protocol versions KVM speaks.
pub const GHCB_VERSION_MIN: u16 = 1;
/// Highest GHCB protocol version KVM speaks.
pub const GHCB_VERSION_MAX: u16 = 2;

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

/// Checks the GHCB usage field: only the default usage (0) is defined.
pub fn check_usage(usage: u32) -> Result<(), MalformedReason> {
    if usage == 0 {
        Ok(())
    } else {
        Err(MalformedReason::InvalidUsage)
    }
}

/// Returns whether `version` is a GHCB protocol version KVM speaks.
pub fn protocol_version_supported(version: u16) -> bool {
    (GHCB_VERSION_MIN..=GHCB_VERSION_MAX).contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_answers_malformed_with_its_code() {
        let reasons = [
            (MalformedReason::NotRegistered, 1),
            (MalformedReason::InvalidUsage, 2),
            (MalformedReason::InvalidScratchArea, 3),
            (MalformedReason::MissingInput, 4),
            (MalformedReason::InvalidInput, 5),
            (MalformedReason::InvalidEvent, 6),
        ];
        for (reason, code) in reasons {
            assert_eq!(
                reason.response(),
                GhcbResponse {
                    exit_info_1: 2,
                    exit_info_2: code
                }
            );
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        for code in 1..=6 {
            let reason = MalformedReason::from_code(code).unwrap();
            assert_eq!(reason.response().exit_info_2, code);
        }
        assert_eq!(MalformedReason::from_code(0), None);
        assert_eq!(MalformedReason::from_code(7), None);
        assert_eq!(MalformedReason::from_code(u64::MAX), None);
    }

    #[test]
    fn usage_must_be_zero() {
        assert_eq!(check_usage(0), Ok(()));
        assert_eq!(check_usage(1), Err(MalformedReason::InvalidUsage));
        assert_eq!(check_usage(u32::MAX), Err(MalformedReason::InvalidUsage));
    }

    #[test]
    fn protocol_versions_one_and_two() {
        assert!(!protocol_version_supported(0));
        assert!(protocol_version_supported(1));
        assert!(protocol_version_supported(2));
        assert!(!protocol_version_supported(3));
    }
}
