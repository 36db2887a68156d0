//! The wire protocol between a client (a channel) and the hub.
//!
//! Newline-delimited JSON over the hub's Unix socket. A client sends [`Request`]s, each with its
//! own `id`; the hub answers every request with exactly one [`FromHub::Ok`] or [`FromHub::Err`]
//! carrying that `id`, and at any time pushes events ([`FromHub::Ask`], [`FromHub::Reply`],
//! [`FromHub::AskFailed`], [`FromHub::Settled`]) that need no answer. The first request on a
//! connection must be [`Op::Hello`], except `status`, `shutdown` and a hook's `inbox_take`. `docs/protocol.md` documents every message with examples.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::{ErrorCode, RelayError};

/// Bumped whenever a message changes shape; hub and client must agree exactly.
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// The version of this build, sent in hello so a mismatch can name both sides.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest line the hub accepts, and the longest request a client sends. A longer line
/// closes the connection with `bad_msg`. (Hub lines may be slightly longer: an event carries a
/// text of up to this size plus ids; clients allow for that.)
pub(crate) const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The longest line a client reads. Events can be a little longer than the longest request the
/// hub accepts: they carry the same text plus the ids and names the hub adds, all of them bounded
/// ([`MAX_NAME_LEN`], [`MAX_ID_LEN`]), so every event fits (a test checks the worst case).
pub(crate) const MAX_EVENT_LINE_BYTES: usize = MAX_LINE_BYTES + 64 * 1024;

/// The longest question or reply text. Longer texts are refused with `bad_args`, nothing sent.
pub(crate) const MAX_TEXT_BYTES: usize = 512 * 1024;

/// Bounds of an ask's `timeout_secs`.
pub(crate) const MIN_TIMEOUT_SECS: u64 = 1;
pub(crate) const MAX_TIMEOUT_SECS: u64 = 3600;

/// The longest session name.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// The longest id a client may send: `ask_id`, `thread_id`, a Claude Code `session_id`.
pub(crate) const MAX_ID_LEN: usize = 128;

/// The longest `cwd` in a hello.
pub(crate) const MAX_CWD_BYTES: usize = 4096;

/// The longest short text in a hello: `git_branch`, `pushes_reason`, `version`.
pub(crate) const MAX_LABEL_BYTES: usize = 512;

/// The wall clock as a request's `deadline_ms` counts it: milliseconds since the Unix epoch (0
/// for a clock set before it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// A request from a client, answered by exactly one response with the same `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Request {
    pub id: u64,
    /// When the client stops waiting for the answer (Unix milliseconds). A request that reaches
    /// the hub later is refused without being applied, so an operation the client reported as
    /// failed never takes effect afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    #[serde(flatten)]
    pub op: Op,
}

/// What a request asks the hub to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    /// Must come first: checks the protocol version and registers the client as a peer.
    Hello(Hello),
    /// Every other registered peer.
    Peers,
    /// Ask one peer a question. Answered with [`Asked`].
    Ask(AskRequest),
    /// Answer an ask addressed to this peer.
    Reply(ReplyRequest),
    /// Ask every other peer the same question. Answered with [`Broadcasted`].
    Broadcast(BroadcastRequest),
    /// Change this peer's name. Answered with [`Renamed`].
    Rename(RenameRequest),
    /// The hub's state, answered with [`HubStatus`]. Allowed before hello. Every future protocol
    /// version must keep answering it, so that a newer client can inspect an older hub.
    Status,
    /// Take a page of the undelivered messages of a peer's inbox, answered with
    /// [`InboxContents`]. A registered peer takes its own; a hook, before any hello, names the
    /// peer by the Claude Code session id it registered with. The page stays in the inbox until
    /// [`Op::InboxAck`].
    InboxTake(InboxTake),
    /// Acknowledge a page taken with [`Op::InboxTake`]: its messages were shown and leave the
    /// inbox. Answered with [`Acked`].
    InboxAck(InboxAck),
    /// Wait for messages for a Claude Code session, as its waiter (`relay-channel wait`):
    /// answered with [`Waiting`], then [`FromHub::Wake`] when messages wait in the session's
    /// inbox, or [`FromHub::StandDown`] when this waiter is not needed. Allowed instead of hello.
    Wait(WaitRequest),
    /// Shut the hub down gracefully, answered with [`ShuttingDown`]. Allowed before hello (only
    /// this user's processes can connect). Kept in every protocol version, like `status`.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub protocol: u32,
    pub version: String,
    /// The name the client would like; the hub appends `-2`, `-3`, ... when it is taken.
    pub name: String,
    #[serde(default)]
    pub kind: PeerKind,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub git_branch: String,
    /// Whether Claude Code shows this peer's channel pushes, as far as the peer can tell.
    #[serde(default)]
    pub pushes: Pushes,
    /// Why the peer thinks so, in a few words for people (`relay peers`, `relay doctor`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pushes_reason: String,
    /// The Claude Code session id (`CLAUDE_CODE_SESSION_ID`), by which the session's hooks find
    /// its inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Whether a session's Claude Code shows the channel pushes sent to it. Claude Code drops them
/// silently unless the session was started with the channels flag naming this plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pushes {
    /// Started with the flag: pushes are shown.
    On,
    /// Started without it: pushes are dropped.
    Off,
    /// Could not tell (not started by `claude`, or not a channel).
    #[default]
    Unknown,
}

impl Pushes {
    pub fn as_str(self) -> &'static str {
        match self {
            Pushes::On => "on",
            Pushes::Off => "off",
            Pushes::Unknown => "unknown",
        }
    }
}

/// What sort of client a peer is, so sessions know whether a person or a script is asking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PeerKind {
    /// A Claude Code session's relay-channel.
    #[default]
    Channel,
    /// The `relay` command line.
    Cli,
}

impl PeerKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PeerKind::Channel => "channel",
            PeerKind::Cli => "cli",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AskRequest {
    pub to: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReplyRequest {
    pub ask_id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BroadcastRequest {
    pub question: String,
    pub exclude_self: bool,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InboxTake {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InboxAck {
    pub take_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WaitRequest {
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RenameRequest {
    pub new_name: String,
}

/// Everything the hub writes: responses and events, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum FromHub {
    /// Request `id` succeeded; `result` is the op's result type.
    Ok { id: u64, result: Value },
    /// Request `id` failed (`id` is null when the line could not be read as a request).
    Err {
        id: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    /// Event: a question for this peer.
    Ask(Delivery),
    /// Event: the answer to an ask this peer made.
    Reply(Delivery),
    /// Event: an ask this peer made will never be answered.
    AskFailed(AskFailure),
    /// Event: the answer (or failure) of an ask this peer made went to its inbox, not to this
    /// connection; the ask is no longer pending.
    Settled { ask_id: String },
    /// Event: a reply this peer sent was never read: its recipient's session did not come back
    /// for its inbox in time.
    Undelivered(Undelivered),
    /// Event, to a waiter: messages wait in its session's inbox; take them.
    Wake {},
    /// Event, to a waiter: it is not needed (its session's pushes are on, a newer waiter took
    /// its place, or its session's channel left); it should exit without delivering anything.
    StandDown { reason: String },
}

/// [`FromHub::Ok`] as the hub writes it: the result serialized from its own type, without a
/// JSON value built first (`hub::handlers::response`). Reads back as `FromHub::Ok`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "ok")]
pub(crate) struct OkLine<'a, T: Serialize> {
    pub id: u64,
    pub result: &'a T,
}

/// A reply that expired unread in its recipient's inbox, for its sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Undelivered {
    pub message_id: String,
    pub ask_id: String,
    /// The session that never read it.
    pub to: String,
    pub message: String,
}

/// A question or a reply travelling from one peer to another. `from` is the sender's name in the
/// hub's registry, never anything the sender wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Delivery {
    /// Identifies this one message, live or queued.
    #[serde(default)]
    pub message_id: String,
    pub ask_id: String,
    pub from: String,
    pub thread_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_id: Option<String>,
    pub text: String,
}

/// Why an ask failed, for its caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AskFailure {
    /// Identifies this one message, live or queued.
    #[serde(default)]
    pub message_id: String,
    pub ask_id: String,
    /// The name of the peer that was asked.
    pub to: String,
    pub thread_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

/// Result of [`Op::Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Welcome {
    /// The name the hub registered, which may carry a `-N` suffix.
    pub name: String,
    pub hub_pid: u32,
    pub hub_version: String,
    pub protocol: u32,
    /// The asks of this session whose reply or failure waits in the inbox handed back to it. A
    /// hub that crashed may have kept them without telling the session's channel (`settled`),
    /// which then took them for ended with that hub.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<String>,
}

/// One entry of [`PeerList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerInfo {
    pub name: String,
    /// The host of its hub, when the hub is federated (a remote session is `name@host`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub kind: PeerKind,
    pub cwd: String,
    pub git_branch: String,
    /// Whether the peer's Claude Code shows channel pushes (`on`, `off`, `unknown`), as its
    /// hello said.
    pub pushes: Pushes,
    /// Why the peer's channel decided so: the flag it found on `claude`'s command line, its
    /// absence, `RELAY_CHANNELS`, or an MCP revision without a path for pushes.
    #[serde(default)]
    pub pushes_reason: String,
    /// How a message to it arrives now: `live`, `woken` or `queued`.
    pub delivery: DeliveryMode,
    /// Whether a waiter is armed for its session.
    #[serde(default)]
    pub waiter: bool,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub connected_at: String,
    /// RFC 3339, UTC: the last time the hub heard from this peer.
    pub last_seen: String,
}

/// Result of [`Op::Peers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerList {
    pub peers: Vec<PeerInfo>,
}

/// Result of [`Op::Ask`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Asked {
    pub ask_id: String,
    pub thread_id: String,
    pub delivery: DeliveryMode,
}

/// How a message reached, or will reach, its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryMode {
    /// Pushed into the recipient's transcript now.
    Live,
    /// Kept in the recipient's inbox, and its waiter is waking it to show it now.
    Woken,
    /// Kept in the recipient's inbox until its next prompt (or `relay_inbox`): its pushes are off.
    Queued,
}

/// Result of [`Op::Broadcast`]: one ask per recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Broadcasted {
    pub broadcast_id: String,
    pub asks: Vec<BroadcastAsk>,
    /// Peers not asked because their pushes are off and their inbox is full.
    #[serde(default)]
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BroadcastAsk {
    pub ask_id: String,
    pub to: String,
    pub delivery: DeliveryMode,
}

/// Result of [`Op::Rename`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Renamed {
    pub name: String,
}

/// Result of [`Op::InboxTake`]: the messages in the order they arrived, and how many could not
/// be kept because the inbox was full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InboxContents {
    pub messages: Vec<FromHub>,
    pub dropped: u64,
    /// More messages wait for the next take (one take stays within the line limit), or are
    /// being handed to another reader.
    #[serde(default)]
    pub more: bool,
    /// What to acknowledge this page with; absent when it is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_id: Option<u64>,
}

/// Result of [`Op::Wait`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Waiting {}

/// Result of [`Op::InboxAck`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Acked {}

/// Result of [`Op::Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HubStatus {
    pub hub_pid: u32,
    pub hub_version: String,
    pub protocol: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub peers: usize,
    pub pending_asks: usize,
    /// Waiters armed, one per session that is woken by messages.
    #[serde(default)]
    pub waiters: usize,
    /// The federation the hub is in, or why it is not; absent when none is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationStatus>,
}

/// A hub's membership of a federation of hubs on several hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationStatus {
    /// This hub's host name in the federation.
    pub host: String,
    /// The NATS server, without credentials.
    pub url: String,
    /// The subjects' namespace.
    pub prefix: String,
    pub connected: bool,
    /// The other hosts heard from, sorted.
    pub hosts: Vec<String>,
    /// Why the hub does not federate although it is configured to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// While not connected: what the connection to the server last failed with (the server
    /// refusing the credentials, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Result of [`Op::Shutdown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShuttingDown {}

/// Result of [`Op::Reply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Replied {}

/// Whether `text` is 1 to `max` characters of `[A-Za-z0-9._-]`.
fn is_token(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `text` as it may be quoted back: its first 64 characters, control characters escaped.
pub(crate) fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{cut:?}{more}")
}

/// Checks the session an ask is for: a session name, or `name@host` for a session of another
/// host of the federation (host names are 1 to 64 of `[a-z0-9-]`, as hubs make them).
pub(crate) fn validate_address(to: &str) -> Result<(), RelayError> {
    let is_host = |host: &str| {
        !host.is_empty()
            && host.len() <= MAX_NAME_LEN
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match to.split_once('@') {
        Some((name, host)) if is_token(name, MAX_NAME_LEN) && is_host(host) => Ok(()),
        Some(_) => Err(RelayError::bad_args(format!(
            "{} is not a valid session address: use name@host, the name 1 to {MAX_NAME_LEN} \
             characters of letters, digits, '.', '_' or '-', the host as relay_peers shows it \
             (lowercase letters, digits and '-')",
            quoted(to)
        ))),
        None => validate_name(to),
    }
}

/// Checks a session name: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub(crate) fn validate_name(name: &str) -> Result<(), RelayError> {
    if !is_token(name, MAX_NAME_LEN) {
        return Err(RelayError::bad_args(format!(
            "{} is not a valid session name: use 1 to {MAX_NAME_LEN} characters of letters, \
             digits, '.', '_' or '-'",
            quoted(name)
        )));
    }
    Ok(())
}

/// Checks an id a client sends (`ask_id`, `thread_id`, `session_id`): 1 to 128 characters of
/// `[A-Za-z0-9._-]`, as every id the relay and Claude Code make is.
pub(crate) fn validate_id(field: &str, id: &str) -> Result<(), RelayError> {
    if !is_token(id, MAX_ID_LEN) {
        return Err(RelayError::bad_args(format!(
            "{field} {} is not an id: ids are 1 to {MAX_ID_LEN} characters of letters, digits, \
             '.', '_' or '-'; copy it from the message it came with",
            quoted(id)
        )));
    }
    Ok(())
}

/// Checks a free-text field of at most `max` bytes.
pub(crate) fn validate_len(field: &str, text: &str, max: usize) -> Result<(), RelayError> {
    if text.len() > max {
        return Err(RelayError::bad_args(format!(
            "{field} is {} bytes, over the limit of {max}",
            text.len()
        )));
    }
    Ok(())
}

/// Checks a question or reply text against [`MAX_TEXT_BYTES`].
pub(crate) fn validate_text(what: &str, text: &str) -> Result<(), RelayError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(RelayError::bad_args(format!(
            "the {what} is {} bytes, over the limit of {MAX_TEXT_BYTES} bytes (512 KiB); nothing was \
             sent: shorten it or send a summary",
            text.len()
        )));
    }
    Ok(())
}

/// Checks an ask's `timeout_secs` against its bounds.
pub(crate) fn validate_timeout(secs: u64) -> Result<(), RelayError> {
    if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(RelayError::bad_args(format!(
            "timeout_secs must be between {MIN_TIMEOUT_SECS} and {MAX_TIMEOUT_SECS}, not {secs}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The hub writes successes as `OkLine`; the clients read them as `FromHub::Ok`.
    #[test]
    fn an_ok_line_reads_back_as_an_ok_response() {
        let asked = Asked {
            ask_id: "ask-1".into(),
            thread_id: "t".into(),
            delivery: DeliveryMode::Live,
        };
        let line = serde_json::to_string(&OkLine {
            id: 3,
            result: &asked,
        })
        .unwrap();
        assert!(line.starts_with(r#"{"type":"ok","id":3,"#), "{line}");
        let read: FromHub = serde_json::from_str(&line).unwrap();
        assert_eq!(
            read,
            FromHub::Ok {
                id: 3,
                result: serde_json::to_value(&asked).unwrap()
            }
        );
    }

    #[test]
    fn requests_have_the_documented_shape() {
        let req = Request {
            id: 7,
            deadline_ms: None,
            op: Op::Ask(AskRequest {
                to: "beta".into(),
                question: "hi?".into(),
                thread_id: None,
                timeout_secs: 30,
            }),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"id": 7, "op": "ask", "to": "beta", "question": "hi?", "timeout_secs": 30})
        );
        let peers: Request = serde_json::from_value(json!({"id": 1, "op": "peers"})).unwrap();
        assert_eq!(peers.op, Op::Peers);
    }

    #[test]
    fn events_have_the_documented_shape() {
        let event = FromHub::Ask(Delivery {
            message_id: "m1".into(),
            ask_id: "a1".into(),
            from: "alpha".into(),
            thread_id: "a1".into(),
            broadcast_id: None,
            text: "q".into(),
        });
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"type": "ask", "message_id": "m1", "ask_id": "a1", "from": "alpha", "thread_id": "a1", "text": "q"})
        );
    }

    #[test]
    fn the_longest_event_fits_the_line_a_client_reads() {
        // The text of the longest request line a client sends, escaped to fill it.
        let text = "\u{1}".repeat((MAX_LINE_BYTES - 400) / 6);
        let request = crate::framing::encode_line(&Request {
            id: u64::MAX,
            deadline_ms: Some(u64::MAX),
            op: Op::Reply(ReplyRequest {
                ask_id: "a".repeat(MAX_ID_LEN),
                text: text.clone(),
            }),
        });
        assert!(request.len() <= MAX_LINE_BYTES);
        let id = "i".repeat(MAX_ID_LEN);
        let event = crate::framing::encode_line(&FromHub::Reply(Delivery {
            message_id: id.clone(),
            ask_id: id.clone(),
            from: format!("{}@{}", "n".repeat(MAX_NAME_LEN), "h".repeat(MAX_NAME_LEN)),
            thread_id: id.clone(),
            broadcast_id: Some(id),
            text,
        }));
        assert!(event.len() <= MAX_EVENT_LINE_BYTES, "{}", event.len());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("backend-api.v2_x").is_ok());
        assert!(validate_name(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "slash/", "ü", &"a".repeat(65)] {
            assert_eq!(
                validate_name(bad).unwrap_err().code,
                ErrorCode::BadArgs,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn addresses_are_a_name_or_name_at_host() {
        assert!(validate_address("backend").is_ok());
        assert!(validate_address("backend@build-box").is_ok());
        for bad in ["@", "a@", "@b", "a@b@c", "a@b c", "a@Build", "a@b.c"] {
            assert_eq!(
                validate_address(bad).unwrap_err().code,
                ErrorCode::BadArgs,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_are_short_tokens() {
        assert!(validate_id("ask_id", "ask-mwr82gk5-12").is_ok());
        assert!(validate_id("session_id", "6f1c2d3e-0000-4000-8000-1234567890ab").is_ok());
        for bad in ["", "has space", "quote\"", &"a".repeat(129), "line\nbreak"] {
            let error = validate_id("thread_id", bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadArgs, "{bad:?}");
        }
        let long = validate_id("thread_id", &"x".repeat(10_000)).unwrap_err();
        assert!(
            long.message.len() < 300,
            "quoted back short: {}",
            long.message
        );
    }

    #[test]
    fn timeouts_are_bounded() {
        assert!(validate_timeout(1).is_ok());
        assert!(validate_timeout(3600).is_ok());
        assert!(validate_timeout(0).is_err());
        assert!(validate_timeout(3601).is_err());
    }
}
