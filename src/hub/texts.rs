//! Every sentence the hub says to a person or a model, in one place.
//!
//! Each is one error code and a sentence saying what happened and what to do next. Failures of
//! asks reach the asking session's model as pushes, so they end with [`FOR_THE_MODEL`]; the
//! command line strips that part for people.

use time::format_description::well_known::Rfc3339;

use crate::{
    ask::NotPending,
    errors::{ErrorCode, FOR_THE_MODEL, RelayError},
    protocol::{MAX_LINE_BYTES, PROTOCOL_VERSION, VERSION},
};

pub(super) fn not_registered() -> RelayError {
    RelayError::new(
        ErrorCode::NotRegistered,
        "this connection has not said hello yet; send hello first",
    )
}

pub(super) fn already_registered() -> RelayError {
    RelayError::new(
        ErrorCode::AlreadyRegistered,
        "this connection already said hello; send hello once per connection",
    )
}

/// A client of another protocol version said hello.
pub(super) fn protocol_mismatch(client_version: &str, client_protocol: u32) -> RelayError {
    let pid = std::process::id();
    RelayError::new(
        ErrorCode::ProtocolMismatch,
        format!(
            "the running hub (claude-relay {VERSION}, pid {pid}) speaks relay protocol {PROTOCOL_VERSION} but this \
             client (claude-relay {client_version}) speaks protocol {client_protocol}: install one version of \
             claude-relay, then stop the old hub with `kill {pid}` (sessions reconnect by themselves)"
        ),
    )
}

pub(super) fn name_taken(name: &str) -> RelayError {
    RelayError::new(
        ErrorCode::NameTaken,
        format!("another live session is already named {name:?}; choose another name"),
    )
}

pub(super) fn peer_not_found(name: &str) -> RelayError {
    RelayError::new(
        ErrorCode::PeerNotFound,
        format!(
            "no live session is named {name:?}; relay_peers (or `relay peers` in a shell) lists who is connected"
        ),
    )
}

pub(super) fn asked_itself(name: &str) -> RelayError {
    RelayError::bad_args(format!(
        "{name:?} is this session itself; ask another session (relay_peers, or `relay peers` in a shell, lists them)"
    ))
}

pub(super) fn command_line_cannot_answer(name: &str) -> RelayError {
    RelayError::bad_args(format!(
        "{name:?} is a relay command line, which cannot answer questions; ask a Claude Code session \
         (relay_peers, or `relay peers` in a shell, lists them)"
    ))
}

/// A message to a session whose inbox is full.
pub(super) fn inbox_full(name: &str) -> RelayError {
    RelayError::new(
        ErrorCode::InboxFull,
        format!(
            "{name}'s pushes are off and its inbox of undelivered messages is full, so nothing was sent; \
             tell the user: {name} must be used (a prompt there delivers the inbox) or restarted with the \
             channels flag"
        ),
    )
}

pub(super) fn too_many_asks(pending: usize, max: usize) -> RelayError {
    RelayError::new(
        ErrorCode::TooManyAsks,
        format!(
            "this session has {pending} asks waiting for replies, and {max} is the most one session may \
             have; nothing was sent: wait for replies (or their timeouts) first"
        ),
    )
}

pub(super) fn hub_too_many_asks(max: usize) -> RelayError {
    RelayError::new(
        ErrorCode::TooManyAsks,
        format!(
            "the hub holds {max} asks waiting for replies, its most; nothing was sent: try again later"
        ),
    )
}

pub(super) fn peer_busy(name: &str, unread: usize) -> RelayError {
    RelayError::new(
        ErrorCode::PeerBusy,
        format!(
            "{name} has not read the {} KiB it was last sent yet; nothing was sent: try again shortly",
            unread / 1024
        ),
    )
}

pub(super) fn hub_busy(unread: usize) -> RelayError {
    RelayError::new(
        ErrorCode::PeerBusy,
        format!(
            "the hub holds {} MiB that sessions have not read yet; nothing was sent: try again shortly",
            unread / (1024 * 1024)
        ),
    )
}

pub(super) fn no_session_with_id(session_id: &str) -> RelayError {
    RelayError::new(
        ErrorCode::PeerNotFound,
        format!("no live session registered with Claude Code session id {session_id:?}"),
    )
}

pub(super) fn no_such_take(take_id: u64) -> RelayError {
    RelayError::bad_args(format!(
        "no page with take_id {take_id} is out: it was acknowledged already, or handed to another reader \
         after its lease ended; take the inbox again"
    ))
}

/// What the sender of a reply is told when it expired unread in its recipient's inbox.
pub(super) fn reply_expired_unread(to: &str, ask_id: &str) -> String {
    format!(
        "your reply to ask {ask_id} was never read: {to}'s session did not come back for its messages within \
         {} minutes{FOR_THE_MODEL}",
        super::inbox::ORPHAN_GRACE.as_secs() / 60
    )
}

/// Why a reply cannot answer its ask.
pub(super) fn not_pending(ask_id: &str, why: NotPending) -> RelayError {
    let message = match why {
        NotPending::Unknown => format!(
            "no ask with id {ask_id:?} is pending: copy the ask_id from the <channel> tag of the question"
        ),
        NotPending::AddressedTo { target } => format!(
            "ask {ask_id} was addressed to {target}, not to this session; only the session that was asked \
             can reply"
        ),
        NotPending::Answered => format!("ask {ask_id} was already answered; nothing was sent"),
        NotPending::TimedOut {
            at,
            after_secs,
            caller,
        } => {
            let at = at.format(&Rfc3339).unwrap_or_default();
            format!(
                "ask {ask_id} timed out at {at} after {after_secs} s and {caller} was told; the reply was \
                 not delivered: tell the user, or send {caller} a new relay_ask if it still matters"
            )
        }
        NotPending::CallerGone { caller } => format!(
            "{caller}, the session that asked {ask_id}, has disconnected; the reply cannot be delivered"
        ),
        NotPending::TargetGone => {
            format!(
                "ask {ask_id} is no longer pending: this session reconnected after it was asked"
            )
        }
    };
    RelayError::new(ErrorCode::UnknownAsk, message)
}

/// The failure an asker is told when its target disconnected before replying.
pub(super) fn target_gone(target: &str, ask_id: &str) -> String {
    format!("{target} disconnected before it replied to ask {ask_id}{FOR_THE_MODEL}")
}

/// The failure an asker is told when no reply came in time.
pub(super) fn timed_out(target: &str, ask_id: &str, timeout_secs: u64) -> String {
    format!("{target} did not reply to ask {ask_id} within {timeout_secs} s{FOR_THE_MODEL}")
}

pub(super) fn not_a_waiter() -> RelayError {
    RelayError::bad_args(
        "only a connection that said neither hello nor wait before can wait for a session's messages",
    )
}

pub(super) fn after_deadline() -> RelayError {
    RelayError::hub_unreachable(
        "the request reached the hub after its deadline, when its sender had stopped waiting; nothing was done",
    )
}

pub(super) fn line_not_json(error: &serde_json::Error) -> RelayError {
    RelayError::bad_msg(format!(
        "the line is not JSON ({error}); see docs/protocol.md"
    ))
}

pub(super) fn not_a_request(error: &serde_json::Error) -> RelayError {
    RelayError::bad_msg(format!(
        "the line is not a valid request ({error}); see docs/protocol.md"
    ))
}

pub(super) fn line_too_long() -> RelayError {
    RelayError::bad_msg(format!(
        "a line is longer than {MAX_LINE_BYTES} bytes (1 MiB); the hub closes this connection"
    ))
}

pub(super) fn line_stalled(stall: std::time::Duration) -> RelayError {
    RelayError::bad_msg(format!(
        "a line stayed unfinished for {} s; the hub closes this connection",
        stall.as_secs()
    ))
}

pub(super) fn lines_over_budget() -> RelayError {
    RelayError::bad_msg(
        "the hub holds too many unfinished lines from its connections; it closes this one, try again",
    )
}

pub(super) fn too_many_unregistered() -> RelayError {
    RelayError::hub_unreachable(
        "too many connections to the hub have not said hello, and this was the oldest of them; it was closed to make room, say hello first when connecting again",
    )
}

pub(super) fn line_not_utf8() -> RelayError {
    RelayError::bad_msg("the line is not UTF-8; see docs/protocol.md")
}

/// The federation's texts: sessions of other hosts.
pub(super) fn not_federated(to: &str) -> RelayError {
    RelayError::new(
        ErrorCode::PeerNotFound,
        format!(
            "{to:?} names a session of another host, but this hub is in no federation (RELAY_NATS_URL \
             is not set); relay_peers lists the sessions it knows"
        ),
    )
}

pub(super) fn no_such_host(host: &str, known: &[String]) -> RelayError {
    let known = if known.is_empty() {
        "no other host is in the federation now".to_owned()
    } else {
        format!("the hosts now are {}", known.join(", "))
    };
    RelayError::new(
        ErrorCode::PeerNotFound,
        format!(
            "no host named {host:?} is in the federation ({known}); relay_peers lists every session"
        ),
    )
}

/// A bare name that sessions of several hosts have.
pub(super) fn ambiguous(name: &str, candidates: &[String]) -> RelayError {
    RelayError::new(
        ErrorCode::AmbiguousPeer,
        format!(
            "sessions of several hosts are named {name:?}: {}; say which with name@host",
            candidates.join(", ")
        ),
    )
}

/// An ask pending on a session of `host`, whose hub is gone (`why`).
pub(super) fn host_gone(target: &str, host: &str, why: &str, ask_id: &str) -> String {
    format!(
        "the hub of host {host} {why}, so {target} will not reply to ask {ask_id}: it may have gone \
         offline; relay_peers shows whether it is back{FOR_THE_MODEL}"
    )
}

/// An ask to a session of another host whose hub no longer listens.
pub(super) fn host_not_listening(to: &str) -> RelayError {
    RelayError::new(
        ErrorCode::PeerGone,
        format!("the hub of {to} is gone, so nothing was sent; relay_peers shows who is there now"),
    )
}

/// A message too large for the federation's server to carry.
pub(super) fn too_large_for_federation(bytes: usize, max: usize) -> RelayError {
    RelayError::bad_args(format!(
        "this message takes {bytes} bytes on the way to another host, more than the federation's \
         server carries ({max} bytes); send a shorter one"
    ))
}

/// Asks from another hub that claims this hub's own host name.
pub(super) fn own_host_afar(host: &str) -> RelayError {
    RelayError::bad_args(format!(
        "asks from host {host:?} are refused: that is this hub's own host name, which another hub \
         cannot use"
    ))
}

/// The sessions of one other host have too many asks pending here.
pub(super) fn host_too_many_asks(host: &str, max: usize) -> RelayError {
    RelayError::new(
        ErrorCode::TooManyAsks,
        format!(
            "the sessions of host {host} have {max} asks pending here, the most one host may; \
             wait for some to be answered or to time out"
        ),
    )
}

/// Another host's hub cannot be reached (`why`): nothing was sent.
pub(super) fn host_unreachable(host: &str, why: &str) -> RelayError {
    RelayError::new(
        ErrorCode::HostUnreachable,
        format!(
            "host {host} cannot be reached ({why}), so nothing was sent; try again when it is back"
        ),
    )
}
