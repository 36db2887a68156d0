//! One handler per wire message: read the request, check it, apply it to the [`Hub`], answer.

use serde::Serialize;
use serde_json::Value;

use crate::{
    ask::ConnId,
    errors::{ErrorCode, RelayError},
    hub::{handle::Hub, outbox::Outbox, texts},
    protocol::{
        AskRequest, BroadcastRequest, FromHub, Hello, Op, PROTOCOL_VERSION, RenameRequest,
        ReplyRequest, Request, ShuttingDown, validate_name, validate_text, validate_timeout,
    },
};

/// The longest `cwd`, `git_branch`, `pushes_reason` or `session_id` a hello may carry, so that a peer list
/// always fits in a line.
const MAX_HELLO_FIELD_BYTES: usize = 4096;

/// What the hub knows about the client at the other end of one connection.
pub struct Session {
    pub conn: ConnId,
    /// From the socket's peer credentials, not from anything the client said.
    pub pid: u32,
    pub outbox: Outbox,
    registered: bool,
}

impl Session {
    pub fn new(conn: ConnId, pid: u32, outbox: Outbox) -> Self {
        Session {
            conn,
            pid,
            outbox,
            registered: false,
        }
    }
}

/// Handles one line from the client and returns the response to send back.
pub fn handle_line(hub: &Hub, session: &mut Session, line: &str) -> FromHub {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return error(None, texts::line_not_json(&e)),
    };
    let id = value.get("id").and_then(Value::as_u64);
    let request: Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(e) => return error(id, texts::not_a_request(&e)),
    };
    let id = request.id;
    let result = match request.op {
        Op::Hello(hello) => handle_hello(hub, session, hello),
        Op::Status => answer(Ok(hub.status())),
        Op::Shutdown => {
            hub.request_shutdown();
            answer(Ok(ShuttingDown {}))
        }
        // A hook, which never registers, names its session; a peer takes only its own inbox.
        Op::InboxTake(take) if !session.registered && take.session_id.is_some() => {
            answer(hub.take_inbox(session.conn, take.session_id.as_deref()))
        }
        // `relay peers` lists everyone without joining.
        Op::Peers if !session.registered => answer(Ok(hub.all_peers())),
        _ if !session.registered => Err(texts::not_registered()),
        Op::InboxTake(_) => answer(hub.take_inbox(session.conn, None)),
        Op::Peers => answer(hub.peers(session.conn)),
        Op::Ask(ask) => handle_ask(hub, session.conn, ask),
        Op::Reply(reply) => handle_reply(hub, session.conn, reply),
        Op::Broadcast(broadcast) => handle_broadcast(hub, session.conn, broadcast),
        Op::Rename(rename) => handle_rename(hub, session.conn, rename),
    };
    hub.touch(session.conn);
    match result {
        Ok(result) => FromHub::Ok { id, result },
        Err(e) => error(Some(id), e),
    }
}

fn error(id: Option<u64>, e: RelayError) -> FromHub {
    if e.code == ErrorCode::BadMsg {
        tracing::warn!(detail = %e.message, "bad_msg");
    }
    FromHub::Err {
        id,
        code: e.code,
        message: e.message,
    }
}

fn answer<T: Serialize>(result: Result<T, RelayError>) -> Result<Value, RelayError> {
    result.map(|value| serde_json::to_value(value).expect("results always serialize"))
}

fn handle_hello(hub: &Hub, session: &mut Session, hello: Hello) -> Result<Value, RelayError> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err(texts::protocol_mismatch(&hello.version, hello.protocol));
    }
    if session.registered {
        return Err(texts::already_registered());
    }
    validate_name(&hello.name)?;
    for (field, value) in [
        ("cwd", hello.cwd.as_str()),
        ("git_branch", hello.git_branch.as_str()),
        ("pushes_reason", hello.pushes_reason.as_str()),
        (
            "session_id",
            hello.session_id.as_deref().unwrap_or_default(),
        ),
    ] {
        if value.len() > MAX_HELLO_FIELD_BYTES {
            return Err(texts::hello_field_too_long(
                field,
                value.len(),
                MAX_HELLO_FIELD_BYTES,
            ));
        }
    }
    let welcome = hub.register(session.conn, hello, session.pid, session.outbox.clone())?;
    session.registered = true;
    answer(Ok(welcome))
}

fn handle_ask(hub: &Hub, conn: ConnId, ask: AskRequest) -> Result<Value, RelayError> {
    validate_text("question", &ask.question)?;
    validate_timeout(ask.timeout_secs)?;
    answer(hub.ask(conn, ask))
}

fn handle_reply(hub: &Hub, conn: ConnId, reply: ReplyRequest) -> Result<Value, RelayError> {
    validate_text("reply", &reply.text)?;
    answer(hub.reply(conn, reply))
}

fn handle_broadcast(
    hub: &Hub,
    conn: ConnId,
    broadcast: BroadcastRequest,
) -> Result<Value, RelayError> {
    validate_text("question", &broadcast.question)?;
    validate_timeout(broadcast.timeout_secs)?;
    answer(hub.broadcast(conn, broadcast))
}

fn handle_rename(hub: &Hub, conn: ConnId, rename: RenameRequest) -> Result<Value, RelayError> {
    validate_name(&rename.new_name)?;
    answer(hub.rename(conn, &rename.new_name))
}
