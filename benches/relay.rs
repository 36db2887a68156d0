//! End-to-end benchmark of claude-relay: real release-built `relay-channel` processes driven over
//! stdio, the `relay-hub` they start, and the kernel floors they sit on.
//!
//! Run with `cargo bench --bench relay`; set `RELAY_BENCH_OUT=some/file.md` to also get the
//! results as markdown. `docs/benchmarks.md` explains every figure and how it is taken.
//!
//! Everything runs in a temporary `CLAUDE_PLUGIN_DATA` and `HOME`, never the real ones. Every
//! process started here is killed by pid when its owner drops (also when a phase panics); the hub,
//! which daemonizes and so is nobody's child, is killed by the pid in `hub.lock`, and only after
//! checking that this pid is alive and runs in the temporary data directory. Every wait is
//! bounded.

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const CHANNEL_EXE: &str = env!("CARGO_BIN_EXE_relay-channel");

/// The longest any single expected event may take before the bench gives up.
const WAIT: Duration = Duration::from_secs(10);

/// Iterations of each floor measurement (after as many warm-up rounds as `FLOOR_WARMUP`).
const FLOOR_WARMUP: usize = 1_000;
const FLOOR_ITERS: usize = 10_000;
/// Iterations of the harness floor, which costs a thread hop per message.
const HARNESS_ITERS: usize = 2_000;
/// Size of one floor message, about that of a short relay line.
const FLOOR_MSG_BYTES: usize = 128;

const RT_WARMUP: usize = 100;
const RT_ITERS: usize = 1_000;
/// Hub CPU is also read per batch of this many round trips, to show its spread.
const RT_BATCH: usize = 100;

const START_WARMUP: usize = 3;
const START_ITERS: usize = 100;

/// Runs of each `relay` command-line measurement (whole processes).
const CLI_WARMUP: usize = 3;
const CLI_ITERS: usize = 50;

/// Broadcast fan-out sizes as (recipients, warm-up rounds, measured rounds).
const FANOUTS: [(usize, usize, usize); 2] = [(20, 10, 200), (200, 5, 50)];

/// How long a process is left alone before its memory is read, so start-up garbage settles.
const SETTLE: Duration = Duration::from_secs(1);

/// The hub leaves this long after its last peer: a safety net should the bench die unkillably.
const HUB_IDLE_SECS: &str = "30";

/// The targets claude-relay sets itself.
const TARGET_CHANNEL_RSS: u64 = 4 * MIB;
const TARGET_HUB_RSS_200: u64 = 8 * MIB;
const TARGET_HUB_CPU_PER_RT: Duration = Duration::from_micros(20);
const TARGET_START: Duration = Duration::from_millis(10);

/// Figures of other implementations, quoted for comparison only (not measured here).
const REFERENCES: [(&str, &str, &str, &str, &str); 2] = [
    (
        "original TypeScript relay",
        "66 MiB",
        "46 MiB (20 peers)",
        "1.6 ms",
        "0.3 s",
    ),
    ("a Rust peer project", "13 MiB", "-", "-", "13 ms"),
];

const MIB: u64 = 1024 * 1024;

fn main() {
    let began = Instant::now();
    println!("claude-relay benchmark: {CHANNEL_EXE}");
    let machine = Machine::describe();
    println!("{}\n", machine.summary());

    println!("measuring floors ...");
    let floors = Floors::measure();

    let world = World::new();
    let mut alpha = world.channel("alpha");
    let mut beta = world.channel("beta");
    println!(
        "hub pid {} serving {}",
        world.hub_pid().expect("a hub runs"),
        world.data.display()
    );

    println!("measuring idle channel memory ...");
    let idle_warn = idle_channel_memory(&world, "idle-warn", "warn");
    let idle_info = idle_channel_memory(&world, "idle-info", "info");

    println!("measuring {RT_ITERS} round trips ...");
    let round_trips = RoundTrips::measure(&world, &mut alpha, &mut beta);
    thread::sleep(SETTLE);
    let busy_channel = mem(alpha.pid());

    println!("measuring {START_ITERS} channel starts ...");
    let starts = Starts::measure(&world);

    println!("measuring {CLI_ITERS} runs of each relay command ...");
    let command_line = CommandLine::measure(&world, &mut beta);
    drop((alpha, beta, world));

    let fanouts: Vec<Fanout> = FANOUTS
        .iter()
        .map(|&(recipients, warmup, iters)| {
            println!("measuring broadcast fan-out to {recipients} peers ...");
            Fanout::measure(recipients, warmup, iters)
        })
        .collect();

    let report = Report::build(&Results {
        floors,
        round_trips,
        starts,
        command_line,
        fanouts,
        idle_warn,
        idle_info,
        busy_channel,
    });
    println!("\n{}", report.text(&machine));
    if let Some(path) = std::env::var_os("RELAY_BENCH_OUT") {
        fs::write(&path, report.markdown(&machine)).expect("write RELAY_BENCH_OUT");
        println!("markdown written to {}", Path::new(&path).display());
    }
    println!(
        "bench took {:.0} s; load average at the end {}",
        began.elapsed().as_secs_f64(),
        load_average()
    );
}

// ---------------------------------------------------------------------------------------------
// Samples

/// Latencies of one measurement, kept whole so any percentile can be read.
struct Samples(Vec<Duration>);

impl Samples {
    /// Runs `once` `warmup` times unrecorded, then `iters` times recorded. `once` returns the
    /// duration of its own critical section, so set-up and draining stay out of the figure.
    fn collect(warmup: usize, iters: usize, mut once: impl FnMut() -> Duration) -> Samples {
        for _ in 0..warmup {
            once();
        }
        Samples((0..iters).map(|_| once()).collect())
    }

    /// Nearest-rank percentile, `p` in 0..=100.
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Floors

/// What the kernel alone costs, so the relay's figures can be read as multiples of it.
struct Floors {
    /// A message over a connected Unix socket pair and back (two threads).
    unix: Samples,
    /// A line through `cat`'s stdin and back out of its stdout.
    pipe: Samples,
    /// The same through this bench's own reader thread and queue, as every relay figure is.
    harness: Samples,
}

impl Floors {
    fn measure() -> Floors {
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
    let mut cat = LineProc::spawn(command, "cat");
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
// Processes

/// A child with piped stdio whose stdout lines a reader thread parses as JSON and timestamps the
/// moment they are read, so that a latency never includes the time the main thread takes to get
/// round to a message (which matters when 200 channels answer at once).
struct LineProc {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<(Instant, Value)>,
    /// Lines read but not yet asked for, oldest first.
    pending: VecDeque<(Instant, Value)>,
}

impl LineProc {
    fn spawn(mut command: Command, name: &str) -> LineProc {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // The reader ends at end of file, i.e. when the child dies.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send((at, value)).is_err() {
                    break;
                }
            }
        });
        LineProc {
            name: name.to_owned(),
            stdin: child.stdin.take().unwrap(),
            child,
            lines,
            pending: VecDeque::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `message` as one line with a single `write`, as a real client would.
    fn send(&mut self, message: &Value) {
        let line = format!("{message}\n");
        self.stdin
            .write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("{}: write: {e}", self.name));
    }

    /// The first line (already read or still to come) that is `wanted`, with the instant it was
    /// read. Other lines are kept for later. Panics after [`WAIT`].
    fn take(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> (Instant, Value) {
        if let Some(index) = self.pending.iter().position(|(_, line)| wanted(line)) {
            return self.pending.remove(index).unwrap();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if wanted(&line) => return (at, line),
                Ok(other) => self.pending.push_back(other),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: no {what} within {WAIT:?}", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: stdout closed while waiting for {what}", self.name)
                }
            }
        }
    }
}

impl Drop for LineProc {
    /// Kills the child by its pid (`Child::kill`) and reaps it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `relay-channel` process and a minimal MCP client on its stdio.
struct Channel {
    /// The name the hub registered (the wanted one until registration).
    name: String,
    proc: LineProc,
    next_id: u64,
}

impl Channel {
    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Sends a JSON-RPC request without waiting; returns its id.
    fn send_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.proc
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The response to request `id`, with the instant it was read.
    fn response(&mut self, id: u64) -> (Instant, Value) {
        let (at, message) = self.proc.take("response", |m| m["id"] == id);
        assert!(
            message.get("error").is_none(),
            "{}: request failed: {message}",
            self.name
        );
        (at, message)
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id).1
    }

    /// Starts the MCP handshake (the answer is read with [`Channel::finish_initialize`]).
    fn start_initialize(&mut self) -> u64 {
        self.send_request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "relay-bench", "version": "0"}}),
        )
    }

    fn finish_initialize(&mut self, id: u64) -> Instant {
        let (at, _) = self.response(id);
        self.proc
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        at
    }

    fn initialize(&mut self) {
        let id = self.start_initialize();
        self.finish_initialize(id);
    }

    fn send_call(&mut self, tool: &str, arguments: Value) -> u64 {
        self.send_request("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// The JSON body of the tool call `id`, which must have succeeded.
    fn tool_ok(&mut self, id: u64) -> Value {
        let (_, response) = self.response(id);
        let result = &response["result"];
        assert!(
            result["isError"] != true,
            "{}: tool call failed: {response}",
            self.name
        );
        let text = result["content"][0]["text"].as_str().unwrap_or("null");
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let id = self.send_call(tool, arguments);
        self.tool_ok(id)
    }

    /// Calls a tool that is expected to fail, only for the work it causes.
    fn call_failing(&mut self, tool: &str, arguments: Value) {
        let id = self.send_call(tool, arguments);
        let (_, response) = self.response(id);
        assert_eq!(response["result"]["isError"], true, "{response}");
    }

    /// The next `notifications/claude/channel` push of `kind`: when it was read, and its params.
    fn push(&mut self, kind: &str) -> (Instant, Value) {
        let (at, message) = self.proc.take(kind, |m| {
            m["method"] == "notifications/claude/channel" && m["params"]["meta"]["kind"] == kind
        });
        (at, message["params"].clone())
    }

    /// Waits until the hub has registered this channel and learns the registered name.
    fn register(&mut self) {
        let peers = self.call("relay_peers", json!({}));
        self.name = peers["me"]
            .as_str()
            .expect("relay_peers names me")
            .to_owned();
    }
}

// ---------------------------------------------------------------------------------------------
// The temporary world

/// A temporary data directory and HOME, and the hub that serves them.
struct World {
    dir: tempfile::TempDir,
    /// Canonical, to compare with `/proc/PID/cwd` of the hub.
    data: PathBuf,
    home: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let (data, home) = (root.join("data"), root.join("home"));
        for path in [&data, &home] {
            fs::create_dir_all(path).expect("create temp dirs");
        }
        World { dir, data, home }
    }

    /// A channel command with a clean environment pointing into this world. Its working
    /// directory is its own (not a git work tree), so it reads no git branch.
    fn command(&self, name: &str, log_level: &str) -> Command {
        let cwd = self.dir.path().join("work").join(name);
        fs::create_dir_all(&cwd).expect("create work dir");
        let mut command = Command::new(CHANNEL_EXE);
        command
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_PLUGIN_DATA", &self.data)
            .env("RELAY_LOG", log_level)
            .env("RELAY_CHANNELS", "on")
            .env("RELAY_HUB_IDLE_SECS", HUB_IDLE_SECS)
            .env("RELAY_SESSION_NAME", name)
            .stderr(Stdio::inherit());
        command
    }

    /// A `relay` command line (next to the channel binary) in this world.
    fn relay_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(Path::new(CHANNEL_EXE).with_file_name("relay"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_PLUGIN_DATA", &self.data)
            .stderr(Stdio::inherit());
        command
    }

    /// Starts a channel process; no handshake yet.
    fn spawn_channel(&self, name: &str, log_level: &str) -> Channel {
        Channel {
            name: name.to_owned(),
            proc: LineProc::spawn(self.command(name, log_level), name),
            next_id: 1,
        }
    }

    /// Starts a channel, completes the handshake and waits until the hub registered it.
    fn channel(&self, name: &str) -> Channel {
        self.channel_logging(name, "warn")
    }

    fn channel_logging(&self, name: &str, log_level: &str) -> Channel {
        let mut channel = self.spawn_channel(name, log_level);
        channel.initialize();
        channel.register();
        channel
    }

    /// The pid in `hub.lock`, if that process is alive and is this world's hub: it runs in the
    /// data directory (the hub makes it its working directory). This guards against a stale
    /// lock file and a reused pid.
    fn hub_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data.join("hub.lock")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        (cwd == self.data && !is_zombie(pid)).then_some(pid)
    }
}

impl Drop for World {
    /// Kills the hub by pid once it is verified to be this world's, and waits (bounded) until
    /// it is gone, before the temporary directory is removed.
    fn drop(&mut self) {
        let Some(pid) = self.hub_pid() else { return };
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while self.hub_pid() == Some(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        println!("hub {pid} killed");
    }
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

// ---------------------------------------------------------------------------------------------
// /proc

/// Memory of a process, from `/proc/PID/status` and `/proc/PID/smaps_rollup`.
#[derive(Clone, Copy, Default)]
struct Mem {
    /// VmRSS: what the targets are stated in.
    rss: u64,
    /// Heap, stacks and other private memory: what the process itself allocated.
    anon: u64,
    /// Pages of the executable and shared libraries, shared with every process running them.
    file: u64,
    /// Proportional set size: RSS with each shared page divided among its sharers, i.e. what one
    /// more process of the kind really costs (0 where the kernel lacks `smaps_rollup`).
    pss: u64,
    /// Threads, since each one has a stack and tokio's blocking pool can grow.
    threads: u64,
}

fn mem(pid: u32) -> Mem {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Mem {
        rss: kib_field(&status, "VmRSS:") * 1024,
        anon: kib_field(&status, "RssAnon:") * 1024,
        file: kib_field(&status, "RssFile:") * 1024,
        pss: kib_field(&rollup, "Pss:") * 1024,
        threads: kib_field(&status, "Threads:"),
    }
}

/// The number after `name` on its line of a `/proc` file (in kB for memory fields), or 0.
fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds a process has spent on a CPU: the first field of `/proc/PID/schedstat`, or,
/// where the kernel lacks it, utime + stime from `/proc/PID/stat` (clock-tick resolution).
fn cpu_ns(pid: u32) -> u64 {
    if let Some(ns) = fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
    {
        return ns;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let fields: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(11) // after ')': state is field 3, utime field 14
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<u64>() * 1_000_000_000 / clock_ticks()
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

// ---------------------------------------------------------------------------------------------
// Phases

/// Memory of a channel after a handshake and a few tool calls, left idle for [`SETTLE`].
fn idle_channel_memory(world: &World, name: &str, log_level: &str) -> Mem {
    let mut channel = world.channel_logging(name, log_level);
    channel.request("tools/list", json!({}));
    for _ in 0..3 {
        channel.call("relay_peers", json!({}));
    }
    channel.call_failing("relay_ask", json!({"to": "nobody-here", "question": "?"}));
    channel.call(
        "relay_rename",
        json!({"new_name": format!("{name}-renamed")}),
    );
    thread::sleep(SETTLE);
    mem(channel.pid())
}

/// Ask, push, reply, push between two channels, with the CPU it cost.
struct RoundTrips {
    latency: Samples,
    /// Hub CPU over all round trips, divided by their number.
    hub_cpu_per_rt: Duration,
    /// The same per batch of [`RT_BATCH`] round trips, to show how much it wanders.
    hub_cpu_batches: Samples,
    /// CPU of both channels together, over all round trips, divided by their number.
    channels_cpu_per_rt: Duration,
}

impl RoundTrips {
    fn measure(world: &World, alpha: &mut Channel, beta: &mut Channel) -> RoundTrips {
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
fn round_trip(asker: &mut Channel, answerer: &mut Channel) -> Duration {
    let start = Instant::now();
    let ask = asker.send_call(
        "relay_ask",
        json!({"to": answerer.name, "question": "ping?", "timeout_secs": 60}),
    );
    let (_, question) = answerer.push("ask");
    let ask_id = question["meta"]["ask_id"].clone();
    let reply = answerer.send_call("relay_reply", json!({"ask_id": ask_id, "text": "pong"}));
    let (arrived, answer) = asker.push("reply");
    assert_eq!(
        answer["meta"]["ask_id"], ask_id,
        "the reply answers the ask"
    );
    asker.tool_ok(ask);
    answerer.tool_ok(reply);
    arrived - start
}

/// Time to a usable channel with a hub already running.
struct Starts {
    /// Spawn to the answer of the first tools/list (after initialize).
    tools_list: Samples,
    /// Spawn to the answer of the first relay_peers, which needs the hub registration.
    registered: Samples,
}

impl Starts {
    fn measure(world: &World) -> Starts {
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
    let mut channel = world.spawn_channel(name, "warn");
    let init = channel.start_initialize();
    channel.finish_initialize(init);
    let list = channel.send_request("tools/list", json!({}));
    let (listed, tools) = channel.response(list);
    assert_eq!(tools["result"]["tools"].as_array().map(Vec::len), Some(6));
    let peers = channel.send_call("relay_peers", json!({}));
    let (registered, _) = channel.response(peers);
    (listed - began, registered - began)
}

/// The `relay` command line as a shell user or a script waits for it: whole processes, start-up
/// included, read against what spawning any process costs.
struct CommandLine {
    /// Spawn to exit of `/bin/true`.
    process_floor: Samples,
    /// `relay status --json` against the running hub.
    status: Samples,
    /// `relay ask beta …`, beta replying as soon as the question is pushed.
    ask: Samples,
}

impl CommandLine {
    fn measure(world: &World, beta: &mut Channel) -> CommandLine {
        let process_floor = Samples::collect(CLI_WARMUP, CLI_ITERS, || {
            let began = Instant::now();
            finish(Command::new("true"), "true");
            began.elapsed()
        });
        let status = Samples::collect(CLI_WARMUP, CLI_ITERS, || {
            let began = Instant::now();
            finish(world.relay_command(&["status", "--json"]), "relay status");
            began.elapsed()
        });
        let ask = Samples::collect(CLI_WARMUP, CLI_ITERS, || {
            let began = Instant::now();
            let mut command = world.relay_command(&["ask", "beta", "ping?"]);
            let child = command
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn relay ask");
            let guard = KillOnDrop(child);
            let (_, question) = beta.push("ask");
            beta.call(
                "relay_reply",
                json!({"ask_id": question["meta"]["ask_id"], "text": "pong"}),
            );
            wait_success(guard, "relay ask");
            began.elapsed()
        });
        CommandLine {
            process_floor,
            status,
            ask,
        }
    }
}

/// A child killed by pid if the bench gives up on it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` to its end, which must be a success within [`WAIT`].
fn finish(mut command: Command, what: &str) {
    let child = command
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    wait_success(KillOnDrop(child), what);
}

fn wait_success(mut child: KillOnDrop, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.0.try_wait().expect("child status") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not end within {WAIT:?}"
        );
        thread::sleep(Duration::from_micros(200));
    }
}

/// One broadcast size: latencies, and the memory of the hub and of the recipients.
struct Fanout {
    recipients: usize,
    /// relay_broadcast written to the last recipient's push read.
    delivered: Samples,
    /// First relay_reply written to the last reply push read at the asker.
    gathered: Samples,
    /// relay_broadcast written to the last reply push read at the asker.
    total: Samples,
    hub_connected: Mem,
    hub_after: Mem,
    /// Median recipient channel, after its broadcasts, idle.
    channel_median: Mem,
}

impl Fanout {
    /// Measures in a world of its own, so that the hub's memory "connected" is that of a fresh
    /// hub with exactly these peers, and "after" reflects only these broadcasts.
    fn measure(recipients: usize, warmup: usize, iters: usize) -> Fanout {
        let world = World::new();
        let mut asker = world.channel("asker");
        let mut fleet = start_fleet(&world, &mut asker, recipients);
        thread::sleep(SETTLE);
        let hub = world.hub_pid().expect("the hub runs");
        let hub_connected = mem(hub);
        for _ in 0..warmup {
            broadcast_once(&mut asker, &mut fleet);
        }
        let rounds: Vec<_> = (0..iters)
            .map(|_| broadcast_once(&mut asker, &mut fleet))
            .collect();
        thread::sleep(SETTLE);
        let mut channels: Vec<Mem> = fleet.iter().map(|c| mem(c.pid())).collect();
        channels.sort_by_key(|m| m.rss);
        Fanout {
            recipients,
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
    let mut fleet: Vec<Channel> = (0..size)
        .map(|n| world.spawn_channel(&format!("peer-{n:03}"), "warn"))
        .collect();
    let handshakes: Vec<u64> = fleet.iter_mut().map(Channel::start_initialize).collect();
    for (channel, id) in fleet.iter_mut().zip(handshakes) {
        channel.finish_initialize(id);
    }
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let peers = asker.call("relay_peers", json!({}));
        let count = peers["peers"].as_array().map_or(0, Vec::len);
        if count == size {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{count} peers registered, not {size}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    // The recipients never call relay_peers themselves: a 200-peer answer would raise their heap
    // high-water mark and with it the recipient RSS measured later.
    fleet
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
    let mut ask_ids = Vec::with_capacity(fleet.len());
    for peer in fleet.iter_mut() {
        let (at, question) = peer.push("ask");
        last_push = last_push.max(at);
        ask_ids.push(question["meta"]["ask_id"].clone());
    }
    let replies_start = Instant::now();
    let calls: Vec<u64> = fleet
        .iter_mut()
        .zip(&ask_ids)
        .map(|(peer, ask_id)| {
            peer.send_call("relay_reply", json!({"ask_id": ask_id, "text": "ok"}))
        })
        .collect();
    let mut last_reply = replies_start;
    for _ in 0..fleet.len() {
        let (at, _) = asker.push("reply");
        last_reply = last_reply.max(at);
    }
    let sent = asker.tool_ok(call);
    assert_eq!(sent["peer_count"], fleet.len(), "every peer was asked");
    for (peer, id) in fleet.iter_mut().zip(calls) {
        peer.tool_ok(id);
    }
    (
        last_push - start,
        last_reply - replies_start,
        last_reply - start,
    )
}

// ---------------------------------------------------------------------------------------------
// Report

/// Where the figures were taken.
struct Machine {
    cpus: usize,
    cpu_model: String,
    kernel: String,
    rustc: String,
    /// The 1, 5 and 15 minute load averages when the bench started: other work on the machine
    /// is the main source of noise.
    load: String,
}

impl Machine {
    fn describe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpus: thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            rustc,
            load: load_average(),
        }
    }

    fn summary(&self) -> String {
        format!(
            "machine: {} CPUs, {}, Linux {}, {}; load average at start {}",
            self.cpus, self.cpu_model, self.kernel, self.rustc, self.load
        )
    }
}

fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line of the results table; every cell is already formatted.
struct Row {
    metric: String,
    value: String,
    p99: String,
    target: String,
    status: String,
    vs_unix: String,
    vs_pipe: String,
}

const HEADERS: [&str; 7] = [
    "Metric",
    "p50 / value",
    "p99",
    "Target",
    "Status",
    "p50 × unix floor",
    "p50 × pipe floor",
];

impl Row {
    fn cells(&self) -> [&str; 7] {
        [
            &self.metric,
            &self.value,
            &self.p99,
            &self.target,
            &self.status,
            &self.vs_unix,
            &self.vs_pipe,
        ]
    }

    fn latency(metric: &str, samples: &Samples, floors: &Floors, target: Option<Duration>) -> Row {
        let p50 = samples.p50();
        let ratio = |floor: &Samples| format!("{:.1}×", ratio(p50, floor.p50()));
        Row {
            metric: metric.to_owned(),
            value: fmt_duration(p50),
            p99: fmt_duration(samples.p99()),
            target: target.map_or("-".into(), |t| format!("≤ {}", fmt_duration(t))),
            status: status(target.map(|t| p50 <= t)),
            vs_unix: ratio(&floors.unix),
            vs_pipe: ratio(&floors.pipe),
        }
    }

    fn memory(metric: &str, mem: Mem, target: Option<u64>) -> Row {
        Row::single(
            metric,
            fmt_bytes(mem.rss),
            target.map(fmt_bytes),
            target.map(|t| mem.rss <= t),
        )
    }

    fn cpu(metric: &str, per_rt: Duration, target: Option<Duration>) -> Row {
        Row::single(
            metric,
            fmt_duration(per_rt),
            target.map(fmt_duration),
            target.map(|t| per_rt <= t),
        )
    }

    fn single(metric: &str, value: String, target: Option<String>, met: Option<bool>) -> Row {
        Row {
            metric: metric.to_owned(),
            value,
            p99: "-".into(),
            target: target.map_or("-".into(), |t| format!("≤ {t}")),
            status: status(met),
            vs_unix: "-".into(),
            vs_pipe: "-".into(),
        }
    }
}

fn status(met: Option<bool>) -> String {
    match met {
        None => "",
        Some(true) => "met",
        Some(false) => "MISSED",
    }
    .into()
}

fn ratio(value: Duration, floor: Duration) -> f64 {
    value.as_secs_f64() / floor.as_secs_f64().max(1e-9)
}

fn fmt_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1_000_000.0 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

fn fmt_bytes(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

fn fmt_breakdown(what: &str, mem: Mem) -> String {
    format!(
        "{what}: RSS {} = {} anonymous (heap, stacks) + {} file-backed (binary, libc); \
         PSS {}; {} threads",
        fmt_bytes(mem.rss),
        fmt_bytes(mem.anon),
        fmt_bytes(mem.file),
        fmt_bytes(mem.pss),
        mem.threads
    )
}

fn latency_rows(results: &Results) -> Vec<Row> {
    let floors = &results.floors;
    let row = |metric: &str, samples: &Samples| Row::latency(metric, samples, floors, None);
    let mut rows = vec![
        row("floor: Unix socket round trip", &floors.unix),
        row("floor: pipe round trip (cat)", &floors.pipe),
        row("floor: pipe round trip via bench harness", &floors.harness),
        row(
            "ask → push → reply → push round trip",
            &results.round_trips.latency,
        ),
    ];
    for f in &results.fanouts {
        let n = f.recipients;
        rows.extend([
            row(
                &format!("broadcast to {n}: all {n} pushes delivered"),
                &f.delivered,
            ),
            row(
                &format!("broadcast to {n}: all {n} replies back"),
                &f.gathered,
            ),
            row(&format!("broadcast to {n}: call → last reply"), &f.total),
        ]);
    }
    rows.extend([
        Row::latency(
            "channel start → tools/list answered",
            &results.starts.tools_list,
            floors,
            Some(TARGET_START),
        ),
        row(
            "channel start → relay_peers answered",
            &results.starts.registered,
        ),
        row(
            "floor: spawn and wait for /bin/true",
            &results.command_line.process_floor,
        ),
        row(
            "`relay status --json`, spawn to exit",
            &results.command_line.status,
        ),
        row(
            "`relay ask` → reply printed, spawn to exit",
            &results.command_line.ask,
        ),
    ]);
    rows
}

fn memory_rows(results: &Results) -> Vec<Row> {
    let channel = |metric: &str, mem: Mem| Row::memory(metric, mem, Some(TARGET_CHANNEL_RSS));
    let mut rows = vec![
        channel("idle channel RSS (RELAY_LOG=warn)", results.idle_warn),
        channel("idle channel RSS (RELAY_LOG=info)", results.idle_info),
        channel(
            &format!("channel RSS after {RT_ITERS} round trips"),
            results.busy_channel,
        ),
    ];
    for f in &results.fanouts {
        let n = f.recipients;
        let hub_target = (n == 200).then_some(TARGET_HUB_RSS_200);
        rows.extend([
            channel(
                &format!("channel RSS, median of {n} recipients"),
                f.channel_median,
            ),
            Row::memory(
                &format!("hub RSS, {n} peers + asker, fresh"),
                f.hub_connected,
                hub_target,
            ),
            Row::memory(
                &format!("hub RSS, {n} peers, after broadcasts"),
                f.hub_after,
                hub_target,
            ),
        ]);
    }
    rows
}

/// What the memory figures are made of, and how many iterations each figure has.
fn notes(results: &Results) -> Vec<String> {
    let mut notes = vec![
        fmt_breakdown("idle channel (warn)", results.idle_warn),
        fmt_breakdown("idle channel (info)", results.idle_info),
        fmt_breakdown("channel after round trips", results.busy_channel),
    ];
    for f in &results.fanouts {
        let n = f.recipients;
        notes.extend([
            fmt_breakdown(&format!("median of {n} recipients"), f.channel_median),
            fmt_breakdown(&format!("hub with {n} peers"), f.hub_connected),
            fmt_breakdown(&format!("hub with {n} peers after broadcasts"), f.hub_after),
        ]);
    }
    let batches = &results.round_trips.hub_cpu_batches;
    notes.push(format!(
        "hub CPU per round trip in {} batches of {RT_BATCH}: min {}, median {}, max {}",
        batches.0.len(),
        fmt_duration(batches.percentile(0.0)),
        fmt_duration(batches.p50()),
        fmt_duration(batches.percentile(100.0)),
    ));
    let broadcasts: Vec<String> = FANOUTS
        .iter()
        .map(|(n, warmup, iters)| format!("to {n}: {iters} after {warmup}"))
        .collect();
    notes.push(format!(
        "iterations (after warm-up): floors {FLOOR_ITERS} (harness {HARNESS_ITERS}) after \
         {FLOOR_WARMUP}, round trips {RT_ITERS} after {RT_WARMUP}, starts {START_ITERS} after \
         {START_WARMUP}, broadcasts {}",
        broadcasts.join(", ")
    ));
    notes
}

/// The results table and the notes under it.
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// Everything one run measured.
struct Results {
    floors: Floors,
    round_trips: RoundTrips,
    starts: Starts,
    command_line: CommandLine,
    fanouts: Vec<Fanout>,
    idle_warn: Mem,
    idle_info: Mem,
    /// A channel after the round trips, idle again.
    busy_channel: Mem,
}

impl Report {
    fn build(results: &Results) -> Report {
        let mut rows = latency_rows(results);
        rows.extend(memory_rows(results));
        rows.extend([
            Row::cpu(
                "hub CPU per round trip",
                results.round_trips.hub_cpu_per_rt,
                Some(TARGET_HUB_CPU_PER_RT),
            ),
            Row::cpu(
                "both channels' CPU per round trip",
                results.round_trips.channels_cpu_per_rt,
                None,
            ),
        ]);
        Report {
            rows,
            notes: notes(results),
        }
    }

    /// The table with aligned columns, for a terminal.
    fn text(&self, machine: &Machine) -> String {
        let width = |col: usize| {
            self.rows
                .iter()
                .map(|r| r.cells()[col].chars().count())
                .chain([HEADERS[col].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..HEADERS.len()).map(width).collect();
        let line = |cells: [&str; 7]| {
            let mut out = String::new();
            for (col, cell) in cells.iter().enumerate() {
                let pad = widths[col] - cell.chars().count();
                if col == 0 {
                    out.push_str(&format!("{cell}{}  ", " ".repeat(pad)));
                } else {
                    out.push_str(&format!("{}{cell}  ", " ".repeat(pad)));
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = format!("{}\n\n{}\n", machine.summary(), line(HEADERS));
        let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        out.push_str(&format!("{}\n", "-".repeat(total)));
        for row in &self.rows {
            out.push_str(&format!("{}\n", line(row.cells())));
        }
        out.push('\n');
        for note in &self.notes {
            out.push_str(&format!("* {note}\n"));
        }
        out.push_str("\nreference figures of other implementations (not measured here):\n");
        for (who, channel, hub, cpu, start) in REFERENCES {
            out.push_str(&format!(
                "* {who}: {channel} per idle channel, hub {hub}, hub CPU per round trip {cpu}, start {start}\n"
            ));
        }
        out
    }

    /// The same results as markdown.
    fn markdown(&self, machine: &Machine) -> String {
        let row = |cells: [&str; 7]| format!("| {} |\n", cells.join(" | "));
        let mut out = format!(
            "# claude-relay benchmark results\n\n{}\n\n",
            machine.summary()
        );
        out.push_str(&row(HEADERS));
        out.push_str("|---|--:|--:|--:|---|--:|--:|\n");
        for r in &self.rows {
            out.push_str(&row(r.cells()));
        }
        out.push('\n');
        for note in &self.notes {
            out.push_str(&format!("* {note}\n"));
        }
        out.push_str(
            "\nReference figures of other implementations (not measured here):\n\n\
             | Implementation | Idle channel | Hub | Hub CPU per round trip | Start |\n\
             |---|--:|--:|--:|--:|\n",
        );
        for (who, channel, hub, cpu, start) in REFERENCES {
            out.push_str(&format!(
                "| {who} | {channel} | {hub} | {cpu} | {start} |\n"
            ));
        }
        out
    }
}
