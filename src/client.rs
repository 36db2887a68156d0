//! The hub client: connect (starting the hub when none runs), say hello, send requests and match
//! their responses, and receive events.
//!
//! The client also keeps the asks this peer made that are still waiting for an answer. When the
//! connection drops, each of them fails with `hub_unreachable` as an ordinary [`Event`], so the
//! asker always learns that no answer will come.

use std::{
    collections::HashMap,
    io::ErrorKind,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use interprocess::local_socket::{
    GenericFilePath,
    tokio::{Stream, prelude::*},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::value::RawValue;
use tokio::{
    io::AsyncWriteExt,
    net::UnixStream,
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    errors::{ErrorCode, FOR_THE_MODEL, RelayError},
    framing::{FrameReader, encode_line},
    paths::DataDir,
    protocol::{
        AskFailure, Asked, Broadcasted, Delivery, FromHub, Hello, MAX_EVENT_LINE_BYTES,
        MAX_LINE_BYTES, Op, Request, Undelivered, Welcome,
    },
};

/// How long to wait for a hub to come up after starting one.
pub(crate) const HUB_START_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for the answer to one request. The request carries its deadline, and the
/// hub refuses a request that reaches it later without applying it, so a request reported as
/// failed here never takes effect afterwards (a hub stopped with SIGSTOP, say, and resumed).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer than the deadline the client waits for an answer: an answer the hub wrote
/// just before the deadline is still on its way.
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Something the hub told this peer without being asked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A question for this peer.
    Ask(Delivery),
    /// The answer to an ask this peer made.
    Reply(Delivery),
    /// An ask this peer made will never be answered.
    AskFailed(AskFailure),
    /// A reply this peer sent expired unread.
    Undelivered(Undelivered),
}

/// What the hub tells a session's waiter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Signal {
    /// Messages wait for its session.
    Wake,
    /// It is not needed, and why.
    StandDown(String),
}

impl Event {
    /// The event a hub message carries; `None` for responses.
    pub(crate) fn from_hub(message: FromHub) -> Option<Event> {
        match message {
            FromHub::Ask(delivery) => Some(Event::Ask(delivery)),
            FromHub::Reply(delivery) => Some(Event::Reply(delivery)),
            FromHub::AskFailed(failure) => Some(Event::AskFailed(failure)),
            FromHub::Undelivered(undelivered) => Some(Event::Undelivered(undelivered)),
            FromHub::Ok { .. }
            | FromHub::Err { .. }
            | FromHub::Settled { .. }
            | FromHub::Wake {}
            | FromHub::StandDown { .. } => None,
        }
    }
}

/// An ask this peer made that has not been answered yet.
#[derive(Debug, Clone)]
struct Outstanding {
    to: String,
    thread_id: String,
    broadcast_id: Option<String>,
}

/// Which requests create asks to keep track of.
enum Tracks {
    Nothing,
    Ask { to: String },
    Broadcast,
}

struct Pending {
    /// The result as the hub wrote it, read once by the request into its own type.
    answer: oneshot::Sender<Result<Box<RawValue>, RelayError>>,
    tracks: Tracks,
}

#[derive(Default)]
struct Book {
    requests: HashMap<u64, Pending>,
    asks: HashMap<String, Outstanding>,
    /// Where a waiter's signals go; a channel or the command line gets none.
    signals: Option<mpsc::UnboundedSender<Signal>>,
}

/// A live connection to the hub. Dropping it closes the connection.
pub(crate) struct HubClient {
    outgoing: mpsc::Sender<Vec<u8>>,
    book: Arc<Mutex<Book>>,
    next_id: AtomicU64,
    io: tokio::task::JoinHandle<()>,
}

impl Drop for HubClient {
    fn drop(&mut self) {
        self.io.abort();
    }
}

impl HubClient {
    /// Connects to the hub of `data`, starting `hub_exe` when none runs, and says hello. Events
    /// go to `events`; that channel closes when the connection does.
    pub(crate) async fn connect(
        data: &DataDir,
        hub_exe: &Path,
        hello: Hello,
        events: mpsc::Sender<Event>,
    ) -> Result<(HubClient, Welcome), RelayError> {
        let stream = connect_or_start(data, hub_exe).await?;
        let client = HubClient::start(stream, events);
        let welcome = client.request(Op::Hello(hello)).await?;
        Ok((client, welcome))
    }

    /// Connects to the hub of `data` if one is running, without starting one or saying hello
    /// (enough for `status` and `shutdown`). `None` when no hub answers: no socket file, or
    /// nothing accepting on it (a stale socket; on Linux also a file that is no socket). Any other
    /// failure (a permission) is an error, so that it is not mistaken for "no hub".
    pub(crate) async fn connect_running(
        data: &DataDir,
        events: mpsc::Sender<Event>,
    ) -> Result<Option<HubClient>, RelayError> {
        let socket = data.socket();
        match connect(&socket).await {
            Ok(stream) => Ok(Some(HubClient::start(stream, events))),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                Ok(None)
            }
            Err(e) => Err(RelayError::hub_unreachable(format!(
                "cannot connect to {}: {e}",
                socket.display()
            ))),
        }
    }

    /// Connects to the hub of `data` if one is running, as [`HubClient::connect_running`], for a
    /// session's waiter: the hub's signals to it go to the receiver returned.
    pub(crate) async fn connect_running_as_waiter(
        data: &DataDir,
    ) -> Result<Option<(HubClient, mpsc::UnboundedReceiver<Signal>)>, RelayError> {
        let (events, _unused) = mpsc::channel(1);
        let Some(client) = HubClient::connect_running(data, events).await? else {
            return Ok(None);
        };
        let (signals, received) = mpsc::unbounded_channel();
        lock(&client.book).signals = Some(signals);
        Ok(Some((client, received)))
    }

    fn start(stream: Stream, events: mpsc::Sender<Event>) -> HubClient {
        let (outgoing, lines) = mpsc::channel(64);
        let book = Arc::new(Mutex::new(Book::default()));
        let io = tokio::spawn(run_io(stream, lines, book.clone(), events));
        HubClient {
            outgoing,
            book,
            next_id: AtomicU64::new(1),
            io,
        }
    }

    /// Sends `op` and waits for its answer, at most [`REQUEST_TIMEOUT`].
    pub(crate) async fn request<T: DeserializeOwned>(&self, op: Op) -> Result<T, RelayError> {
        let tracks = match &op {
            Op::Ask(ask) => Tracks::Ask { to: ask.to.clone() },
            Op::Broadcast(_) => Tracks::Broadcast,
            _ => Tracks::Nothing,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let deadline = std::time::SystemTime::now() + REQUEST_TIMEOUT;
        let deadline_ms = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_millis() as u64)
            .ok();
        let line = encode_line(&Request {
            id,
            deadline_ms,
            op,
        });
        if line.len() > MAX_LINE_BYTES {
            return Err(RelayError::bad_args(format!(
                "the message is {} bytes once JSON-encoded, over the hub's limit of {MAX_LINE_BYTES} bytes \
                 (quotes, backslashes and control characters take more room); nothing was sent",
                line.len()
            )));
        }
        let (answer, answered) = oneshot::channel();
        lock(&self.book)
            .requests
            .insert(id, Pending { answer, tracks });
        // One bound for sending and answering: a hub that stopped reading fills the queue.
        let exchange = async {
            if self.outgoing.send(line).await.is_err() {
                return Err(connection_lost());
            }
            answered.await.map_err(|_| connection_lost())
        };
        let result = match tokio::time::timeout(REQUEST_TIMEOUT + ANSWER_GRACE, exchange).await {
            Ok(Ok(answer)) => answer?,
            Ok(Err(lost)) => {
                lock(&self.book).requests.remove(&id);
                return Err(lost);
            }
            Err(_) => {
                lock(&self.book).requests.remove(&id);
                return Err(RelayError::hub_unreachable(format!(
                    "the hub did not answer within {} s, so nothing was done (it refuses a request that \
                     reaches it after that); try again, and check the hub log if it persists",
                    REQUEST_TIMEOUT.as_secs()
                )));
            }
        };
        serde_json::from_str(result.get()).map_err(|e| {
            RelayError::bad_msg(format!("the hub's answer has an unexpected shape: {e}"))
        })
    }
}

/// Locks `mutex`, also after a panic elsewhere poisoned it: every critical section that uses this
/// leaves its data consistent (plain inserts, removals and takes), so it stays usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn connection_lost() -> RelayError {
    RelayError::hub_unreachable(
        "the connection to the hub dropped; it is being re-established, try again",
    )
}

/// Reads the hub's lines and writes ours until the connection closes; then fails what is still
/// waiting.
async fn run_io(
    stream: Stream,
    mut lines: mpsc::Receiver<Vec<u8>>,
    book: Arc<Mutex<Book>>,
    events: mpsc::Sender<Event>,
) {
    // tokio's own halves: see hub::connection::serve.
    let Stream::UdSocket(stream) = stream;
    let mut stream = UnixStream::from(stream);
    let (read_half, mut writer) = stream.split();
    let reading = async {
        let mut frames = FrameReader::new(read_half, MAX_EVENT_LINE_BYTES);
        while let Ok(Some(line)) = frames.next_line().await {
            if let Some(ok) = OkAnswer::read(&line) {
                answer(&mut lock(&book), ok.id, ok.result.to_owned());
                continue;
            }
            match serde_json::from_str::<FromHub>(&line) {
                Ok(message) => {
                    if let Some(event) = route(&book, message)
                        && events.send(event).await.is_err()
                    {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unreadable_hub_line"),
            }
        }
    };
    let writing = async {
        while let Some(line) = lines.recv().await {
            if writer.write_all(&line).await.is_err() {
                return;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = reading => {}
        _ = writing => {}
    }
    let (requests, asks) = {
        let mut book = lock(&book);
        // A waiter learns that its connection is gone from its signals ending.
        book.signals = None;
        (
            std::mem::take(&mut book.requests),
            std::mem::take(&mut book.asks),
        )
    };
    drop(requests);
    let mut asks: Vec<_> = asks.into_iter().collect();
    asks.sort_by(|a, b| a.0.cmp(&b.0));
    for (ask_id, ask) in asks {
        tracing::warn!(ask_id = %ask_id, to = %ask.to, "ask_failed_hub_unreachable");
        let failure = AskFailure {
            message_id: format!("local-{ask_id}"),
            message: format!(
                "the connection to the hub dropped before {} replied to ask {ask_id}, so no reply will \
                 arrive{FOR_THE_MODEL}",
                ask.to
            ),
            ask_id,
            to: ask.to,
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            code: ErrorCode::HubUnreachable,
        };
        if events.send(Event::AskFailed(failure)).await.is_err() {
            return;
        }
    }
}

/// A success as the hub writes it (`protocol::OkLine`: `type` first), its result left as the hub
/// wrote it. Read as a [`FromHub`], a result went through two JSON trees before the request read
/// it (a peer list of a thousand sessions: tens of thousands of allocations); left raw, the
/// request reads it once, into its own type.
#[derive(Deserialize)]
struct OkAnswer<'a> {
    id: u64,
    #[serde(borrow)]
    result: &'a RawValue,
}

impl<'a> OkAnswer<'a> {
    /// The line as a success, or `None` for any other line (events, failures).
    fn read(line: &'a str) -> Option<OkAnswer<'a>> {
        line.starts_with(r#"{"type":"ok","#)
            .then(|| serde_json::from_str(line).ok())
            .flatten()
    }
}

/// Hands `result` to the request `id` that waits for it.
fn answer(book: &mut Book, id: u64, result: Box<RawValue>) {
    if let Some(pending) = book.requests.remove(&id) {
        record_asks(book, &pending.tracks, &result);
        let _ = pending.answer.send(Ok(result));
    }
}

/// Hands a response to its waiting request, or turns an event into an [`Event`]. Keeps the book
/// of outstanding asks in wire order, so an answer can never arrive before its ask is recorded.
fn route(book: &Mutex<Book>, message: FromHub) -> Option<Event> {
    let mut book = lock(book);
    match message {
        FromHub::Ok { id, result } => {
            let raw = serde_json::value::to_raw_value(&result).expect("a JSON value serializes");
            answer(&mut book, id, raw);
            None
        }
        FromHub::Err { id, code, message } => {
            let error = RelayError::new(code, message);
            match id.and_then(|id| book.requests.remove(&id)) {
                Some(pending) => {
                    let _ = pending.answer.send(Err(error));
                }
                None => tracing::warn!(code = %error.code, detail = %error.message, "hub_error"),
            }
            None
        }
        FromHub::Settled { ask_id } => {
            book.asks.remove(&ask_id);
            None
        }
        FromHub::Wake {} => signal(&book, Signal::Wake),
        FromHub::StandDown { reason } => signal(&book, Signal::StandDown(reason)),
        event => {
            let event = Event::from_hub(event)?;
            if let Event::Reply(Delivery { ask_id, .. })
            | Event::AskFailed(AskFailure { ask_id, .. }) = &event
            {
                book.asks.remove(ask_id);
            }
            Some(event)
        }
    }
}

/// Passes a signal to the waiter, if this client is one.
fn signal(book: &Book, signal: Signal) -> Option<Event> {
    if let Some(signals) = &book.signals {
        let _ = signals.send(signal);
    }
    None
}

fn record_asks(book: &mut Book, tracks: &Tracks, result: &RawValue) {
    match tracks {
        Tracks::Nothing => {}
        Tracks::Ask { to } => {
            if let Ok(asked) = serde_json::from_str::<Asked>(result.get()) {
                let ask = Outstanding {
                    to: to.clone(),
                    thread_id: asked.thread_id,
                    broadcast_id: None,
                };
                book.asks.insert(asked.ask_id, ask);
            }
        }
        Tracks::Broadcast => {
            if let Ok(broadcast) = serde_json::from_str::<Broadcasted>(result.get()) {
                for ask in broadcast.asks {
                    let outstanding = Outstanding {
                        to: ask.to,
                        thread_id: broadcast.broadcast_id.clone(),
                        broadcast_id: Some(broadcast.broadcast_id.clone()),
                    };
                    book.asks.insert(ask.ask_id, outstanding);
                }
            }
        }
    }
}

async fn connect(socket: &Path) -> std::io::Result<Stream> {
    Stream::connect(socket.to_fs_name::<GenericFilePath>()?).await
}

/// Connects to the hub, starting `hub_exe` when none answers. The hub runs as its own
/// executable (never a fork of this process: forking a running tokio process is unsafe) and
/// daemonizes itself; `hub_exe` returns as soon as it has. A start is retried every second,
/// because a hub that was just exiting may still hold the lock, for [`HUB_START_TIMEOUT`].
pub(crate) async fn connect_or_start(data: &DataDir, hub_exe: &Path) -> Result<Stream, RelayError> {
    let socket = data.socket();
    if let Ok(stream) = connect(&socket).await {
        return Ok(stream);
    }
    let deadline = Instant::now() + HUB_START_TIMEOUT;
    let mut next_start = Instant::now();
    loop {
        if Instant::now() >= next_start {
            start_hub(data, hub_exe).await?;
            next_start = Instant::now() + Duration::from_secs(1);
        }
        match connect(&socket).await {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => {
                return Err(RelayError::hub_unreachable(format!(
                    "no hub answered at {} within {} s of starting one ({e}); see {} and the logs in {}",
                    socket.display(),
                    HUB_START_TIMEOUT.as_secs(),
                    data.hub_stderr().display(),
                    data.logs().display(),
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn start_hub(data: &DataDir, hub_exe: &Path) -> Result<(), RelayError> {
    let mut command = std::process::Command::new(hub_exe);
    command
        .env("CLAUDE_PLUGIN_DATA", data.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let hub_exe: PathBuf = hub_exe.to_owned();
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .map_err(|e| RelayError::hub_unreachable(format!("could not start the hub: {e}")))?;
    match status {
        Ok(status) if status.success() => {
            tracing::info!(hub = %hub_exe.display(), "hub_start_requested");
            Ok(())
        }
        Ok(status) => Err(RelayError::hub_unreachable(format!(
            "{} exited with {status}; see {}",
            hub_exe.display(),
            data.hub_stderr().display()
        ))),
        Err(e) => Err(RelayError::hub_unreachable(format!(
            "could not run {} ({e}); it must sit next to relay-channel",
            hub_exe.display()
        ))),
    }
}
