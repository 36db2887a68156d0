//! The error codes of claude-relay, in one place.
//!
//! Every failure a tool, the hub or the wire can report is one of these codes. The code is what
//! programs match on (it travels as its snake_case name); the message that goes with it is one
//! human sentence saying what happened and what to do.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Ends the message of every ask failure, which reaches a session's model as a push: what the
/// model should do with it. The command line, read by a person, leaves it out
/// ([`RelayError::for_people`]).
pub(crate) const FOR_THE_MODEL: &str = "; surface this to the user; do not broadcast as a fallback";

/// A stable, machine-readable error code. Its wire name is the snake_case variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    PeerNotFound,
    PeerGone,
    Timeout,
    NameTaken,
    NotRegistered,
    AlreadyRegistered,
    UnknownAsk,
    BadMsg,
    HubUnreachable,
    BadArgs,
    ProtocolMismatch,
    InboxFull,
    TooManyAsks,
    PeerBusy,
    AmbiguousPeer,
    HostUnreachable,
}

impl ErrorCode {
    /// Every code, in the order the README's table lists them.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::PeerNotFound,
        ErrorCode::PeerGone,
        ErrorCode::Timeout,
        ErrorCode::NameTaken,
        ErrorCode::NotRegistered,
        ErrorCode::AlreadyRegistered,
        ErrorCode::UnknownAsk,
        ErrorCode::BadMsg,
        ErrorCode::HubUnreachable,
        ErrorCode::BadArgs,
        ErrorCode::ProtocolMismatch,
        ErrorCode::InboxFull,
        ErrorCode::TooManyAsks,
        ErrorCode::PeerBusy,
        ErrorCode::AmbiguousPeer,
        ErrorCode::HostUnreachable,
    ];

    /// The wire name, e.g. `peer_not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::PeerNotFound => "peer_not_found",
            ErrorCode::PeerGone => "peer_gone",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::AlreadyRegistered => "already_registered",
            ErrorCode::UnknownAsk => "unknown_ask",
            ErrorCode::BadMsg => "bad_msg",
            ErrorCode::HubUnreachable => "hub_unreachable",
            ErrorCode::BadArgs => "bad_args",
            ErrorCode::ProtocolMismatch => "protocol_mismatch",
            ErrorCode::InboxFull => "inbox_full",
            ErrorCode::TooManyAsks => "too_many_asks",
            ErrorCode::PeerBusy => "peer_busy",
            ErrorCode::AmbiguousPeer => "ambiguous_peer",
            ErrorCode::HostUnreachable => "host_unreachable",
        }
    }

    /// What the code means, as the README's error table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorCode::PeerNotFound => "no live session has that name",
            ErrorCode::PeerGone => "the session you asked disconnected before it replied",
            ErrorCode::Timeout => "no reply came before the ask's deadline",
            ErrorCode::NameTaken => "another live session already uses that name",
            ErrorCode::NotRegistered => {
                "a request reached the hub before the connection said hello"
            }
            ErrorCode::AlreadyRegistered => "a connection said hello twice",
            ErrorCode::UnknownAsk => {
                "the ask_id is not pending for this session: never existed, already answered, \
                 expired, or addressed to another session"
            }
            ErrorCode::BadMsg => {
                "the hub could not read a wire message (malformed JSON, unknown op, line over 1 MiB)"
            }
            ErrorCode::HubUnreachable => {
                "the hub could not be reached or started, or the connection to it dropped"
            }
            ErrorCode::BadArgs => {
                "a tool's arguments are missing, of the wrong type, or out of range"
            }
            ErrorCode::ProtocolMismatch => {
                "the running hub speaks another protocol version than this client"
            }
            ErrorCode::InboxFull => {
                "the recipient's pushes are off and its inbox of undelivered messages is full; nothing was sent"
            }
            ErrorCode::TooManyAsks => {
                "this session already has the most asks waiting for replies that one session may have; nothing was sent"
            }
            ErrorCode::PeerBusy => {
                "the recipient has not read the messages it was sent yet (or the hub holds too many unread); nothing was sent"
            }
            ErrorCode::AmbiguousPeer => {
                "sessions of that name run on several hosts; name one as name@host"
            }
            ErrorCode::HostUnreachable => {
                "the session's host cannot be reached now (the federation's server is down or unreachable); nothing was sent"
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its code and a sentence for the human (or model) who reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code}: {message}")]
pub struct RelayError {
    pub code: ErrorCode,
    pub message: String,
}

impl RelayError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RelayError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_args(message: impl Into<String>) -> Self {
        RelayError::new(ErrorCode::BadArgs, message)
    }

    pub fn bad_msg(message: impl Into<String>) -> Self {
        RelayError::new(ErrorCode::BadMsg, message)
    }

    pub fn hub_unreachable(message: impl Into<String>) -> Self {
        RelayError::new(ErrorCode::HubUnreachable, message)
    }

    /// The message without the advice meant for a model ([`FOR_THE_MODEL`]).
    pub fn for_people(mut self) -> Self {
        if let Some(plain) = self.message.strip_suffix(FOR_THE_MODEL) {
            self.message = plain.to_owned();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, code);
        }
    }
}
