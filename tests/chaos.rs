//! Chaos: the real binaries while the hub is killed, restarted, stopped, robbed of its socket,
//! flooded with asks, made to write to sessions that do not read, and crowded by connections that
//! never say hello. Each test has a fresh data directory, stops only the processes it started (by
//! pid), and bounds every wait; the suite takes about 20 s on 2 cores, most of it the 15 s a peer
//! that stops reading is given.
//!
//! The same situations, and the limits behind them, are tested in process on a paused clock in
//! `src/hub/tests.rs`; here they meet real processes, sockets, signals and clocks.
//!
//! `abuse_figures` (ignored) measures the hub's memory under each abuse of docs/benchmarks.md.

use std::{
    fs,
    io::{Read, Write},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use testkit::{
    Channel, PROMPTLY, RawPeer, World, bins, kill, poll_until, reset_peak_rss, run_with_input,
    status_kib, wait_for,
};

/// The client's deadline for a request (`REQUEST_TIMEOUT` in src/client.rs) and the grace it
/// waits past it for an answer (`ANSWER_GRACE`).
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// How long the hub gives a peer that takes no bytes (`STALL` in src/hub/outbox.rs).
const STALL: Duration = Duration::from_secs(15);

/// The most asks one peer may have pending (`MAX_PENDING_PER_PEER` in src/hub/asking.rs).
const MAX_PENDING_PER_PEER: usize = 4096;

/// A session whose Claude Code shows no pushes, with a Claude Code session id, so that its inbox
/// at the hub is kept in the journal.
fn session_with_pushes_off(relay: &mut World, name: &str, session_id: &str) -> Channel {
    let mut channel = relay.spawn_channel(
        name,
        &[
            ("RELAY_CHANNELS", "off"),
            ("CLAUDE_CODE_SESSION_ID", session_id),
        ],
    );
    channel.initialize();
    relay.registered(&mut channel);
    channel
}

/// The messages of one `relay_inbox` take.
fn inbox(channel: &mut Channel) -> Vec<Value> {
    let taken = channel.ok("relay_inbox", json!({}));
    assert_eq!(taken["dropped"], 0, "{taken}");
    taken["messages"].as_array().unwrap().clone()
}

/// Runs the prompt hook (`relay-channel hook`) for `session_id` as Claude Code does, and returns
/// the context it adds to the prompt ("" when it adds none).
fn prompt_hook(relay: &World, session_id: &str) -> String {
    let input =
        json!({"session_id": session_id, "hook_event_name": "UserPromptSubmit", "prompt": "next"});
    // The hook bounds itself to 2 s; what it prints fits the pipe.
    let (status, stdout, _) = run_with_input(
        relay
            .command(relay.bins().channel, relay.dir.path())
            .arg("hook"),
        &input.to_string(),
        "the prompt hook",
    );
    assert!(status.success(), "the hook never fails a prompt: {status}");
    if stdout.is_empty() {
        return stdout;
    }
    let printed: Value = serde_json::from_str(&stdout).expect("the hook prints JSON");
    printed["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .expect("additionalContext")
        .to_owned()
}

/// `relay status --json` of this world (with `running: false` when no hub runs).
fn status(relay: &World) -> Value {
    relay.relay(&["status", "--json"]).json()
}

/// Waits until a hub other than `old` runs and `peers` sessions are registered with it.
fn wait_for_new_hub(relay: &mut World, old: u32, peers: u64) -> u32 {
    wait_for("a new hub", || {
        relay.hub_pid().is_some_and(|pid| pid != old)
    });
    relay.note_hub();
    wait_for("the sessions to register with the new hub", || {
        status(relay)["peers"] == peers
    });
    let hub = relay.hub_pid().unwrap();
    assert_eq!(relay.hubs_running(), [hub], "one hub");
    hub
}

enum HubEnd {
    /// `kill -9`: the hub writes nothing more.
    Killed,
    /// `relay hub restart`: a graceful shutdown, and a new hub.
    Restarted,
}

enum Reader {
    /// The session's `relay_inbox` tool, through its channel.
    Tool,
    /// The prompt hook, by the session's id.
    PromptHook,
}

/// A reply waiting in the inbox of a session whose pushes are off is there after the hub ended
/// (`end`) and a new hub came up, and is shown exactly once, by `reader`, never again by either.
fn a_queued_reply_outlives_the_hub(end: HubEnd, reader: Reader) {
    let mut relay = World::new(bins!());
    let mut beta = relay.channel("beta");
    let mut alpha = session_with_pushes_off(&mut relay, "alpha", "sess-alpha");
    let asked = alpha.ok("relay_ask", json!({"to": "beta", "question": "kept?"}));
    assert_eq!(beta.push()["meta"]["ask_id"], asked["ask_id"]);
    // Once relay_reply answers, the reply is in alpha's inbox and in the hub's journal.
    beta.ok(
        "relay_reply",
        json!({"ask_id": asked["ask_id"], "text": "kept across the hub"}),
    );
    let old = relay.hub_pid().unwrap();
    match end {
        HubEnd::Killed => {
            kill(old, "KILL");
            relay.wait_hub_gone(old, PROMPTLY);
        }
        HubEnd::Restarted => {
            let run = relay.relay(&["hub", "restart"]);
            assert_eq!(run.code, 0, "{run:?}");
        }
    }
    // The channels notice, reconnect (starting a hub if need be) and register again.
    wait_for_new_hub(&mut relay, old, 2);

    let is_the_reply = |text: &str| text.contains("kept across the hub");
    match reader {
        Reader::Tool => {
            let messages = inbox(&mut alpha);
            assert_eq!(messages.len(), 1, "{messages:?}");
            assert_eq!(messages[0]["kind"], "reply");
            assert_eq!(messages[0]["ask_id"], asked["ask_id"]);
            assert!(is_the_reply(messages[0]["text"].as_str().unwrap()));
            assert_eq!(prompt_hook(&relay, "sess-alpha"), "", "shown once");
        }
        Reader::PromptHook => {
            let context = prompt_hook(&relay, "sess-alpha");
            assert_eq!(
                context.matches("kept across the hub").count(),
                1,
                "{context}"
            );
            let ask_id = asked["ask_id"].as_str().unwrap();
            assert!(
                context.contains(&format!("ask_id=\"{ask_id}\"")),
                "{context}"
            );
            assert_eq!(prompt_hook(&relay, "sess-alpha"), "", "shown once");
        }
    }
    assert!(inbox(&mut alpha).is_empty(), "shown once");
    assert!(alpha.push_within(Duration::from_millis(100)).is_none());
}

#[test]
fn a_queued_reply_outlives_a_killed_hub_read_by_relay_inbox() {
    a_queued_reply_outlives_the_hub(HubEnd::Killed, Reader::Tool);
}

#[test]
fn a_queued_reply_outlives_a_killed_hub_read_by_the_prompt_hook() {
    a_queued_reply_outlives_the_hub(HubEnd::Killed, Reader::PromptHook);
}

#[test]
fn a_queued_reply_outlives_a_restarted_hub_read_by_relay_inbox() {
    a_queued_reply_outlives_the_hub(HubEnd::Restarted, Reader::Tool);
}

#[test]
fn a_queued_reply_outlives_a_restarted_hub_read_by_the_prompt_hook() {
    a_queued_reply_outlives_the_hub(HubEnd::Restarted, Reader::PromptHook);
}

/// Resumes a stopped process when dropped, should the test fail while it is stopped.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        kill(self.0, "CONT");
    }
}

/// The hub stopped (SIGSTOP) for 7 s while an ask and a reply are sent: both fail for their
/// callers with `hub_unreachable` after the client's deadline and grace (6 s), and when the hub
/// runs again (SIGCONT) and reads them, neither takes effect: the target is never shown the
/// question, and the asker gets no reply it was not promised. The reply can be sent again.
#[test]
fn a_stopped_hub_leaves_no_ghosts() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    let first = alpha.ok("relay_ask", json!({"to": "beta", "question": "first"}));
    assert_eq!(beta.push()["meta"]["ask_id"], first["ask_id"]);

    let hub = relay.hub_pid().unwrap();
    kill(hub, "STOP");
    let resume = Resume(hub);
    let stopped_at = Instant::now();
    let ask_call = alpha.send_call("relay_ask", json!({"to": "beta", "question": "ghost?"}));
    let reply_call = beta.send_call(
        "relay_reply",
        json!({"ask_id": first["ask_id"], "text": "reported failed"}),
    );
    for (who, outcome) in [
        ("relay_ask", alpha.outcome(ask_call)),
        ("relay_reply", beta.outcome(reply_call)),
    ] {
        let after = stopped_at.elapsed();
        assert!(outcome.is_error, "{who}: {}", outcome.body);
        assert_eq!(outcome.body["code"], "hub_unreachable", "{who}");
        assert!(
            after >= CLIENT_DEADLINE && after < CLIENT_DEADLINE + ANSWER_GRACE * 3 / 2,
            "{who} failed after {after:?}, not after the deadline and its grace"
        );
    }
    // The scenario, not a synchronisation: the hub stays stopped for 7 s in all.
    thread::sleep(Duration::from_secs(7).saturating_sub(stopped_at.elapsed()));
    drop(resume);

    // Each connection's requests are read in order: what alpha and beta send now, the hub reads
    // after the two late ones.
    let after = alpha.ok("relay_ask", json!({"to": "beta", "question": "after"}));
    let shown = beta.push();
    assert_eq!(shown["meta"]["ask_id"], after["ask_id"], "{shown}");
    assert_eq!(shown["content"], "after");
    // The failed reply was not applied: the ask is still open, and answering it now works once.
    beta.ok(
        "relay_reply",
        json!({"ask_id": first["ask_id"], "text": "second try"}),
    );
    beta.ok(
        "relay_reply",
        json!({"ask_id": after["ask_id"], "text": "after, answered"}),
    );
    let replies = [alpha.push(), alpha.push()];
    assert_eq!(replies[0]["meta"]["ask_id"], first["ask_id"]);
    assert_eq!(replies[0]["content"], "second try");
    assert_eq!(replies[1]["meta"]["ask_id"], after["ask_id"]);
    for channel in [&mut alpha, &mut beta] {
        let extra = channel.push_within(Duration::from_millis(300));
        assert!(extra.is_none(), "{}: a ghost: {extra:?}", channel.name);
    }
    let refused = relay
        .log_lines()
        .iter()
        .filter(|line| line["event"] == "request_after_its_deadline")
        .count();
    assert_eq!(
        refused, 2,
        "the hub read both late requests and refused them"
    );
}

/// `rm hub.sock` while the hub runs: the hub binds its socket again within about a second, so new
/// sessions reach it; `relay status` finds it by its lock meanwhile, and so does
/// `relay hub restart`.
#[test]
fn a_removed_socket_heals() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let hub = relay.hub_pid().unwrap();

    fs::remove_file(relay.socket()).unwrap();
    let removed = Instant::now();
    let status_meanwhile = relay.stream_relay(&["status", "--json"]);
    let mut beta = relay.spawn_channel("beta", &[]);
    beta.initialize();
    relay.registered(&mut beta);
    let healed = removed.elapsed();
    assert!(
        healed < Duration::from_secs(3),
        "a new session registered {healed:?} after the socket was removed"
    );
    let run = status_meanwhile.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["hub_pid"], hub);
    assert_eq!(relay.hubs_running(), [hub], "the same hub, and only it");
    let asked = beta.ok("relay_ask", json!({"to": "alpha", "question": "there?"}));
    assert_eq!(alpha.push()["meta"]["ask_id"], asked["ask_id"]);
    alpha.ok(
        "relay_reply",
        json!({"ask_id": asked["ask_id"], "text": "here"}),
    );
    assert_eq!(beta.push()["content"], "here");

    // Again, and restart the hub at once, before it bound the socket again.
    fs::remove_file(relay.socket()).unwrap();
    let run = relay.relay(&["hub", "restart"]);
    assert_eq!(run.code, 0, "{run:?}");
    relay.wait_hub_gone(hub, PROMPTLY);
    wait_for_new_hub(&mut relay, hub, 2);
    let asked = alpha.ok("relay_ask", json!({"to": "beta", "question": "back?"}));
    assert_eq!(beta.push()["meta"]["ask_id"], asked["ask_id"]);
}

/// `n` ask lines to `to`, ids from `first_id`, in one buffer.
fn ask_lines(
    n: usize,
    first_id: usize,
    to: &str,
    question: &str,
    thread_id: Option<&str>,
) -> Vec<u8> {
    let mut lines = Vec::new();
    for n in 0..n {
        let mut ask = json!({"id": first_id + n, "op": "ask", "to": to, "question": question, "timeout_secs": 600});
        if let Some(thread_id) = thread_id {
            ask["thread_id"] = json!(thread_id);
        }
        lines.extend_from_slice(format!("{ask}\n").as_bytes());
    }
    lines
}

/// 10,001 tiny asks at one real session in one write: the session receives the first 4,096, the
/// asker is refused the rest with `too_many_asks`, and the session stays connected and
/// registered (a burst it reads is no reason to drop it).
#[test]
fn a_burst_of_asks_leaves_its_target_connected() {
    let mut relay = World::new(bins!());
    let mut victim = relay.channel("victim");
    let mut asker = RawPeer::connect(&relay);
    assert_eq!(asker.hello("asker")["type"], "ok");

    let burst = 10_001;
    asker.send_raw(&ask_lines(burst, 10_000, "victim", "q", None));
    let mut first_ask = None;
    for n in 0..burst {
        let answer = asker.read().expect("an answer to each ask");
        assert_eq!(answer["id"], 10_000 + n, "answers in request order");
        if n < MAX_PENDING_PER_PEER {
            assert_eq!(answer["type"], "ok", "{answer}");
            first_ask.get_or_insert_with(|| answer["result"]["ask_id"].clone());
        } else {
            assert_eq!(answer["code"], "too_many_asks", "{answer}");
        }
    }
    for n in 0..MAX_PENDING_PER_PEER {
        let pushed = victim
            .push_within(PROMPTLY)
            .unwrap_or_else(|| panic!("push {n} of {MAX_PENDING_PER_PEER} did not come"));
        assert_eq!(pushed["meta"]["kind"], "ask");
    }
    assert!(victim.push_within(Duration::from_millis(200)).is_none());

    // Still there, registered, answering.
    let peers = asker.request(json!({"op": "peers"}));
    assert_eq!(peers["result"]["peers"][0]["name"], "victim", "{peers}");
    let first_ask = first_ask.unwrap();
    victim.ok(
        "relay_reply",
        json!({"ask_id": first_ask, "text": "still here"}),
    );
    let reply = asker.read().expect("the reply");
    assert_eq!(reply["type"], "reply", "{reply}");
    assert_eq!(reply["ask_id"], first_ask);
    // A stopped hub has written every line it held.
    assert_eq!(relay.relay(&["hub", "stop"]).code, 0);
    assert!(!relay.logged("peer_dropped_not_reading", |_| true));
}

/// 2,000 connections that never say hello, held open: a session that starts meanwhile gets in
/// at once (each new connection takes the place of the oldest silent one past 256), and the
/// sessions already there are served.
#[test]
fn connections_that_never_say_hello_do_not_lock_sessions_out() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let silent: Vec<_> = (0..2000).map(|_| raw_connection(&relay)).collect();
    let started = Instant::now();
    let mut beta = relay.spawn_channel("beta", &[]);
    beta.initialize();
    relay.registered(&mut beta);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "beta got in after {took:?}");
    let asked = beta.ok("relay_ask", json!({"to": "alpha", "question": "in?"}));
    assert_eq!(alpha.push()["meta"]["ask_id"], asked["ask_id"]);
    let turned_away = turned_away(&silent);
    assert!(
        (2000 - 256..2000).contains(&turned_away),
        "{turned_away} of 2000 closed"
    );
}

/// Round trips between two channels: alpha asks, beta's push arrives, beta replies, alpha's push
/// arrives. Returns each trip's duration, sorted.
fn round_trips(alpha: &mut Channel, beta: &mut Channel, n: usize) -> Vec<Duration> {
    let mut trips = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let ask = alpha.send_call("relay_ask", json!({"to": beta.name, "question": "rt"}));
        let (_, question) = beta.push_of("ask");
        let reply = beta.send_call(
            "relay_reply",
            json!({"ask_id": question["meta"]["ask_id"], "text": "rt"}),
        );
        let (at, _) = alpha.push_of("reply");
        trips.push(at - started);
        alpha.outcome_ok(ask);
        beta.outcome_ok(reply);
    }
    trips.sort();
    trips
}

/// The nearest-rank p99 of sorted durations.
fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99).div_ceil(100) - 1]
}

/// A peer that has said hello and reads nothing more.
fn deaf_peer(relay: &World, name: &str) -> RawPeer {
    let mut peer = RawPeer::connect(relay);
    assert_eq!(peer.hello(name)["type"], "ok");
    peer
}

/// Sends 512 KiB questions to each of `targets` in turn until every one is refused (`peer_busy`,
/// or the asker's own limit); returns how many were accepted.
fn flood(asker: &mut RawPeer, targets: &[String]) -> usize {
    let big = "x".repeat(512 * 1024);
    let mut accepted = 0;
    let mut busy = vec![false; targets.len()];
    while busy.iter().any(|b| !b) {
        for (target, busy) in targets.iter().zip(busy.iter_mut()) {
            if *busy {
                continue;
            }
            let answer = asker
                .request(json!({"op": "ask", "to": target, "question": big, "timeout_secs": 600}));
            if answer["type"] == "ok" {
                accepted += 1;
                assert!(accepted < 10_000, "never refused");
            } else {
                assert_eq!(answer["code"], "peer_busy", "{answer}");
                *busy = true;
            }
        }
    }
    accepted
}

/// Sessions that stop reading while others ask them big questions: everyone else is served as
/// before, each is refused further asks past 16 MiB unread and dropped once it has taken nothing
/// for 15 s (never sooner), every ask pending on them fails for its asker, and the hub gives the
/// memory back once they are gone.
///
/// The round-trip bound is ten times the p99 measured before, plus 200 ms. The failure it guards
/// against, a hub that waits on a peer that does not read, costs seconds (up to the 15 s drop);
/// what it must tolerate costs milliseconds: two shared cores also running the other tests, debug
/// builds, and the hub parsing 512 KiB questions on its one thread while the flood goes on.
#[test]
fn sessions_that_stop_reading_do_not_slow_the_others() {
    let mut relay = World::new(bins!()).with_env("RELAY_LOG", "info");
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    let hub = relay.hub_pid().unwrap();
    let deaf: Vec<String> = (1..=4).map(|n| format!("deaf-{n}")).collect();
    let _deaf_peers: Vec<RawPeer> = deaf.iter().map(|name| deaf_peer(&relay, name)).collect();
    let mut asker = RawPeer::connect(&relay);
    assert_eq!(asker.hello("asker")["type"], "ok");

    round_trips(&mut alpha, &mut beta, 10);
    let baseline = p99(&round_trips(&mut alpha, &mut beta, 50));
    let rss_before = status_kib(hub, "VmRSS").unwrap();
    reset_peak_rss(hub);

    let flood_started = Instant::now();
    let flooding = thread::spawn({
        let deaf = deaf.clone();
        move || {
            let accepted = flood(&mut asker, &deaf);
            (asker, accepted, Instant::now())
        }
    });
    let during_flood = p99(&round_trips(&mut alpha, &mut beta, 50));
    let (mut asker, accepted, flood_ended) = flooding.join().unwrap();
    assert!(accepted * 512 * 1024 > deaf.len() * 16 * 1024 * 1024);
    let while_deaf = p99(&round_trips(&mut alpha, &mut beta, 50));
    let bound = baseline * 10 + Duration::from_millis(200);
    eprintln!(
        "round trip p99: {baseline:?} before, {during_flood:?} during the flood, {while_deaf:?} while \
         {} peers hold {accepted} unread questions (bound {bound:?})",
        deaf.len()
    );
    assert!(during_flood <= bound, "p99 {during_flood:?} > {bound:?}");
    assert!(while_deaf <= bound, "p99 {while_deaf:?} > {bound:?}");
    let peak = status_kib(hub, "VmHWM").unwrap();

    // Dropped once they took nothing for STALL, not before: the asker is told at that moment.
    asker.set_read_timeout(STALL + PROMPTLY);
    let first = asker.read().expect("the failures");
    let dropped_after = flood_started.elapsed();
    assert!(
        dropped_after >= STALL,
        "dropped {dropped_after:?} after the flood started, before {STALL:?} without reading"
    );
    eprintln!(
        "dropped {:?} after the flood ended",
        dropped_after - flood_ended.duration_since(flood_started)
    );
    let mut failures = vec![first];
    while failures.len() < accepted {
        failures.push(asker.read().expect("the failures"));
    }
    for event in failures {
        assert_eq!(event["type"], "ask_failed", "{event}");
        assert_eq!(event["code"], "peer_gone", "{event}");
    }
    assert_eq!(status(&relay)["peers"], 3, "only alpha, beta and the asker");
    // Still served.
    round_trips(&mut alpha, &mut beta, 5);

    // The memory comes back (the hub hands it to the system once such a connection closes).
    let near_baseline = rss_before + 8 * 1024;
    let back = poll_until(Duration::from_secs(5), || {
        status_kib(hub, "VmRSS").unwrap() <= near_baseline
    });
    let rss_after = status_kib(hub, "VmRSS").unwrap();
    eprintln!("hub VmRSS: {rss_before} KiB before, {peak} KiB peak, {rss_after} KiB after");
    assert!(
        back,
        "hub VmRSS {rss_after} KiB after the slow readers left, {rss_before} KiB before (peak {peak} KiB)"
    );
}

// The hub's memory under each abuse: `abuse_figures`, for docs/benchmarks.md.

/// One abuse's figures: the hub's VmRSS before it, its peak (VmHWM) during it, and VmRSS a few
/// seconds after the abusers are gone, in KiB; the limit that bounds it; what happened.
struct Figure {
    abuse: &'static str,
    limit: &'static str,
    before: u64,
    peak: u64,
    after: u64,
    /// How long a session's `peers` took to be answered at the height of the abuse.
    served_in: Duration,
    what_happened: String,
}

/// A fresh world and hub for one abuse, with a witness: a registered session that keeps the hub
/// from its idle exit and is asked for the peers at the height of the abuse.
struct Arena {
    relay: World,
    hub: u32,
    witness: RawPeer,
}

impl Arena {
    fn new() -> Arena {
        let mut relay = World::new(bins!()).with_env("RELAY_LOG", "info");
        let hub = relay.start_hub();
        let mut witness = RawPeer::connect(&relay);
        assert_eq!(witness.hello("witness")["type"], "ok");
        Arena {
            relay,
            hub,
            witness,
        }
    }

    /// VmRSS now, and the peak reset: the start of an abuse.
    fn before(&self) -> u64 {
        let rss = status_kib(self.hub, "VmRSS").unwrap();
        reset_peak_rss(self.hub);
        rss
    }

    /// How long the witness waits for the peers at this moment.
    fn witness_served(&mut self) -> Duration {
        let asked = Instant::now();
        let peers = self.witness.request(json!({"op": "peers"}));
        assert_eq!(peers["type"], "ok", "{peers}");
        asked.elapsed()
    }

    /// The peak since [`Arena::before`], then, once only `peers` sessions are registered
    /// (the witness among them) and 3 s more have passed, VmRSS.
    fn peak_and_after(&self, peers: u64) -> (u64, u64) {
        let peak = status_kib(self.hub, "VmHWM").unwrap();
        let settled = poll_until(STALL + PROMPTLY, || status(&self.relay)["peers"] == peers);
        assert!(settled, "the abusers did not leave");
        // The measure's definition of "after", not a synchronisation.
        thread::sleep(Duration::from_secs(3));
        (peak, status_kib(self.hub, "VmRSS").unwrap())
    }
}

/// A raw connection to the hub, for abusers whose writes the hub may refuse (unlike
/// [`RawPeer`], nothing here panics when the hub closes the connection).
fn raw_connection(relay: &World) -> std::os::unix::net::UnixStream {
    std::os::unix::net::UnixStream::connect(relay.socket()).expect("connect to the hub")
}

/// Says hello on `stream` and reads the answer; whether it was welcomed.
fn raw_hello(stream: &mut std::os::unix::net::UnixStream, name: &str) -> bool {
    use std::io::{BufRead, BufReader};
    let hello = json!({"id": 1, "op": "hello", "protocol": 2, "version": "test", "name": name, "pushes": "on"});
    if stream.write_all(format!("{hello}\n").as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    reader.read_line(&mut answer).is_ok()
        && serde_json::from_str::<Value>(&answer).is_ok_and(|a| a["type"] == "ok")
}

/// A registered peer that reads (and discards) everything sent to it, on its own thread, until
/// the returned stream is shut down.
fn reading_peer(relay: &World, name: &str) -> std::os::unix::net::UnixStream {
    let mut stream = raw_connection(relay);
    assert!(raw_hello(&mut stream, name));
    let mut reader = stream.try_clone().unwrap();
    thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    stream
}

/// 500 connections, each saying hello and then sending 1 MiB of a line without its end.
fn abuse_unfinished_lines() -> Figure {
    let mut arena = Arena::new();
    let before = arena.before();
    let line = {
        let mut line = br#"{"id":2,"op":"status","pad":""#.to_vec();
        line.resize(1024 * 1024 - 1, b'x');
        line
    };
    let mut holding = Vec::new();
    let mut closed = 0;
    for n in 0..500 {
        let mut stream = raw_connection(&arena.relay);
        assert!(raw_hello(&mut stream, &format!("partial-{n}")));
        if stream.write_all(&line).is_ok() {
            holding.push(stream);
        } else {
            closed += 1;
        }
    }
    let served_in = arena.witness_served();
    drop(holding);
    let (peak, after) = arena.peak_and_after(1);
    Figure {
        abuse: "500 connections, each holding an unfinished 1 MiB line",
        limit: "a line ≤ 1 MiB, unfinished ≤ 10 s, all unfinished lines ≤ 64 MiB together",
        before,
        peak,
        after,
        served_in,
        what_happened: format!(
            "{} held their line, {closed} were closed with `bad_msg` (over the 64 MiB)",
            500 - closed
        ),
    }
}

/// 100 peers that say hello and never read, sent 512 KiB questions until every ask is refused.
fn abuse_slow_readers() -> Figure {
    let mut arena = Arena::new();
    let deaf: Vec<String> = (1..=100).map(|n| format!("deaf-{n}")).collect();
    let deaf_peers: Vec<RawPeer> = deaf
        .iter()
        .map(|name| deaf_peer(&arena.relay, name))
        .collect();
    let mut asker = RawPeer::connect(&arena.relay);
    assert_eq!(asker.hello("asker")["type"], "ok");
    let before = arena.before();
    let accepted = flood(&mut asker, &deaf);
    let served_in = arena.witness_served();
    let flooded = Instant::now();
    // The hub drops them for not reading; the asker is told of each ask.
    asker.set_read_timeout(STALL + PROMPTLY);
    for _ in 0..accepted {
        assert_eq!(asker.read().expect("a failure")["code"], "peer_gone");
    }
    let dropped_in = flooded.elapsed();
    drop(deaf_peers);
    drop(asker);
    let (peak, after) = arena.peak_and_after(1);
    Figure {
        abuse: "100 peers that never read, sent 512 KiB questions",
        limit: "16 MiB unread per peer, 256 MiB for all (`peer_busy`); a peer that takes nothing for 15 s is dropped",
        before,
        peak,
        after,
        served_in,
        what_happened: format!(
            "{accepted} questions accepted ({} MiB), the rest refused with `peer_busy`; the peers dropped {:.1} s after the flood",
            accepted / 2,
            dropped_in.as_secs_f64()
        ),
    }
}

/// 400 asks whose `thread_id` has the most characters allowed (128), to a peer that reads them
/// and never answers, so that all 400 stay pending.
fn abuse_thread_ids() -> Figure {
    let mut arena = Arena::new();
    let target = reading_peer(&arena.relay, "target");
    let mut asker = RawPeer::connect(&arena.relay);
    assert_eq!(asker.hello("asker")["type"], "ok");
    let too_long = asker.request(json!({"op": "ask", "to": "target", "question": "q", "timeout_secs": 600, "thread_id": "t".repeat(129)}));
    assert_eq!(too_long["code"], "bad_args", "{too_long}");
    let before = arena.before();
    asker.send_raw(&ask_lines(400, 100, "target", "q", Some(&"t".repeat(128))));
    for _ in 0..400 {
        assert_eq!(asker.read().expect("an answer")["type"], "ok");
    }
    let served_in = arena.witness_served();
    drop(asker);
    target.shutdown(std::net::Shutdown::Both).unwrap();
    let (peak, after) = arena.peak_and_after(1);
    Figure {
        abuse: "400 asks with the longest `thread_id` allowed, pending",
        limit: "`thread_id` ≤ 128 characters (`bad_args`); 4,096 asks pending per peer",
        before,
        peak,
        after,
        served_in,
        what_happened: "all 400 accepted; a 129-character `thread_id` is refused".into(),
    }
}

/// 10,001 tiny asks in one write at one peer, which reads them all.
fn abuse_burst() -> Figure {
    let mut arena = Arena::new();
    let target = reading_peer(&arena.relay, "target");
    let mut asker = RawPeer::connect(&arena.relay);
    assert_eq!(asker.hello("asker")["type"], "ok");
    let before = arena.before();
    asker.send_raw(&ask_lines(10_001, 100, "target", "q", None));
    let mut refused = 0;
    for _ in 0..10_001 {
        if asker.read().expect("an answer")["code"] == "too_many_asks" {
            refused += 1;
        }
    }
    let served_in = arena.witness_served();
    let peers = arena.witness.request(json!({"op": "peers"}));
    let target_stayed = peers["result"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|peer| peer["name"] == "target");
    drop(asker);
    target.shutdown(std::net::Shutdown::Both).unwrap();
    let (peak, after) = arena.peak_and_after(1);
    Figure {
        abuse: "10,001 asks in one write at one peer",
        limit: "4,096 asks pending per peer (`too_many_asks`); a peer that reads is never dropped",
        before,
        peak,
        after,
        served_in,
        what_happened: format!(
            "{} accepted, {refused} refused with `too_many_asks`; the target {}",
            10_001 - refused,
            if target_stayed {
                "stayed"
            } else {
                "was dropped"
            }
        ),
    }
}

/// How many of `connections` the hub has answered and closed: each turned away gets one line
/// and the end of the stream, which it has by now or within a moment.
fn turned_away(connections: &[std::os::unix::net::UnixStream]) -> usize {
    connections
        .iter()
        .filter(|stream| {
            stream
                .set_read_timeout(Some(Duration::from_millis(1)))
                .unwrap();
            let mut all = Vec::new();
            // Err: nothing more within the moment, i.e. still open.
            (&**stream).read_to_end(&mut all).is_ok()
        })
        .count()
}

/// 2,000 connections that never say hello, held open.
fn abuse_silent_connections() -> Figure {
    let mut arena = Arena::new();
    let before = arena.before();
    let silent: Vec<_> = (0..2000).map(|_| raw_connection(&arena.relay)).collect();
    let served_in = arena.witness_served();
    let refused = turned_away(&silent);
    // A session that says hello now.
    let mut newcomer = raw_connection(&arena.relay);
    let welcomed = raw_hello(&mut newcomer, "newcomer");
    drop(newcomer);
    drop(silent);
    let (peak, after) = arena.peak_and_after(1);
    Figure {
        abuse: "2,000 connections that never say hello",
        limit: "256 connections without hello (past it, each new one closes the oldest), each closed after 5 s",
        before,
        peak,
        after,
        served_in,
        what_happened: format!(
            "{} held, {refused} closed to make room; a new session saying hello meanwhile was {}",
            2000 - refused,
            if welcomed { "welcomed" } else { "refused" }
        ),
    }
}

/// Measures the hub's memory under each abuse and prints the table of docs/benchmarks.md. Run
/// against release builds: `cargo test --release --test chaos -- --ignored --nocapture abuse_figures`.
#[test]
#[ignore = "measures for docs/benchmarks.md; run with --release --ignored --nocapture"]
fn abuse_figures() {
    let figures = [
        abuse_unfinished_lines(),
        abuse_slow_readers(),
        abuse_thread_ids(),
        abuse_burst(),
        abuse_silent_connections(),
    ];
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    println!(
        "\nhub VmRSS under abuse ({} build of the binaries)\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "| abuse | before | peak | after | a session's `peers` at the peak | limit | what happened |"
    );
    println!("|---|--:|--:|--:|--:|---|---|");
    for figure in &figures {
        println!(
            "| {} | {} | {} | {} | {:.1} ms | {} | {} |",
            figure.abuse,
            mib(figure.before),
            mib(figure.peak),
            mib(figure.after),
            figure.served_in.as_secs_f64() * 1000.0,
            figure.limit,
            figure.what_happened
        );
    }
}
