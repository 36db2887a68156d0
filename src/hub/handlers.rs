//! One handler per wire message: read the request, check it, apply it to the [`Hub`], answer.
//!
//! Most requests are answered at once. One that reaches another host (an ask, a broadcast's
//! share, a reply) is answered when that host's hub has: its handler gives back the future that
//! sends it and answers.

use std::{future::Future, pin::Pin};

use serde::Serialize;
use serde_json::Value;

use crate::{
    ask::ConnId,
    errors::RelayError,
    framing::encode_line,
    hub::{
        afar::{AskAfar, BroadcastAfar, ReplyAfar},
        asking::Routed,
        handle::Hub,
        outbox::Outbox,
        texts,
    },
    protocol::{
        AskRequest, Asked, BroadcastRequest, Broadcasted, FromHub, Hello, MAX_CWD_BYTES,
        MAX_LABEL_BYTES, OkLine, Op, PROTOCOL_VERSION, RenameRequest, Renamed, Replied,
        ReplyRequest, Request, ShuttingDown, Welcome, unix_ms, validate_address, validate_id,
        validate_len, validate_name, validate_text, validate_timeout,
    },
};

/// What handling one line gave.
pub(super) enum Handled {
    /// The response line, to send now.
    Now(Vec<u8>),
    /// Sends the response when other hosts have answered; bounded by the federation's request
    /// timeout.
    Later(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// What the hub knows about the client at the other end of one connection.
pub(super) struct Client {
    pub conn: ConnId,
    /// From the socket's peer credentials, not from anything the client said.
    pub pid: u32,
    pub outbox: Outbox,
    pub registered: bool,
    /// It is a session's waiter (`wait`), which says no hello.
    pub waiting: bool,
    /// Lines that were not requests. Only the first is logged (by its kind and size, never its
    /// content: a peer's bytes do not reach the logs), the count when the connection closes,
    /// so a flood of bad lines cannot flood the log.
    bad_lines: u64,
}

/// What was wrong with a line that is not a request.
#[derive(Debug, Clone, Copy)]
pub(super) enum BadLine {
    NotJson,
    NotARequest,
    TooLong,
    NotUtf8,
    Stalled,
    OverBudget,
}

impl BadLine {
    fn as_str(self) -> &'static str {
        match self {
            BadLine::NotJson => "not_json",
            BadLine::NotARequest => "not_a_request",
            BadLine::TooLong => "too_long",
            BadLine::NotUtf8 => "not_utf8",
            BadLine::Stalled => "unfinished_line_stalled",
            BadLine::OverBudget => "unfinished_lines_over_budget",
        }
    }
}

impl Client {
    pub(super) fn new(conn: ConnId, pid: u32, outbox: Outbox) -> Self {
        Client {
            conn,
            pid,
            outbox,
            registered: false,
            waiting: false,
            bad_lines: 0,
        }
    }

    /// Whether the client said who it is: a peer's hello, or a waiter's wait.
    pub(super) fn introduced(&self) -> bool {
        self.registered || self.waiting
    }

    /// Counts a line that was not a request, and logs the first.
    pub(super) fn bad_line(&mut self, kind: BadLine, bytes: usize) {
        self.bad_lines += 1;
        if self.bad_lines == 1 {
            tracing::warn!(
                conn = self.conn.0,
                peer_pid = self.pid,
                kind = kind.as_str(),
                bytes,
                "bad_msg"
            );
        }
    }

    /// Logs how many bad lines the connection sent, when it sent more than the one logged.
    pub(super) fn closed(&self) {
        if self.bad_lines > 1 {
            tracing::warn!(
                conn = self.conn.0,
                peer_pid = self.pid,
                count = self.bad_lines,
                "bad_msg_lines"
            );
        }
    }
}

/// Handles one line from the client: the response to send back, or what will send it.
pub(super) fn handle_line(hub: &Hub, client: &mut Client, line: &str) -> Handled {
    let request: Request = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(e) => return Handled::Now(not_a_request(client, line, &e)),
    };
    let id = request.id;
    // A client that gave up on this request has told its user it failed: it must not happen.
    if let Some(deadline_ms) = request.deadline_ms
        && unix_ms() > deadline_ms
    {
        tracing::warn!(
            late_ms = unix_ms() - deadline_ms,
            "request_after_its_deadline"
        );
        return Handled::Now(refused(Some(id), texts::after_deadline()));
    }
    let answer = match request.op {
        Op::Hello(hello) => response(id, handle_hello(hub, client, hello)),
        Op::Status => response(id, Ok(hub.status())),
        Op::Shutdown => {
            hub.request_shutdown();
            response(id, Ok(ShuttingDown {}))
        }
        // A hook, which never registers, names its session; a peer takes only its own inbox.
        Op::InboxTake(take) if !client.registered && take.session_id.is_some() => {
            let session_id = take.session_id.as_deref().unwrap_or_default();
            let taken = validate_id("session_id", session_id)
                .and_then(|()| hub.take_inbox(client.conn, Some(session_id)));
            response(id, taken)
        }
        Op::InboxAck(ack) if !client.registered && ack.session_id.is_some() => {
            let session_id = ack.session_id.as_deref().unwrap_or_default();
            let acked = validate_id("session_id", session_id)
                .and_then(|()| hub.ack_inbox(client.conn, Some(session_id), ack.take_id));
            response(id, acked)
        }
        // A session's waiter waits instead of saying hello.
        Op::Wait(wait) if !client.registered && !client.waiting => {
            let armed = validate_id("session_id", &wait.session_id).map(|()| {
                client.waiting = true;
                hub.arm_waiter(client.conn, &wait.session_id, client.outbox.clone())
            });
            response(id, armed)
        }
        // `relay peers` lists everyone without joining.
        Op::Peers if !client.registered => response(id, Ok(hub.all_peers())),
        _ if !client.registered => refused(Some(id), texts::not_registered()),
        Op::InboxTake(_) => response(id, hub.take_inbox(client.conn, None)),
        Op::InboxAck(ack) => response(id, hub.ack_inbox(client.conn, None, ack.take_id)),
        Op::Peers => response(id, hub.peers(client.conn)),
        Op::Ask(ask) => match handle_ask(hub, client.conn, ask) {
            Ok(Routed::Here(asked)) => response(id, Ok(asked)),
            Ok(Routed::Afar(afar)) => {
                return later(hub, client, |hub, outbox| hub.send_ask(outbox, id, afar));
            }
            Err(e) => refused(Some(id), e),
        },
        Op::Reply(reply) => match handle_reply(hub, client.conn, reply) {
            Ok(Routed::Here(replied)) => response(id, Ok(replied)),
            Ok(Routed::Afar(afar)) => {
                return later(hub, client, |hub, outbox| hub.send_reply(outbox, id, afar));
            }
            Err(e) => refused(Some(id), e),
        },
        Op::Broadcast(broadcast) => match handle_broadcast(hub, client.conn, broadcast) {
            Ok(Routed::Here(sent)) => response(id, Ok(sent)),
            Ok(Routed::Afar(afar)) => {
                return later(hub, client, |hub, outbox| {
                    hub.send_broadcast(outbox, id, afar)
                });
            }
            Err(e) => refused(Some(id), e),
        },
        Op::Rename(rename) => response(id, handle_rename(hub, client.conn, rename)),
        Op::Wait(_) => refused(Some(id), texts::not_a_waiter()),
    };
    hub.touch(client.conn);
    Handled::Now(answer)
}

/// The answer to a line that is not a request: either not JSON at all, or JSON of another shape
/// (answered with its `id` when it has one). Read a second time only on this path: a request is
/// read once, straight into its type.
fn not_a_request(client: &mut Client, line: &str, error: &serde_json::Error) -> Vec<u8> {
    match serde_json::from_str::<Value>(line) {
        Err(e) => {
            client.bad_line(BadLine::NotJson, line.len());
            refused(None, texts::line_not_json(&e))
        }
        Ok(value) => {
            client.bad_line(BadLine::NotARequest, line.len());
            let id = value.get("id").and_then(Value::as_u64);
            refused(id, texts::not_a_request(error))
        }
    }
}

/// The handling of a request that another host's hub answers: `send` makes the future that
/// sends it and answers the client.
fn later<F: Future<Output = ()> + Send + 'static>(
    hub: &Hub,
    client: &Client,
    send: impl FnOnce(Hub, Outbox) -> F,
) -> Handled {
    hub.touch(client.conn);
    Handled::Later(Box::pin(send(hub.clone(), client.outbox.clone())))
}

/// The line that answers request `id`. A result is written straight from its type, not built
/// as a JSON value first: a peer list of a thousand sessions was a tree of thousands of
/// allocations, made and thrown away for each `peers`.
pub(super) fn response<T: Serialize>(id: u64, result: Result<T, RelayError>) -> Vec<u8> {
    match result {
        Ok(result) => encode_line(&OkLine {
            id,
            result: &result,
        }),
        Err(e) => refused(Some(id), e),
    }
}

/// The line that refuses request `id` (`None`: a line that could not be read as a request).
fn refused(id: Option<u64>, e: RelayError) -> Vec<u8> {
    encode_line(&FromHub::Err {
        id,
        code: e.code,
        message: e.message,
    })
}

fn handle_hello(hub: &Hub, client: &mut Client, hello: Hello) -> Result<Welcome, RelayError> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err(texts::protocol_mismatch(&hello.version, hello.protocol));
    }
    if client.registered {
        return Err(texts::already_registered());
    }
    validate_name(&hello.name)?;
    // Bounded, so that a peer list always fits a line and no peer can make the hub hold much.
    validate_len("hello's cwd", &hello.cwd, MAX_CWD_BYTES)?;
    validate_len("hello's git_branch", &hello.git_branch, MAX_LABEL_BYTES)?;
    validate_len(
        "hello's pushes_reason",
        &hello.pushes_reason,
        MAX_LABEL_BYTES,
    )?;
    validate_len("hello's version", &hello.version, MAX_LABEL_BYTES)?;
    if let Some(session_id) = &hello.session_id {
        validate_id("session_id", session_id)?;
    }
    let welcome = hub.register(client.conn, hello, client.pid, client.outbox.clone())?;
    client.registered = true;
    Ok(welcome)
}

fn handle_ask(
    hub: &Hub,
    conn: ConnId,
    ask: AskRequest,
) -> Result<Routed<Asked, AskAfar>, RelayError> {
    validate_address(&ask.to)?;
    validate_text("question", &ask.question)?;
    validate_timeout(ask.timeout_secs)?;
    if let Some(thread_id) = &ask.thread_id {
        validate_id("thread_id", thread_id)?;
    }
    hub.ask(conn, ask)
}

fn handle_reply(
    hub: &Hub,
    conn: ConnId,
    reply: ReplyRequest,
) -> Result<Routed<Replied, ReplyAfar>, RelayError> {
    validate_id("ask_id", &reply.ask_id)?;
    validate_text("reply", &reply.text)?;
    hub.reply(conn, reply)
}

fn handle_broadcast(
    hub: &Hub,
    conn: ConnId,
    broadcast: BroadcastRequest,
) -> Result<Routed<Broadcasted, BroadcastAfar>, RelayError> {
    validate_text("question", &broadcast.question)?;
    validate_timeout(broadcast.timeout_secs)?;
    hub.broadcast(conn, broadcast)
}

fn handle_rename(hub: &Hub, conn: ConnId, rename: RenameRequest) -> Result<Renamed, RelayError> {
    validate_name(&rename.new_name)?;
    hub.rename(conn, &rename.new_name)
}
