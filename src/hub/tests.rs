//! The hub in process, the way mini-redis tests its server: [`serve`] on a socket in a temp
//! directory, peers speaking the wire protocol over real connections, and tokio's clock paused so
//! that every deadline (ask timeouts, idle exit, inbox expiry) is reached exactly and at once.
//!
//! Tokio advances a paused clock by itself whenever the runtime has nothing to do, and socket I/O
//! in flight does not count as something to do. So the test peers do their I/O as blocking calls
//! inside `spawn_blocking`, which holds the clock still (tokio documents this), and time moves
//! only when a test says so with [`advance`]. Process-level behaviour (daemonizing, starting the
//! hub, signals, the real `claude`) is tested in `tests/` with the real binaries.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{
    hub::{ServerConfig, bind, inbox::ORPHAN_GRACE, serve},
    paths::DataDir,
    protocol::PROTOCOL_VERSION,
};

/// The longest a peer waits, in real time, for a line the hub must already have sent.
const READ_LIMIT: Duration = Duration::from_secs(10);

const IDLE_EXIT: Duration = Duration::from_secs(300);

/// A hub serving a temp directory, stopped when dropped.
struct TestHub {
    /// Removed when the test ends.
    _dir: tempfile::TempDir,
    data: DataDir,
    served: JoinHandle<()>,
}

impl TestHub {
    fn start() -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = DataDir::new(dir.path().join("data"));
        data.ensure().expect("data dir");
        let bound = bind(&data).expect("bind the hub socket");
        let config = ServerConfig {
            idle_exit: IDLE_EXIT,
        };
        let served = tokio::spawn(serve(bound, config, std::future::pending()));
        TestHub {
            _dir: dir,
            data,
            served,
        }
    }

    async fn connect(&self) -> Peer {
        let socket = self.data.socket();
        let stream =
            blocking(move || UnixStream::connect(socket).expect("connect to the hub")).await;
        stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        Peer {
            reader: Some(BufReader::new(stream.try_clone().unwrap())),
            stream,
            next_id: 1,
        }
    }

    /// A peer registered as `name` whose pushes are on, or off with a Claude Code session id.
    async fn peer(&self, name: &str, pushes: &str, session_id: Option<&str>) -> Peer {
        let mut peer = self.connect().await;
        let mut hello = json!({"op": "hello", "protocol": PROTOCOL_VERSION, "version": "test",
                               "name": name, "pushes": pushes});
        if let Some(id) = session_id {
            hello["session_id"] = json!(id);
        }
        let welcome = peer.ok(hello).await;
        assert_eq!(welcome["name"], name);
        peer
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.served.abort();
    }
}

/// Runs blocking socket I/O without letting the paused clock advance meanwhile.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking I/O")
}

/// Lets every task that can run do so, then moves the paused clock forward and lets whatever
/// became due run.
async fn advance(by: Duration) {
    settle().await;
    tokio::time::advance(by).await;
    settle().await;
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// One connection to the hub, speaking the wire protocol line by line.
struct Peer {
    stream: UnixStream,
    /// Taken while a blocking read runs.
    reader: Option<BufReader<UnixStream>>,
    next_id: u64,
}

impl Peer {
    fn send(&mut self, message: &Value) {
        writeln!(self.stream, "{message}").expect("write to the hub");
    }

    /// The next line from the hub; `None` when it closed the connection.
    async fn read(&mut self) -> Option<Value> {
        let mut reader = self.reader.take().expect("one read at a time");
        let (reader, line) = blocking(move || {
            let mut line = String::new();
            let read = reader
                .read_line(&mut line)
                .expect("a line within the read limit");
            (reader, (read > 0).then_some(line))
        })
        .await;
        self.reader = Some(reader);
        line.map(|line| serde_json::from_str(&line).expect("the hub writes JSON lines"))
    }

    /// Sends `op` and returns its response; events that come first are kept in `events`.
    async fn request_keeping(&mut self, mut op: Value, events: &mut Vec<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        self.send(&op);
        loop {
            let line = self.read().await.expect("the hub answers");
            if line["id"] == id {
                return line;
            }
            events.push(line);
        }
    }

    /// Sends `op`, fails the test on an error, and returns its result; fails on any event that
    /// comes first too.
    async fn ok(&mut self, op: Value) -> Value {
        let mut events = Vec::new();
        let response = self.request_keeping(op, &mut events).await;
        assert!(events.is_empty(), "unexpected events: {events:?}");
        assert_eq!(response["type"], "ok", "{response}");
        response["result"].clone()
    }

    async fn err(&mut self, op: Value) -> (String, String) {
        let mut events = Vec::new();
        let response = self.request_keeping(op, &mut events).await;
        assert_eq!(response["type"], "err", "{response}");
        (
            response["code"].as_str().unwrap().to_owned(),
            response["message"].as_str().unwrap().to_owned(),
        )
    }

    /// Fails the test if an event is waiting: a `status` round trip on this connection comes
    /// back after anything the hub wrote to it before.
    async fn nothing_waiting(&mut self) {
        let mut events = Vec::new();
        self.request_keeping(json!({"op": "status"}), &mut events)
            .await;
        assert!(events.is_empty(), "unexpected events: {events:?}");
    }

    async fn event(&mut self) -> Value {
        self.read().await.expect("an event")
    }

    /// Closes the connection and waits until the hub has closed its side too, so the hub has
    /// seen this peer leave.
    async fn close(mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shut down");
        while self.read().await.is_some() {}
    }
}

fn ask(to: &str, timeout_secs: u64) -> Value {
    json!({"op": "ask", "to": to, "question": "q?", "timeout_secs": timeout_secs})
}

#[tokio::test(start_paused = true)]
async fn an_ask_times_out_exactly_at_its_deadline_and_a_late_reply_is_told() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "on", None).await;
    let asked = alpha.ok(ask("beta", 30)).await;
    let ask_id = asked["ask_id"].as_str().unwrap().to_owned();
    assert_eq!(beta.event().await["ask_id"], ask_id.as_str());

    advance(Duration::from_secs(29)).await;
    alpha.nothing_waiting().await;
    advance(Duration::from_secs(1)).await;
    let failed = alpha.event().await;
    assert_eq!(failed["type"], "ask_failed", "{failed}");
    assert_eq!(failed["code"], "timeout");
    assert_eq!(failed["ask_id"], ask_id.as_str());
    assert!(
        failed["message"].as_str().unwrap().contains("within 30 s"),
        "{failed}"
    );

    let (code, message) = beta
        .err(json!({"op": "reply", "ask_id": ask_id, "text": "late"}))
        .await;
    assert_eq!(code, "unknown_ask");
    assert!(message.contains("timed out at"), "{message}");
    alpha.nothing_waiting().await;
}

#[tokio::test(start_paused = true)]
async fn a_reply_before_the_deadline_wins_and_nothing_times_out_after() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "on", None).await;
    let asked = alpha.ok(ask("beta", 30)).await;
    let ask_id = asked["ask_id"].as_str().unwrap().to_owned();
    beta.event().await;
    advance(Duration::from_secs(29)).await;
    beta.ok(json!({"op": "reply", "ask_id": ask_id, "text": "in time"}))
        .await;
    let reply = alpha.event().await;
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["text"], "in time");
    advance(Duration::from_secs(3600)).await;
    alpha.nothing_waiting().await;
}

#[tokio::test(start_paused = true)]
async fn a_broadcast_times_out_for_every_silent_recipient_at_once() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "on", None).await;
    let mut gamma = hub.peer("gamma", "on", None).await;
    let sent = alpha
        .ok(json!({"op": "broadcast", "question": "all?", "exclude_self": true, "timeout_secs": 60}))
        .await;
    assert_eq!(sent["asks"].as_array().unwrap().len(), 2);
    let to_beta = beta.event().await;
    gamma.event().await;
    beta.ok(json!({"op": "reply", "ask_id": to_beta["ask_id"], "text": "b"}))
        .await;
    assert_eq!(alpha.event().await["type"], "reply");
    advance(Duration::from_secs(60)).await;
    let failed = alpha.event().await;
    assert_eq!(failed["code"], "timeout");
    assert_eq!(failed["to"], "gamma");
    assert_eq!(failed["broadcast_id"], sent["broadcast_id"]);
    alpha.nothing_waiting().await;
}

#[tokio::test(start_paused = true)]
async fn a_target_that_leaves_fails_its_asks_with_peer_gone_at_once() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "on", None).await;
    alpha.ok(ask("beta", 600)).await;
    beta.event().await;
    beta.close().await;
    let failed = alpha.event().await;
    assert_eq!(failed["code"], "peer_gone", "{failed}");
}

#[tokio::test(start_paused = true)]
async fn the_hub_exits_when_idle_for_its_idle_time_and_a_connection_resets_it() {
    let hub = TestHub::start();
    advance(IDLE_EXIT - Duration::from_secs(1)).await;
    let peer = hub.connect().await;
    advance(Duration::from_secs(10)).await;
    assert!(!hub.served.is_finished(), "a connection keeps it up");
    peer.close().await;
    advance(IDLE_EXIT - Duration::from_secs(1)).await;
    assert!(
        !hub.served.is_finished(),
        "idle for less than its idle time"
    );
    advance(Duration::from_secs(1)).await;
    assert!(hub.served.is_finished(), "idle for its idle time");
    assert!(!hub.data.socket().exists(), "its socket is removed");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_request_stops_the_hub() {
    let hub = TestHub::start();
    let mut control = hub.connect().await;
    control.ok(json!({"op": "shutdown"})).await;
    assert_eq!(control.read().await, None, "the connection is closed");
    advance(Duration::from_secs(3)).await;
    assert!(hub.served.is_finished());
}

/// A session whose pushes are off keeps its inbox for ORPHAN_GRACE after its channel leaves: its
/// prompt hook can take it meanwhile, the session gets it back when it returns, and after the
/// grace it is gone.
#[tokio::test(start_paused = true)]
async fn a_departed_sessions_inbox_waits_for_the_grace_then_expires() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    // Each session asks alpha, alpha's reply waits in the session's inbox, the session leaves.
    for session in ["early", "back", "late"] {
        let mut beta = hub.peer(session, "off", Some(session)).await;
        beta.ok(ask("alpha", 3600)).await;
        let question = alpha.event().await;
        alpha
            .ok(json!({"op": "reply", "ask_id": question["ask_id"], "text": session}))
            .await;
        assert_eq!(beta.event().await["type"], "settled");
        beta.close().await;
    }
    let mut hook = hub.connect().await;
    let take = |session: &str| json!({"op": "inbox_take", "session_id": session});

    advance(ORPHAN_GRACE - Duration::from_secs(1)).await;
    let early = hook.ok(take("early")).await;
    assert_eq!(early["messages"][0]["text"], "early", "{early}");
    let mut back = hub.peer("back", "off", Some("back")).await;
    advance(Duration::from_secs(1)).await;
    let (code, _) = hook.err(take("late")).await;
    assert_eq!(code, "peer_not_found", "expired with the grace");
    let kept = back.ok(json!({"op": "inbox_take"})).await;
    assert_eq!(kept["messages"][0]["text"], "back", "{kept}");
}
