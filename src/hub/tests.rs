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
    hub::{
        asking::MAX_PENDING_PER_PEER,
        connection::{HELLO_TIMEOUT, LINE_STALL},
        inbox::ORPHAN_GRACE,
        outbox::{PEER_BUSY_BYTES, STALL},
        server::{MAX_UNREGISTERED, ServerConfig, bind, serve},
        waiters::WOKEN_TURN,
    },
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
    served: Served,
}

/// The task serving the hub, aborted when dropped.
struct Served(JoinHandle<std::io::Result<()>>);

impl Served {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestHub {
    fn start() -> TestHub {
        TestHub::start_in(tempfile::tempdir().expect("temp dir"))
    }

    /// Stops this hub as a crash would (its task simply ends) and starts a new one on the same
    /// data directory.
    async fn restart(self) -> TestHub {
        let TestHub {
            _dir: dir, served, ..
        } = self;
        drop(served);
        settle().await;
        TestHub::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> TestHub {
        let data = DataDir::new(dir.path().join("data"));
        data.ensure().expect("data dir");
        let bound = bind(&data).expect("bind the hub socket");
        let config = ServerConfig {
            idle_exit: IDLE_EXIT,
        };
        let served = Served(tokio::spawn(serve(bound, config, std::future::pending())));
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

/// What `peer`'s own inbox hands over now, acknowledged.
async fn take_all(peer: &mut Peer) -> Vec<Value> {
    let page = peer.ok(json!({"op": "inbox_take"})).await;
    if let Some(take_id) = page["take_id"].as_u64() {
        peer.ok(json!({"op": "inbox_ack", "take_id": take_id}))
            .await;
    }
    page["messages"].as_array().cloned().unwrap_or_default()
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
    /// Writes `bytes` to the hub. A blocking write, like every read: the hub, which must read
    /// them for the write to finish, runs on the test's own thread.
    async fn write(&mut self, bytes: Vec<u8>) {
        let mut stream = self.stream.try_clone().unwrap();
        blocking(move || stream.write_all(&bytes).expect("write to the hub")).await;
    }

    async fn send(&mut self, message: &Value) {
        self.write(format!("{message}\n").into_bytes()).await;
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
        self.send(&op).await;
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
    let peer = hub.peer("alpha", "on", None).await;
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
    let take = |session: &str| json!({"op": "inbox_take", "session_id": session});

    advance(ORPHAN_GRACE - Duration::from_secs(1)).await;
    let mut hook = hub.connect().await;
    let early = hook.ok(take("early")).await;
    assert_eq!(early["messages"][0]["text"], "early", "{early}");
    hook.ok(json!({"op": "inbox_ack", "take_id": early["take_id"], "session_id": "early"}))
        .await;
    let mut back = hub.peer("back", "off", Some("back")).await;
    alpha.nothing_waiting().await;
    advance(Duration::from_secs(1)).await;
    let (code, _) = hook.err(take("late")).await;
    assert_eq!(code, "peer_not_found", "expired with the grace");
    let kept = take_all(&mut back).await;
    assert_eq!(kept[0]["text"], "back", "{kept:?}");
    // The one reply that expired unread is reported to the session that sent it.
    let undelivered = alpha.event().await;
    assert_eq!(undelivered["type"], "undelivered", "{undelivered}");
    assert_eq!(undelivered["to"], "late");
    assert!(
        undelivered["message"]
            .as_str()
            .unwrap()
            .contains("was never read"),
        "{undelivered}"
    );
    alpha.nothing_waiting().await;
}

/// A taken page leaves the inbox only when acknowledged: a reader that dies first leaves it to
/// the next, and once acknowledged it is never handed out again.
#[tokio::test(start_paused = true)]
async fn a_page_is_handed_out_until_it_is_acknowledged() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let _beta = hub.peer("beta", "off", Some("s-beta")).await;
    alpha.ok(ask("beta", 600)).await;
    let take = json!({"op": "inbox_take", "session_id": "s-beta"});

    let mut dying = hub.connect().await;
    let first = dying.ok(take.clone()).await;
    assert_eq!(first["messages"].as_array().unwrap().len(), 1, "{first}");
    // Another reader meanwhile is handed nothing: no message reaches the model twice.
    let mut hook = hub.connect().await;
    let busy = hook.ok(take.clone()).await;
    assert_eq!(busy["messages"], json!([]), "{busy}");
    assert_eq!(busy["more"], true);
    dying.close().await;

    let again = hook.ok(take.clone()).await;
    assert_eq!(again["messages"], first["messages"], "handed out again");
    hook.ok(json!({"op": "inbox_ack", "take_id": again["take_id"], "session_id": "s-beta"}))
        .await;
    let (code, _) = hook
        .err(json!({"op": "inbox_ack", "take_id": again["take_id"], "session_id": "s-beta"}))
        .await;
    assert_eq!(code, "bad_args", "acknowledged once");
    let after = hook.ok(take).await;
    assert_eq!(
        after["messages"],
        json!([]),
        "never again once acknowledged"
    );
}

/// What waits in a session's inbox survives the hub: a reply queued for a session whose pushes
/// are off is there for it after a crash and a new hub. A question is not: its ask ended with
/// the hub (its asker was told `hub_unreachable` by its own channel).
#[tokio::test(start_paused = true)]
async fn a_queued_reply_survives_the_hub_and_a_queued_question_does_not() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "off", Some("s-beta")).await;
    beta.ok(ask("alpha", 600)).await;
    let question = alpha.event().await;
    alpha
        .ok(json!({"op": "reply", "ask_id": question["ask_id"], "text": "kept across"}))
        .await;
    assert_eq!(beta.event().await["type"], "settled");
    alpha.ok(ask("beta", 600)).await;

    let hub = hub.restart().await;
    let mut beta = hub.peer("beta", "off", Some("s-beta")).await;
    let kept = take_all(&mut beta).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["type"], "reply");
    assert_eq!(kept[0]["text"], "kept across");
    assert!(take_all(&mut beta).await.is_empty());

    // Acknowledged, it is gone for good: the next hub has nothing for the session.
    let hub = hub.restart().await;
    let mut beta = hub.peer("beta", "off", Some("s-beta")).await;
    assert!(take_all(&mut beta).await.is_empty());
}

/// A session whose hub crashed may not have been told that an ask of its was settled (its reply
/// or failure kept in its inbox) before its connection dropped, and its channel then reports the
/// ask as `hub_unreachable`. The next hub tells it, in the answer to its hello, which of its asks
/// what waits in its inbox settles, so that the channel withdraws those reports.
#[tokio::test(start_paused = true)]
async fn a_session_back_after_a_crash_is_told_which_asks_its_inbox_settles() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let gamma = hub.peer("gamma", "on", None).await;
    let mut beta = hub.peer("beta", "off", Some("s-beta")).await;
    let answered = beta.ok(ask("alpha", 600)).await["ask_id"].clone();
    let failed = beta.ok(ask("gamma", 600)).await["ask_id"].clone();
    let question = alpha.event().await;
    alpha
        .ok(json!({"op": "reply", "ask_id": question["ask_id"], "text": "kept"}))
        .await;
    gamma.close().await;
    for ask_id in [&answered, &failed] {
        assert_eq!(
            beta.event().await,
            json!({"type": "settled", "ask_id": ask_id})
        );
    }

    let hub = hub.restart().await;
    let mut beta = hub.connect().await;
    let hello = json!({"op": "hello", "protocol": PROTOCOL_VERSION, "version": "test",
                       "name": "beta", "pushes": "off", "session_id": "s-beta"});
    let welcome = beta.ok(hello.clone()).await;
    assert_eq!(welcome["settled"], json!([answered, failed]), "{welcome}");
    assert_eq!(take_all(&mut beta).await.len(), 2);

    // Nothing waits: nothing is settled, and the answer says nothing of it.
    let hub = hub.restart().await;
    let welcome = hub.connect().await.ok(hello).await;
    assert!(welcome.get("settled").is_none(), "{welcome}");
}

/// A request that reaches the hub after its deadline, when its client has stopped waiting and
/// told its user it failed, is refused and has no effect.
#[tokio::test(start_paused = true)]
async fn a_request_after_its_deadline_is_refused_and_not_applied() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "on", None).await;
    let mut late = ask("beta", 600);
    late["deadline_ms"] = json!(1);
    let (code, message) = alpha.err(late).await;
    assert_eq!(code, "hub_unreachable");
    assert!(message.contains("after its deadline"), "{message}");
    beta.nothing_waiting().await;
    let mut in_time = ask("beta", 600);
    in_time["deadline_ms"] = json!(u64::MAX);
    alpha.ok(in_time).await;
    assert_eq!(beta.event().await["type"], "ask");
}

/// A connection that never says hello is closed after HELLO_TIMEOUT; until then it may ask what
/// needs no hello.
#[tokio::test(start_paused = true)]
async fn a_connection_that_never_says_hello_is_closed() {
    let hub = TestHub::start();
    let mut silent = hub.connect().await;
    silent.ok(json!({"op": "status"})).await;
    advance(HELLO_TIMEOUT - Duration::from_secs(1)).await;
    silent.ok(json!({"op": "status"})).await;
    advance(Duration::from_secs(1)).await;
    assert_eq!(silent.read().await, None, "closed by the hub");
    let mut greeted = hub.peer("alpha", "on", None).await;
    advance(HELLO_TIMEOUT * 10).await;
    greeted.ok(json!({"op": "status"})).await;
}

/// Past MAX_UNREGISTERED connections without hello, each new one takes the place of the oldest,
/// which is closed with the reason: a session that says hello gets in at once, however many
/// connections sit there silent.
#[tokio::test(start_paused = true)]
async fn connections_without_hello_cannot_take_every_place() {
    let hub = TestHub::start();
    let mut silent = Vec::new();
    for _ in 0..MAX_UNREGISTERED {
        silent.push(hub.connect().await);
    }
    // Each is counted once it is accepted: a round trip on the last makes sure all were.
    silent.last_mut().unwrap().ok(json!({"op": "status"})).await;
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut oldest = silent.remove(0);
    let answer = oldest.read().await.expect("a reason");
    assert_eq!(answer["code"], "hub_unreachable", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("have not said hello")
    );
    assert_eq!(oldest.read().await, None);
    // alpha said hello and no longer counts: a silent newcomer takes its place, and the next
    // session takes that of the next oldest.
    silent.push(hub.connect().await);
    silent.last_mut().unwrap().ok(json!({"op": "status"})).await;
    let beta = hub.peer("beta", "on", None).await;
    let mut next_oldest = silent.remove(0);
    assert_eq!(
        next_oldest.read().await.expect("a reason")["code"],
        "hub_unreachable"
    );
    assert_eq!(next_oldest.read().await, None);
    // The others wait out their hello timeout.
    advance(HELLO_TIMEOUT).await;
    for mut peer in silent {
        assert_eq!(peer.read().await, None);
    }
    let peers = alpha.ok(json!({"op": "peers"})).await;
    assert_eq!(peers["peers"][0]["name"], "beta", "{peers}");
    drop(beta);
}

/// A burst of 10,001 asks in one write at one session does not knock that session off: it gets
/// the first MAX_PENDING_PER_PEER, the asker is refused the rest with `too_many_asks`.
#[tokio::test(start_paused = true)]
async fn a_burst_of_asks_is_refused_past_the_limit_and_the_target_stays() {
    let hub = TestHub::start();
    let mut asker = hub.peer("asker", "on", None).await;
    let mut victim = hub.peer("victim", "on", None).await;
    let burst: String = (0..10_001)
        .map(|n| format!("{}\n", json!({"id": 10_000 + n, "op": "ask", "to": "victim", "question": "q", "timeout_secs": 600})))
        .collect();
    asker.write(burst.into_bytes()).await;
    let mut refused = 0;
    for _ in 0..10_001 {
        let answer = asker.read().await.expect("an answer to each");
        match answer["type"].as_str() {
            Some("ok") => {}
            _ => {
                assert_eq!(answer["code"], "too_many_asks", "{answer}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 10_001 - MAX_PENDING_PER_PEER);
    for _ in 0..MAX_PENDING_PER_PEER {
        assert_eq!(victim.event().await["type"], "ask");
    }
    victim.nothing_waiting().await;
    let peers = asker.ok(json!({"op": "peers"})).await;
    assert_eq!(peers["peers"][0]["name"], "victim", "still there: {peers}");
}

/// A peer that stops reading is dropped once it has taken no bytes for STALL, and the asks
/// pending on it fail for their callers; meanwhile, past PEER_BUSY_BYTES unread, new asks to it
/// are refused with `peer_busy`.
#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_is_refused_asks_then_dropped() {
    let hub = TestHub::start();
    let mut asker = hub.peer("asker", "on", None).await;
    let _deaf = hub.peer("deaf", "on", None).await;
    let mut other = hub.peer("other", "on", None).await;
    let big = "x".repeat(512 * 1024);
    let mut sent = 0;
    let busy = loop {
        let mut events = Vec::new();
        let answer = asker
            .request_keeping(
                json!({"op": "ask", "to": "deaf", "question": big, "timeout_secs": 600}),
                &mut events,
            )
            .await;
        if answer["type"] == "err" {
            break answer;
        }
        sent += 1;
        assert!(sent < 100, "never refused");
    };
    assert_eq!(busy["code"], "peer_busy", "{busy}");
    assert!(sent * 512 * 1024 > PEER_BUSY_BYTES);
    asker.nothing_waiting().await;
    // Everyone else is served as before.
    asker.ok(ask("other", 600)).await;
    assert_eq!(other.event().await["type"], "ask");
    advance(STALL).await;
    for _ in 0..sent {
        assert_eq!(asker.event().await["code"], "peer_gone");
    }
    let peers = asker.ok(json!({"op": "peers"})).await;
    let names: Vec<&Value> = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, [&json!("other")], "deaf was dropped: {peers}");
}

/// A line left unfinished closes its connection after LINE_STALL, with the reason.
#[tokio::test(start_paused = true)]
async fn a_line_left_unfinished_closes_its_connection() {
    let hub = TestHub::start();
    let mut peer = hub.peer("alpha", "on", None).await;
    peer.write(b"{\"id\":5,\"op\":\"pe".to_vec()).await;
    advance(LINE_STALL).await;
    let answer = peer.read().await.expect("the reason");
    assert_eq!(answer["code"], "bad_msg", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("unfinished"));
    assert_eq!(peer.read().await, None);
}

/// A hub whose socket file was removed binds it again within a second, and sessions reach it
/// as before; its peers keep their connections meanwhile.
#[tokio::test(start_paused = true)]
async fn a_removed_socket_is_bound_again() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    std::fs::remove_file(hub.data.socket()).unwrap();
    let socket = hub.data.socket();
    let refused = blocking(move || UnixStream::connect(socket).is_err()).await;
    assert!(refused, "nothing to connect to for now");
    advance(Duration::from_secs(1)).await;
    let mut beta = hub.peer("beta", "on", None).await;
    alpha.ok(ask("beta", 60)).await;
    assert_eq!(beta.event().await["type"], "ask");
}

/// Arms `waiter` for `session` and returns the first event it gets (before or after the answer).
async fn arm(waiter: &mut Peer, session: &str) -> Value {
    let mut events = Vec::new();
    let armed = waiter
        .request_keeping(json!({"op": "wait", "session_id": session}), &mut events)
        .await;
    assert_eq!(armed["type"], "ok", "{armed}");
    match events.into_iter().next() {
        Some(event) => event,
        None => waiter.event().await,
    }
}

/// A waiter (`wait`) for a session whose pushes are off: asks to it are `woken` while it is
/// armed, it is told `wake` when a message waits, and once it took a page its session is still
/// `woken` until the next waiter arms; a newer waiter replaces it, and one for a session whose
/// pushes are on stands down at once.
#[tokio::test(start_paused = true)]
async fn a_waiter_is_told_to_wake_and_asks_say_woken() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let _beta = hub.peer("beta", "off", Some("s-beta")).await;
    assert_eq!(alpha.ok(ask("beta", 600)).await["delivery"], "queued");

    let mut waiter = hub.connect().await;
    // The question queued before it armed is waiting: wake at once.
    assert_eq!(arm(&mut waiter, "s-beta").await["type"], "wake");
    let peers = alpha.ok(json!({"op": "peers"})).await;
    assert_eq!(peers["peers"][0]["delivery"], "woken", "{peers}");
    assert_eq!(peers["peers"][0]["waiter"], true, "{peers}");
    advance(HELLO_TIMEOUT * 2).await;
    let page = waiter
        .ok(json!({"op": "inbox_take", "session_id": "s-beta"}))
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1, "{page}");
    waiter
        .ok(json!({"op": "inbox_ack", "take_id": page["take_id"], "session_id": "s-beta"}))
        .await;
    waiter.close().await;
    // Its turn runs: a message now is woken by the next waiter (the one armed at the turn's end).
    assert_eq!(alpha.ok(ask("beta", 600)).await["delivery"], "woken");
    let mut next = hub.connect().await;
    assert_eq!(arm(&mut next, "s-beta").await["type"], "wake");
    let mut newer = hub.connect().await;
    assert_eq!(arm(&mut newer, "s-beta").await["type"], "wake");
    assert_eq!(next.event().await["type"], "stand_down");

    let _gamma = hub.peer("gamma", "on", Some("s-gamma")).await;
    let mut needless = hub.connect().await;
    let stand_down = arm(&mut needless, "s-gamma").await;
    assert_eq!(stand_down["type"], "stand_down", "{stand_down}");
    assert!(
        stand_down["reason"]
            .as_str()
            .unwrap()
            .contains("pushes are on")
    );
}

/// When a session's channel leaves, the session is ending: its waiter stands down, so does one
/// that arms just after (the last turn's `Stop` hook), and asks to its name fail (no such peer).
/// A channel of the session that registers again makes it wakeable again.
#[tokio::test(start_paused = true)]
async fn a_waiter_stands_down_when_its_sessions_channel_leaves() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let beta = hub.peer("beta", "off", Some("s-beta")).await;
    let mut waiter = hub.connect().await;
    let mut events = Vec::new();
    let armed = waiter
        .request_keeping(json!({"op": "wait", "session_id": "s-beta"}), &mut events)
        .await;
    assert_eq!(armed["type"], "ok", "{armed}");
    assert!(events.is_empty(), "{events:?}");
    beta.close().await;
    let told = waiter.event().await;
    assert_eq!(told["type"], "stand_down", "{told}");
    assert!(
        told["reason"].as_str().unwrap().contains("channel left"),
        "{told}"
    );
    let mut late = hub.connect().await;
    let told = arm(&mut late, "s-beta").await;
    assert_eq!(told["type"], "stand_down", "{told}");
    let status = alpha.ok(json!({"op": "status"})).await;
    assert_eq!(status["waiters"], 0, "{status}");

    let _back = hub.peer("beta", "off", Some("s-beta")).await;
    let mut again = hub.connect().await;
    let armed = again
        .request_keeping(json!({"op": "wait", "session_id": "s-beta"}), &mut events)
        .await;
    assert_eq!(armed["type"], "ok", "{armed}");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(alpha.ok(ask("beta", 600)).await["delivery"], "woken");
}

/// Without a waiter, and past the turn a waiter woke, asks to the session are `queued` again.
#[tokio::test(start_paused = true)]
async fn without_a_waiter_asks_say_queued() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let _beta = hub.peer("beta", "off", Some("s-beta")).await;
    let mut waiter = hub.connect().await;
    let mut events = Vec::new();
    let armed = waiter
        .request_keeping(json!({"op": "wait", "session_id": "s-beta"}), &mut events)
        .await;
    assert_eq!(armed["type"], "ok");
    assert!(events.is_empty(), "nothing to wake for yet: {events:?}");
    alpha.ok(ask("beta", 3600)).await;
    assert_eq!(waiter.event().await["type"], "wake");
    let page = waiter
        .ok(json!({"op": "inbox_take", "session_id": "s-beta"}))
        .await;
    waiter
        .ok(json!({"op": "inbox_ack", "take_id": page["take_id"], "session_id": "s-beta"}))
        .await;
    waiter.close().await;
    advance(WOKEN_TURN).await;
    assert_eq!(alpha.ok(ask("beta", 3600)).await["delivery"], "queued");
    let status = alpha.ok(json!({"op": "status"})).await;
    assert_eq!(status["waiters"], 0);
}

/// A question still waiting unseen in an inbox when its ask times out is withdrawn: it can no
/// longer be answered.
#[tokio::test(start_paused = true)]
async fn a_queued_question_is_withdrawn_when_its_ask_times_out() {
    let hub = TestHub::start();
    let mut alpha = hub.peer("alpha", "on", None).await;
    let mut beta = hub.peer("beta", "off", Some("s-beta")).await;
    let asked = alpha.ok(ask("beta", 30)).await;
    assert_eq!(asked["delivery"], "queued", "{asked}");
    advance(Duration::from_secs(30)).await;
    assert_eq!(alpha.event().await["code"], "timeout");
    assert!(take_all(&mut beta).await.is_empty(), "withdrawn");
}
