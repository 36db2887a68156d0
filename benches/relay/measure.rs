//! What the bench measures and how: the kernel floors, round trips, command-line runs, channel
//! starts, broadcasts, and the memory and CPU they leave behind. Each phase returns raw samples
//! and readings; `report` formats them.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use testkit::{Channel, KillOnDrop, PROMPTLY, World, mcp::JsonLines};

use crate::procfs::{Mem, cpu_ns, mem};

/// The longest any single expected event may take before the bench gives up.
const WAIT: Duration = PROMPTLY;

/// Iterations of each floor measurement (after as many warm-up rounds as `FLOOR_WARMUP`).
pub const FLOOR_WARMUP: usize = 1_000;
pub const FLOOR_ITERS: usize = 10_000;
/// Iterations of the harness floor, which costs a thread hop per message.
pub const HARNESS_ITERS: usize = 2_000;
/// Size of one floor message, about that of a short relay line.
const FLOOR_MSG_BYTES: usize = 128;

pub const RT_WARMUP: usize = 100;
pub const RT_ITERS: usize = 1_000;
/// Hub CPU is also read per batch of this many round trips, to show its spread.
pub const RT_BATCH: usize = 100;

pub const START_WARMUP: usize = 3;
pub const START_ITERS: usize = 100;

/// Runs of each `relay` command-line measurement (whole processes).
const CLI_WARMUP: usize = 3;
pub const CLI_ITERS: usize = 50;
/// How often a command-line run is checked for its exit: finely, since its exit is what is
/// timed.
const EXIT_POLL: Duration = Duration::from_micros(200);

/// Broadcast fan-out sizes as (recipients, warm-up rounds, measured rounds).
pub const FANOUTS: [(usize, usize, usize); 2] = [(20, 10, 200), (200, 5, 50)];

/// How long a process is left alone before its memory is read, so start-up garbage settles.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The hub leaves this long after its last peer: a safety net should the bench die unkillably.
pub const HUB_IDLE_SECS: &str = "30";

/// A temporary world for one phase: channels log at `warn`, their pushes are on (the kit's
/// default), and the hub they start leaves [`HUB_IDLE_SECS`] after its last peer.
pub fn world() -> World {
    World::new(testkit::bins!())
        .with_env("RELAY_LOG", "warn")
        .with_env("RELAY_HUB_IDLE_SECS", HUB_IDLE_SECS)
}

/// Everything one run measured.
pub struct Results {
    pub floors: Floors,
    pub round_trips: RoundTrips,
    pub starts: Starts,
    pub command_line: CommandLine,
    pub fanouts: Vec<Fanout>,
    pub idle_warn: Mem,
    pub idle_info: Mem,
    /// A channel after the round trips, idle again.
    pub busy_channel: Mem,
    /// Hubs federated through a NATS server, when one could be run.
    pub federated: Option<crate::federation::Federated>,
    /// The hub beside a minimal forwarder, and its system calls.
    pub hub_floor: crate::floor::HubFloor,
    /// A thousand sessions on one hub.
    pub thousand: crate::thousand::Thousand,
}

// ---------------------------------------------------------------------------------------------
// Samples

/// Latencies of one measurement, kept whole so any percentile can be read.
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Runs `once` `warmup` times unrecorded, then `iters` times recorded. `once` returns the
    /// duration of its own critical section, so set-up and draining stay out of the figure.
    pub fn collect(warmup: usize, iters: usize, mut once: impl FnMut() -> Duration) -> Samples {
        for _ in 0..warmup {
            once();
        }
        Samples((0..iters).map(|_| once()).collect())
    }

    /// Nearest-rank percentile, `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Floors

/// What the kernel alone costs, so the relay's figures can be read as multiples of it.
pub struct Floors {
    /// A message over a connected Unix socket pair and back (two threads).
    pub unix: Samples,
    /// A line through `cat`'s stdin and back out of its stdout.
    pub pipe: Samples,
    /// The same through the kit's reader thread and queue, as every relay figure is.
    pub harness: Samples,
}

impl Floors {
    pub fn measure() -> Floors {
        Floors {
            unix: unix_socket_floor(),
            pipe: pipe_floor(),
            harness: harness_pipe_floor(),
        }
    }
}

fn unix_socket_floor() -> Samples {
    let (mut near, mut far) = UnixStream::pair().expect("socket pair");
    near.set_read_timeout(Some(WAIT)).unwrap();
    far.set_read_timeout(Some(WAIT)).unwrap();
    // The echo ends when `near` closes (or after WAIT of silence).
    let echo = thread::spawn(move || {
        let mut buf = [0u8; FLOOR_MSG_BYTES];
        while far.read_exact(&mut buf).is_ok() && far.write_all(&buf).is_ok() {}
    });
    let message = [b'x'; FLOOR_MSG_BYTES];
    let mut buf = [0u8; FLOOR_MSG_BYTES];
    let samples = Samples::collect(FLOOR_WARMUP, FLOOR_ITERS, || {
        let start = Instant::now();
        near.write_all(&message).expect("socket write");
        near.read_exact(&mut buf).expect("socket echo");
        start.elapsed()
    });
    drop(near);
    echo.join().expect("echo thread");
    samples
}

fn pipe_floor() -> Samples {
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cat");
    let mut stdin = cat.stdin.take().unwrap();
    let mut stdout = BufReader::new(cat.stdout.take().unwrap());
    // Pipes have no read timeout: a watchdog kills `cat` (by its handle) when the measurement
    // is done or overdue, which also ends a stuck read with end of file.
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        let _ = finished.recv_timeout(Duration::from_secs(60));
        let _ = cat.kill();
        let _ = cat.wait();
    });
    let line = format!("{}\n", "x".repeat(FLOOR_MSG_BYTES - 1));
    let mut echoed = String::new();
    let samples = Samples::collect(FLOOR_WARMUP, FLOOR_ITERS, || {
        echoed.clear();
        let start = Instant::now();
        stdin.write_all(line.as_bytes()).expect("pipe write");
        let read = stdout.read_line(&mut echoed).expect("pipe read");
        let elapsed = start.elapsed();
        assert_eq!(read, line.len(), "cat echoed the line whole");
        elapsed
    });
    drop(done);
    watchdog.join().expect("watchdog thread");
    samples
}

fn harness_pipe_floor() -> Samples {
    let mut command = Command::new("cat");
    command.stderr(Stdio::null());
    let mut cat = JsonLines::spawn(command, "cat");
    let mut n = 0u64;
    Samples::collect(FLOOR_WARMUP, HARNESS_ITERS, || {
        n += 1;
        let start = Instant::now();
        cat.send(&json!({ "n": n, "pad": "x".repeat(100) }));
        let (arrived, _) = cat.take("the echo", |line| line["n"] == n);
        arrived - start
    })
}

// ---------------------------------------------------------------------------------------------
// Channels

/// Memory of a channel after a handshake and a few tool calls, left idle for [`SETTLE`].
pub fn idle_channel_memory(world: &mut World, name: &str, log_level: &str) -> Mem {
    let mut channel = world.spawn_channel(name, &[("RELAY_LOG", log_level)]);
    channel.initialize();
    world.registered(&mut channel);
    let tools = channel.request("tools/list", json!({}));
    assert!(tools.get("error").is_none(), "tools/list failed: {tools}");
    for _ in 0..3 {
        channel.ok("relay_peers", json!({}));
    }
    channel.err("relay_ask", json!({"to": "nobody-here", "question": "?"}));
    channel.ok(
        "relay_rename",
        json!({"new_name": format!("{name}-renamed")}),
    );
    thread::sleep(SETTLE);
    mem(channel.pid())
}

/// Ask, push, reply, push between two channels, with the CPU it cost.
pub struct RoundTrips {
    pub latency: Samples,
    /// Hub CPU over all round trips, divided by their number.
    pub hub_cpu_per_rt: Duration,
    /// The same per batch of [`RT_BATCH`] round trips, to show how much it wanders.
    pub hub_cpu_batches: Samples,
    /// CPU of both channels together, over all round trips, divided by their number.
    pub channels_cpu_per_rt: Duration,
}

impl RoundTrips {
    pub fn measure(world: &World, alpha: &mut Channel, beta: &mut Channel) -> RoundTrips {
        for _ in 0..RT_WARMUP {
            round_trip(alpha, beta);
        }
        let hub = world.hub_pid().expect("the hub runs");
        let channels_cpu = |a: &Channel, b: &Channel| cpu_ns(a.pid()) + cpu_ns(b.pid());
        let (hub_start, channels_start) = (cpu_ns(hub), channels_cpu(alpha, beta));
        let mut latency = Vec::with_capacity(RT_ITERS);
        let mut hub_cpu_batches = Vec::new();
        for _ in 0..RT_ITERS / RT_BATCH {
            let batch_start = cpu_ns(hub);
            latency.extend((0..RT_BATCH).map(|_| round_trip(alpha, beta)));
            hub_cpu_batches.push(per_round_trip(cpu_ns(hub) - batch_start, RT_BATCH));
        }
        let measured = latency.len();
        RoundTrips {
            latency: Samples(latency),
            hub_cpu_per_rt: per_round_trip(cpu_ns(hub) - hub_start, measured),
            hub_cpu_batches: Samples(hub_cpu_batches),
            channels_cpu_per_rt: per_round_trip(
                channels_cpu(alpha, beta) - channels_start,
                measured,
            ),
        }
    }
}

fn per_round_trip(cpu_ns: u64, round_trips: usize) -> Duration {
    Duration::from_nanos(cpu_ns / round_trips as u64)
}

/// One round trip: `asker` calls relay_ask; the answerer's push arrives; it calls relay_reply;
/// the asker's reply push arrives. Timed from the relay_ask write to the reading of the reply
/// push. The two tool results are drained afterwards, outside the timing.
pub fn round_trip(asker: &mut Channel, answerer: &mut Channel) -> Duration {
    let start = Instant::now();
    let ask = asker.send_call(
        "relay_ask",
        json!({"to": answerer.name, "question": "ping?", "timeout_secs": 60}),
    );
    let (_, question) = answerer.push_of("ask");
    let ask_id = question["meta"]["ask_id"].clone();
    let reply = answerer.send_call("relay_reply", json!({"ask_id": ask_id, "text": "pong"}));
    let (arrived, answer) = asker.push_of("reply");
    assert_eq!(
        answer["meta"]["ask_id"], ask_id,
        "the reply answers the ask"
    );
    asker.outcome_ok(ask);
    answerer.outcome_ok(reply);
    arrived - start
}

/// Time to a usable channel with a hub already running.
pub struct Starts {
    /// Spawn to the answer of the first tools/list (after initialize).
    pub tools_list: Samples,
    /// Spawn to the answer of the first relay_peers, which needs the hub registration.
    pub registered: Samples,
}

impl Starts {
    pub fn measure(world: &World) -> Starts {
        let mut tools_list = Vec::new();
        let mut registered = Vec::new();
        for n in 0..START_WARMUP + START_ITERS {
            let (listed, peers) = start_once(world, &format!("start-{n}"));
            if n >= START_WARMUP {
                tools_list.push(listed);
                registered.push(peers);
            }
        }
        Starts {
            tools_list: Samples(tools_list),
            registered: Samples(registered),
        }
    }
}

/// Spawns a channel, initializes it, lists its tools, asks for peers, and kills it.
fn start_once(world: &World, name: &str) -> (Duration, Duration) {
    let began = Instant::now();
    let mut channel = world.spawn_channel(name, &[]);
    let init = channel.start_initialize();
    channel.finish_initialize(init);
    let list = channel.send_request("tools/list", json!({}));
    let (listed, tools) = channel.response(list);
    assert_eq!(tools["result"]["tools"].as_array().map(Vec::len), Some(6));
    let peers = channel.send_call("relay_peers", json!({}));
    let (registered, answer) = channel.response(peers);
    assert!(
        answer.get("error").is_none(),
        "relay_peers failed: {answer}"
    );
    (listed - began, registered - began)
}

// ---------------------------------------------------------------------------------------------
// The command line

/// The `relay` command line as a shell user or a script waits for it: whole processes, start-up
/// included, read against what spawning any process costs.
pub struct CommandLine {
    /// Spawn to exit of `/bin/true`.
    pub process_floor: Samples,
    /// `relay status --json` against the running hub.
    pub status: Samples,
    /// `relay ask beta …`, beta replying as soon as the question is pushed.
    pub ask: Samples,
}

impl CommandLine {
    pub fn measure(world: &World, beta: &mut Channel) -> CommandLine {
        let process_floor = Samples::collect(CLI_WARMUP, CLI_ITERS, || {
            let began = Instant::now();
            run_to_success(Command::new("true"), "true");
            began.elapsed()
        });
        let status = Samples::collect(CLI_WARMUP, CLI_ITERS, || {
            let began = Instant::now();
            run_to_success(relay_command(world, &["status", "--json"]), "relay status");
            began.elapsed()
        });
        let ask = Samples::collect(CLI_WARMUP, CLI_ITERS, || {
            let began = Instant::now();
            let mut command = relay_command(world, &["ask", "beta", "ping?"]);
            let asking = KillOnDrop::spawn(command.stdout(Stdio::null()), "relay ask");
            let (_, question) = beta.push_of("ask");
            beta.ok(
                "relay_reply",
                json!({"ask_id": question["meta"]["ask_id"], "text": "pong"}),
            );
            wait_success(asking, "relay ask");
            began.elapsed()
        });
        CommandLine {
            process_floor,
            status,
            ask,
        }
    }
}

/// A `relay` command line in `world` with none of the channels' settings: only its HOME and
/// data directory, as a user's shell would have.
fn relay_command(world: &World, args: &[&str]) -> Command {
    let mut command = world.base_command(world.bins().relay, world.dir.path());
    command.args(args);
    command
}

/// Runs `command` to its end, which must be a success within [`WAIT`].
fn run_to_success(mut command: Command, what: &str) {
    let child = KillOnDrop::spawn(command.stdout(Stdio::null()), what);
    wait_success(child, what);
}

fn wait_success(mut child: KillOnDrop, what: &str) {
    let status = child
        .wait_within(WAIT, EXIT_POLL)
        .unwrap_or_else(|| panic!("{what} did not end within {WAIT:?}"));
    assert!(status.success(), "{what} exited with {status}");
}

// ---------------------------------------------------------------------------------------------
// Broadcasts

/// One broadcast size: latencies, and the memory of the hub and of the recipients.
pub struct Fanout {
    pub recipients: usize,
    /// relay_broadcast written to the last recipient's push read.
    pub delivered: Samples,
    /// First relay_reply written to the last reply push read at the asker.
    pub gathered: Samples,
    /// relay_broadcast written to the last reply push read at the asker.
    pub total: Samples,
    pub hub_connected: Mem,
    pub hub_after: Mem,
    /// Median recipient channel, after its broadcasts, idle.
    pub channel_median: Mem,
}

impl Fanout {
    /// Measures in a world of its own, so that the hub's memory "connected" is that of a fresh
    /// hub with exactly these peers, and "after" reflects only these broadcasts.
    pub fn measure(recipients: usize, warmup: usize, iters: usize) -> Fanout {
        let mut world = world();
        let mut asker = world.channel("asker");
        let mut fleet = start_fleet(&world, &mut asker, recipients);
        let hub = world.hub_pid().expect("the hub runs");
        Fanout::broadcasts(hub, &mut asker, &mut fleet, warmup, iters)
    }

    /// `warmup` then `iters` broadcasts from `asker` to `fleet`, every recipient registered,
    /// with the memory of the hub `hub` before and after.
    pub fn broadcasts(
        hub: u32,
        asker: &mut Channel,
        fleet: &mut [Channel],
        warmup: usize,
        iters: usize,
    ) -> Fanout {
        thread::sleep(SETTLE);
        let hub_connected = mem(hub);
        for _ in 0..warmup {
            broadcast_once(asker, fleet);
        }
        let rounds: Vec<_> = (0..iters).map(|_| broadcast_once(asker, fleet)).collect();
        thread::sleep(SETTLE);
        let mut channels: Vec<Mem> = fleet.iter().map(|c| mem(c.pid())).collect();
        channels.sort_by_key(|m| m.rss);
        Fanout {
            recipients: fleet.len(),
            delivered: Samples(rounds.iter().map(|r| r.0).collect()),
            gathered: Samples(rounds.iter().map(|r| r.1).collect()),
            total: Samples(rounds.iter().map(|r| r.2).collect()),
            hub_connected,
            hub_after: mem(hub),
            channel_median: channels[channels.len() / 2],
        }
    }
}

/// Starts `size` channels at once (all handshakes in flight together), then waits until the
/// asker sees exactly `size` peers, so that every one of them receives the broadcasts.
fn start_fleet(world: &World, asker: &mut Channel, size: usize) -> Vec<Channel> {
    let fleet = spawn_fleet(world, "peer", size);
    wait_for_peers(asker, size);
    fleet
}

/// Starts `size` channels named `PREFIX-NNN` in `world` at once (all handshakes in flight
/// together).
pub fn spawn_fleet(world: &World, prefix: &str, size: usize) -> Vec<Channel> {
    let mut fleet: Vec<Channel> = (0..size)
        .map(|n| world.spawn_channel(&format!("{prefix}-{n:03}"), &[]))
        .collect();
    let handshakes: Vec<u64> = fleet.iter_mut().map(Channel::start_initialize).collect();
    for (channel, id) in fleet.iter_mut().zip(handshakes) {
        channel.finish_initialize(id);
    }
    fleet
}

/// Waits until `asker` sees exactly `count` peers.
///
/// The recipients never call relay_peers themselves: a 200-peer answer would raise their heap
/// high-water mark and with it the recipient RSS measured later. So registration, which has no
/// event the asker could wait on, is polled through the asker.
pub fn wait_for_peers(asker: &mut Channel, count: usize) {
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let peers = asker.ok("relay_peers", json!({}));
        let seen = peers["peers"].as_array().map_or(0, Vec::len);
        if seen == count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{seen} peers registered, not {count}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// One broadcast from `asker` to every channel of `fleet`, each of which replies at once.
/// Returns (delivered, gathered, total) as documented on [`Fanout`].
fn broadcast_once(asker: &mut Channel, fleet: &mut [Channel]) -> (Duration, Duration, Duration) {
    let start = Instant::now();
    let call = asker.send_call(
        "relay_broadcast",
        json!({"question": "status?", "timeout_secs": 60}),
    );
    let mut last_push = start;
    let ask_ids = asks_pushed(fleet, &mut last_push);
    let replies_start = Instant::now();
    let calls = reply_to_each(fleet, &ask_ids);
    let last_reply = last_reply_push(asker, fleet.len(), replies_start);
    let sent = asker.outcome_ok(call);
    assert_eq!(sent["peer_count"], fleet.len(), "every peer was asked");
    for (peer, id) in fleet.iter_mut().zip(calls) {
        peer.outcome_ok(id);
    }
    (
        last_push - start,
        last_reply - replies_start,
        last_reply - start,
    )
}

/// The broadcast's question as each channel of `fleet` got it pushed: its ask ids, with
/// `last_push` moved to the latest push's arrival.
pub fn asks_pushed(fleet: &mut [Channel], last_push: &mut Instant) -> Vec<Value> {
    fleet
        .iter_mut()
        .map(|peer| {
            let (at, question) = peer.push_of("ask");
            *last_push = (*last_push).max(at);
            question["meta"]["ask_id"].clone()
        })
        .collect()
}

/// Each channel of `fleet` calls relay_reply to its ask of `ask_ids`; the calls' ids.
pub fn reply_to_each(fleet: &mut [Channel], ask_ids: &[Value]) -> Vec<u64> {
    fleet
        .iter_mut()
        .zip(ask_ids)
        .map(|(peer, ask_id)| {
            peer.send_call("relay_reply", json!({"ask_id": ask_id, "text": "ok"}))
        })
        .collect()
}

/// Reads `count` reply pushes at `asker`; when the last of them arrived (`since` at the
/// earliest).
pub fn last_reply_push(asker: &mut Channel, count: usize, since: Instant) -> Instant {
    (0..count).fold(since, |last, _| last.max(asker.push_of("reply").0))
}
