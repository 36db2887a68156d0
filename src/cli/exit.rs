//! The exit statuses of `relay`. Each relay error code has its own, so a script can tell a
//! session that is not there from one that did not answer in time.

use crate::errors::ErrorCode;

/// Success.
pub(crate) const SUCCESS: u8 = 0;
/// A failure without a relay error code: no hub runs, a file cannot be read, a check failed.
pub(crate) const FAILURE: u8 = 1;
/// A broadcast ended with some sessions not answering.
pub(crate) const NOT_ALL_ANSWERED: u8 = 3;
/// Interrupted by SIGINT or SIGTERM.
pub(crate) const INTERRUPTED: u8 = 130;

/// The exit status for a relay error code: 10 and up, in the order of the README's error table.
pub(crate) fn for_error(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::PeerNotFound => 10,
        ErrorCode::PeerGone => 11,
        ErrorCode::Timeout => 12,
        ErrorCode::NameTaken => 13,
        ErrorCode::NotRegistered => 14,
        ErrorCode::AlreadyRegistered => 15,
        ErrorCode::UnknownAsk => 16,
        ErrorCode::BadMsg => 17,
        ErrorCode::HubUnreachable => 18,
        ErrorCode::BadArgs => 19,
        ErrorCode::ProtocolMismatch => 20,
        ErrorCode::InboxFull => 21,
        ErrorCode::TooManyAsks => 22,
        ErrorCode::PeerBusy => 23,
        ErrorCode::AmbiguousPeer => 24,
        ErrorCode::HostUnreachable => 25,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_error_code_with_its_meaning_and_exit_status() {
        let readme = include_str!("../../README.md");
        for code in ErrorCode::ALL {
            let row = format!(
                "| `{}` | {} | {} |",
                code.as_str(),
                code.meaning(),
                for_error(code)
            );
            assert!(readme.contains(&row), "README lacks the row: {row}");
        }
    }

    #[test]
    fn every_error_code_has_its_own_status() {
        let mut seen: Vec<u8> = ErrorCode::ALL.iter().map(|code| for_error(*code)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ErrorCode::ALL.len());
        // 2 is clap's status for a command line it cannot parse.
        for status in [SUCCESS, FAILURE, 2, NOT_ALL_ANSWERED, INTERRUPTED] {
            assert!(!seen.contains(&status));
        }
    }
}
