//! The hub against a floor of its own kind: a minimal forwarder that does exactly the socket reads
//! and writes of one hub round trip and nothing else, driven by the same client as the real hub.
//! What the hub spends beyond the forwarder is its own work (parsing, routing, bookkeeping,
//! logging), so "hub CPU ÷ forwarder CPU" says how far the hub is from what its I/O alone costs
//! on this machine: an absolute target hides that, since the kernel's share of each read, write
//! and wake-up (which dominates on a VM) is in both. Then the system calls the hub makes per
//! round trip, counted by `strace`.
//!
//! One round trip, seen from the hub (or the forwarder): A's `ask` is read (1 read); the response
//! goes to A and the `ask` event to B (2 writes); B's `reply` is read (1 read); its response goes
//! to B and the `reply` event to A (2 writes). The client is two raw peers (the kit's [`RawPeer`])
//! in the bench's main thread, one blocking write and read at a time, the same code for both
//! servers; the measured round trips alternate between them in batches, with the client and both
//! servers pinned to CPUs alike ([`Placement`]), once across two CPUs and once on one.

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::net::UnixListener as StdUnixListener,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use testkit::{KillOnDrop, RawPeer, World, kill};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader},
    net::{UnixListener, UnixStream},
};

use crate::{
    measure::{HUB_IDLE_SECS, Samples},
    procfs::{cpu_ns_all_threads, threads_of},
};

/// Round trips against the forwarder and against the hub, each after as many warm-ups.
pub const FLOOR_RT_WARMUP: usize = 200;
pub const FLOOR_RT_ITERS: usize = 2_000;
/// The measured round trips alternate between the forwarder and the hub in batches of this many,
/// so that both meet the same moments of the machine's other work, which moves CPU figures more
/// than anything (docs/benchmarks.md, "Noise").
pub const FLOOR_RT_BATCH: usize = 100;
/// Round trips while `strace` counts the hub's system calls.
pub const STRACE_RT_ITERS: usize = 1_000;

/// The longest one expected line, an attach or an exit may take before the bench gives up.
const WAIT: Duration = testkit::PROMPTLY;
/// The forwarder gives up after this long in all (its client died, say), so its thread ends.
const FORWARDER_LIMIT: Duration = Duration::from_secs(120);

/// The clients' names, as they say hello.
const NAME_A: &str = "floor-a";
const NAME_B: &str = "floor-b";

/// What the forwarder and the hub did in each placement, and how the hub's system calls break
/// down.
pub struct HubFloor {
    /// The client on one CPU and the servers on another first (the placement the target is
    /// judged in: sessions and their hub are separate processes, which the scheduler spreads),
    /// then all on one CPU, shown beside it (left out on a machine that gives the bench one CPU).
    pub comparisons: Vec<Comparison>,
    /// The hub's system calls per round trip, or why they were not counted.
    pub syscalls: Result<Syscalls, String>,
}

/// The forwarder and the hub, driven alternately with the client and both servers pinned as
/// `placement` says.
pub struct Comparison {
    pub placement: Placement,
    pub forwarder: Trips,
    pub hub: Trips,
}

/// The CPUs the client and both servers are pinned to while their round trips are measured.
///
/// Left to the scheduler, the two servers did not meet the same placement: from run to run one
/// shared the client's CPU (a wake-up there is a cheap local one) while the other ran on the other
/// CPU (each wake-up crosses CPUs, a VM exit on this machine), and the ratio of their CPU swung
/// from 0.7× to 4.3× with it. Pinned alike, both pay the same wake-ups, and the ratio is the
/// hub's own work.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub client: usize,
    pub servers: usize,
}

/// What [`Placement::pin`] changed, given back when this is dropped (also when a round trip
/// panics): the CPUs the bench thread and the hub's threads could run on before.
struct Pinned {
    bench_thread: libc::cpu_set_t,
    hub_threads: Vec<(u32, libc::cpu_set_t)>,
}

impl Placement {
    /// The client on the first CPU this process may run on, the servers on the second (as
    /// sessions and their hub are separate processes), or all on the first when it has one.
    fn apart() -> Placement {
        let allowed = affinity(0);
        let mut cpus = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET reads a bit of a set this process owns, below CPU_SETSIZE.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) });
        let client = cpus.next().expect("this process may run on some CPU");
        Placement {
            client,
            servers: cpus.next().unwrap_or(client),
        }
    }

    pub fn describe(self) -> String {
        if self.client == self.servers {
            format!("client and servers on CPU {}", self.client)
        } else {
            format!(
                "client on CPU {}, servers on CPU {}",
                self.client, self.servers
            )
        }
    }

    /// Pins the calling thread (the client) and every thread of the two servers' processes.
    /// The forwarder's one thread is not given back: it exits after its round trips.
    fn pin(self, forwarder: u32, hub: u32) -> Pinned {
        let hub_threads = threads_of(hub);
        let pinned = Pinned {
            bench_thread: affinity(0),
            hub_threads: hub_threads
                .iter()
                .map(|&tid| (tid, affinity(tid)))
                .collect(),
        };
        pin(0, self.client);
        for tid in threads_of(forwarder).into_iter().chain(hub_threads) {
            pin(tid, self.servers);
        }
        pinned
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        set_affinity(0, &self.bench_thread);
        for (tid, before) in &self.hub_threads {
            set_affinity(*tid, before);
        }
    }
}

/// The CPUs thread `tid` (0: the calling thread) may run on.
fn affinity(tid: u32) -> libc::cpu_set_t {
    // SAFETY: an all-zero cpu_set_t is an empty set; the call writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let got = libc::sched_getaffinity(
            tid as libc::pid_t,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        );
        assert_eq!(
            got,
            0,
            "sched_getaffinity({tid}): {}",
            std::io::Error::last_os_error()
        );
        set
    }
}

/// Pins thread `tid` (0: the calling thread) to `cpu`.
fn pin(tid: u32, cpu: usize) {
    // SAFETY: as in `affinity`; CPU_SET sets a bit below CPU_SETSIZE.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    };
    set_affinity(tid, &set);
}

fn set_affinity(tid: u32, set: &libc::cpu_set_t) {
    // SAFETY: `set` is a whole cpu_set_t of the size given.
    let done = unsafe {
        libc::sched_setaffinity(
            tid as libc::pid_t,
            std::mem::size_of::<libc::cpu_set_t>(),
            set,
        )
    };
    assert_eq!(
        done,
        0,
        "sched_setaffinity({tid}): {}",
        std::io::Error::last_os_error()
    );
}

/// Round trips against one server.
pub struct Trips {
    /// The ask write at A to the reading of the reply event at A.
    pub latency: Samples,
    /// The server's CPU over the measured round trips, divided by their number.
    pub cpu_per_rt: Duration,
    /// The same per batch of [`FLOOR_RT_BATCH`], in the order they ran.
    pub cpu_batches: Vec<Duration>,
    /// The server's threads (1 for the forwarder; all of the hub's are counted).
    pub threads: usize,
}

impl HubFloor {
    pub fn measure() -> HubFloor {
        let (world, hub) = default_level_hub();
        let mut via_hub = Pair::hello(&world);
        let apart = Placement::apart();
        let mut comparisons = vec![Comparison::measure(apart, hub, &mut via_hub)];
        if apart.servers != apart.client {
            let together = Placement {
                client: apart.client,
                servers: apart.client,
            };
            comparisons.push(Comparison::measure(together, hub, &mut via_hub));
        }
        let syscalls = count_syscalls(&world, hub, &mut via_hub);
        drop((via_hub, world));
        HubFloor {
            comparisons,
            syscalls,
        }
    }
}

impl Comparison {
    /// Measures a forwarder of its own and the `hub` (reached through `via_hub`), pinned as
    /// `placement` says; the bench's thread and the hub can run anywhere again after.
    fn measure(placement: Placement, hub: u32, via_hub: &mut Pair) -> Comparison {
        let forwarder = Forwarder::start();
        let mut via_forwarder = Pair::hello(&forwarder.world);
        let pinned = placement.pin(forwarder.process.pid(), hub);
        for _ in 0..FLOOR_RT_WARMUP {
            via_forwarder.round_trip();
            via_hub.round_trip();
        }
        let mut forwarder_latency = Vec::with_capacity(FLOOR_RT_ITERS);
        let mut hub_latency = Vec::with_capacity(FLOOR_RT_ITERS);
        let mut hub_batches = Vec::new();
        let mut threads = 0;
        for _ in 0..FLOOR_RT_ITERS / FLOOR_RT_BATCH {
            forwarder_latency.extend((0..FLOOR_RT_BATCH).map(|_| via_forwarder.round_trip()));
            let (before, threads_before) = cpu_ns_all_threads(hub);
            hub_latency.extend((0..FLOOR_RT_BATCH).map(|_| via_hub.round_trip()));
            let (after, threads_after) = cpu_ns_all_threads(hub);
            assert_eq!(
                threads_before, threads_after,
                "the hub's threads came or went during a batch, so their CPU cannot be summed"
            );
            hub_batches.push(Duration::from_nanos(after - before));
            threads = threads_after;
        }
        drop(pinned);
        let forwarder_batches = forwarder.cpu_batches();
        drop(via_forwarder);
        Comparison {
            placement,
            forwarder: Trips::new(forwarder_latency, &forwarder_batches, 1),
            hub: Trips::new(hub_latency, &hub_batches, threads),
        }
    }

    /// Hub CPU per round trip as a multiple of the forwarder's.
    pub fn cpu_ratio(&self) -> f64 {
        ratio(self.hub.cpu_per_rt, self.forwarder.cpu_per_rt)
    }

    /// The same ratio for each pair of batches that ran one after the other, sorted: a burst of
    /// other work on the machine moves a pair or two, not the median.
    pub fn batch_ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = (self.hub.cpu_batches.iter())
            .zip(&self.forwarder.cpu_batches)
            .map(|(&hub, &forwarder)| ratio(hub, forwarder))
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }
}

fn ratio(value: Duration, base: Duration) -> f64 {
    value.as_secs_f64() / base.as_secs_f64().max(1e-12)
}

impl Trips {
    /// From the latencies and the CPU of each batch (of [`FLOOR_RT_BATCH`] round trips).
    fn new(latency: Vec<Duration>, batches: &[Duration], threads: usize) -> Trips {
        let per_rt = |cpu: Duration| cpu / FLOOR_RT_BATCH as u32;
        Trips {
            cpu_per_rt: batches.iter().sum::<Duration>() / latency.len() as u32,
            cpu_batches: batches.iter().copied().map(per_rt).collect(),
            latency: Samples(latency),
            threads,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client, the same for both servers

/// A and B, connected to one server, each after its hello, and the id of the last request.
///
/// The hello is request 1 and every round trip takes the next id, which the forwarder (which
/// parses nothing) predicts by counting the same way.
struct Pair {
    a: RawPeer,
    b: RawPeer,
    last_id: u64,
}

impl Pair {
    /// Connects A, then B, to the server of `world`'s socket.
    fn hello(world: &World) -> Pair {
        let hello = |name: &str| {
            let mut peer = RawPeer::connect(world);
            let welcome = peer.hello(name);
            assert_eq!(welcome["type"], "ok", "hello {name}: {welcome}");
            assert_eq!(welcome["result"]["name"], name, "{name} got its name");
            peer
        };
        Pair {
            a: hello(NAME_A),
            b: hello(NAME_B),
            last_id: 1,
        }
    }

    fn round_trip(&mut self) -> Duration {
        self.last_id += 1;
        round_trip(&mut self.a, &mut self.b, self.last_id)
    }
}

/// One round trip as documented in the module, timed from the ask's write to the reading of the
/// reply event. B's response to its reply is read after the timing. Lines carry what a
/// channel's carry (a deadline 5 s ahead), so the hub's lines are a channel's lines.
fn round_trip(a: &mut RawPeer, b: &mut RawPeer, id: u64) -> Duration {
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time after 1970")
        .as_millis() as u64
        + 5_000;
    let start = Instant::now();
    a.send(
        &json!({"id": id, "op": "ask", "to": NAME_B, "question": "ping?",
                   "timeout_secs": 60, "deadline_ms": deadline_ms}),
    );
    let ask = read(b, "the ask event");
    assert_eq!(ask["type"], "ask", "B was asked: {ask}");
    b.send(
        &json!({"id": id, "op": "reply", "ask_id": ask["ask_id"], "text": "pong",
                   "deadline_ms": deadline_ms}),
    );
    let asked = read(a, "the ask's response");
    let reply = read(a, "the reply event");
    let elapsed = start.elapsed();
    assert!(
        asked["type"] == "ok" && asked["id"] == id,
        "the ask succeeded: {asked}"
    );
    assert!(
        reply["type"] == "reply" && reply["ask_id"] == ask["ask_id"],
        "the reply answers the ask: {reply}"
    );
    let replied = read(b, "the reply's response");
    assert!(
        replied["type"] == "ok" && replied["id"] == id,
        "the reply succeeded: {replied}"
    );
    elapsed
}

fn read(peer: &mut RawPeer, what: &str) -> Value {
    peer.read()
        .unwrap_or_else(|| panic!("the server closed before {what}"))
}

// ---------------------------------------------------------------------------------------------
// The forwarder

/// Where the bench, started again as the forwarder's process, finds the socket to serve.
const FORWARDER_SOCKET_ENV: &str = "RELAY_BENCH_FORWARDER_SOCKET";

/// The forwarder, serving a temporary world's socket (where a hub would) from a process of its
/// own, as the hub does: the bench started again with [`FORWARDER_SOCKET_ENV`] set. A thread of
/// the bench's own process would be cheaper to wake than any other process, the hub among them
/// (no switch of address space between it and its clients), and would make a floor the hub
/// could never reach. It measures its own CPU and prints it when done.
struct Forwarder {
    world: World,
    process: KillOnDrop,
    says: BufReader<std::process::ChildStdout>,
}

impl Forwarder {
    /// Starts the forwarder for [`FLOOR_RT_WARMUP`] and [`FLOOR_RT_ITERS`] round trips; it
    /// accepts connections as soon as this returns.
    fn start() -> Forwarder {
        let world = World::new(testkit::bins!());
        fs::create_dir_all(&world.data).expect("create the data directory");
        let mut process = KillOnDrop::spawn(
            Command::new(std::env::current_exe().expect("the bench's own path"))
                .env(FORWARDER_SOCKET_ENV, world.socket())
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
            "the forwarder",
        );
        let mut says = BufReader::new(process.child().stdout.take().expect("its stdout"));
        // The forwarder ends by itself within FORWARDER_LIMIT, which bounds this read.
        assert_eq!(read_said(&mut says), "listening", "the forwarder started");
        Forwarder {
            world,
            process,
            says,
        }
    }

    /// The forwarder's CPU in each batch of measured round trips, once they are all done.
    fn cpu_batches(mut self) -> Vec<Duration> {
        let said = read_said(&mut self.says);
        let cpu = said
            .strip_prefix("cpu_ns ")
            .unwrap_or_else(|| panic!("the forwarder failed: {said}"))
            .split(',')
            .map(|ns| Duration::from_nanos(ns.parse().expect("a number of ns")))
            .collect();
        let status = self
            .process
            .wait_within(WAIT, testkit::process::POLL)
            .expect("the forwarder exits once done");
        assert!(status.success(), "the forwarder exited with {status}");
        cpu
    }
}

fn read_said(says: &mut impl BufRead) -> String {
    let mut line = String::new();
    says.read_line(&mut line)
        .expect("read the forwarder's output");
    line.trim_end().to_owned()
}

/// When this process was started as the forwarder: serves the socket it was given, prints
/// `listening`, then `cpu_ns` and its CPU per batch (or what failed), and returns true.
pub fn serve_as_forwarder() -> bool {
    let Some(socket) = std::env::var_os(FORWARDER_SOCKET_ENV) else {
        return false;
    };
    let listener = StdUnixListener::bind(&socket).expect("bind the forwarder's socket");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    println!("listening");
    // Current-thread, as the hub's runtime, so that this thread's CPU is all of it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let served = runtime.block_on(async {
        tokio::time::timeout(
            FORWARDER_LIMIT,
            forward(listener, FLOOR_RT_WARMUP, FLOOR_RT_ITERS, FLOOR_RT_BATCH),
        )
        .await
    });
    match served {
        Ok(Ok(batches)) => {
            let ns: Vec<String> = batches.iter().map(|d| d.as_nanos().to_string()).collect();
            println!("cpu_ns {}", ns.join(","));
        }
        Ok(Err(e)) => println!("failed: {e}"),
        Err(_) => println!("failed: not done within {FORWARDER_LIMIT:?}"),
    }
    true
}

/// Serves A (the first connection) and B (the second): answers each hello, then `warmup` and
/// `iters` round trips with lines of the sizes the hub writes (105, 132, 33 and 133 bytes; see
/// the `*_line` functions). Returns its thread's CPU in each batch of `batch` measured round
/// trips, read at the start of each batch's first and after the last one. Between batches it
/// waits on its sockets, which costs no CPU, while the hub has its turn.
async fn forward(
    listener: StdUnixListener,
    warmup: usize,
    iters: usize,
    batch: usize,
) -> std::io::Result<Vec<Duration>> {
    let listener = UnixListener::from_std(listener)?;
    let mut a = Side::accept(&listener, NAME_A).await?;
    let mut b = Side::accept(&listener, NAME_B).await?;
    let mut out = Vec::with_capacity(256);
    let mut marks = Vec::with_capacity(iters / batch + 1);
    for trip in 0..warmup + iters {
        if trip >= warmup && (trip - warmup).is_multiple_of(batch) {
            marks.push(thread_cpu());
        }
        let trip = trip as u64;
        let id = trip + 2; // as `Pair` counts
        let ask_id = 2 * trip + 1;
        a.read_line().await?;
        a.write(&mut out, |o| ask_response_line(o, id, ask_id))
            .await?;
        b.write(&mut out, |o| {
            event_line(o, "ask", NAME_A, "ping?", ask_id, 1)
        })
        .await?;
        b.read_line().await?;
        b.write(&mut out, |o| reply_response_line(o, id)).await?;
        a.write(&mut out, |o| {
            event_line(o, "reply", NAME_B, "pong", ask_id, 2)
        })
        .await?;
    }
    marks.push(thread_cpu());
    Ok(marks.windows(2).map(|w| w[1] - w[0]).collect())
}

/// One connection of the forwarder, and the line last read from it.
struct Side {
    stream: TokioBufReader<UnixStream>,
    line: Vec<u8>,
}

impl Side {
    /// Accepts the next connection, reads its hello and answers it as the hub does.
    async fn accept(listener: &UnixListener, name: &str) -> std::io::Result<Side> {
        let (stream, _) = listener.accept().await?;
        let mut side = Side {
            stream: TokioBufReader::new(stream),
            line: Vec::with_capacity(256),
        };
        side.read_line().await?;
        let welcome = format!(
            "{{\"type\":\"ok\",\"id\":1,\"result\":{{\"hub_pid\":{},\"hub_version\":\"0.1.0\",\
             \"name\":\"{name}\",\"protocol\":2}}}}\n",
            std::process::id()
        );
        side.stream.write_all(welcome.as_bytes()).await?;
        Ok(side)
    }

    /// Reads one line: one `read` when the whole line has arrived, as it does here.
    async fn read_line(&mut self) -> std::io::Result<()> {
        self.line.clear();
        if self.stream.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Writes the line `make` puts in `out` (cleared first): one `write`.
    async fn write(
        &mut self,
        out: &mut Vec<u8>,
        make: impl FnOnce(&mut Vec<u8>),
    ) -> std::io::Result<()> {
        out.clear();
        make(out);
        self.stream.write_all(out).await
    }
}

// The forwarder's lines, the hub's lines with ids of the same length as the hub's
// (`ask-mx61gag2-1`: 8 characters of time, then a counter); the sizes are for single-digit
// counters, as in a real exchange captured from the hub.

/// `{"type":"ok","id":2,"result":{"ask_id":…,"delivery":"live","thread_id":…}}`: 105 bytes.
fn ask_response_line(out: &mut Vec<u8>, id: u64, ask_id: u64) {
    use std::io::Write;
    let _ = writeln!(
        out,
        "{{\"type\":\"ok\",\"id\":{id},\"result\":{{\"ask_id\":\"ask-fwdfloor-{ask_id}\",\
         \"delivery\":\"live\",\"thread_id\":\"ask-fwdfloor-{ask_id}\"}}}}"
    );
}

/// `{"type":"ok","id":2,"result":{}}`: 33 bytes.
fn reply_response_line(out: &mut Vec<u8>, id: u64) {
    use std::io::Write;
    let _ = writeln!(out, "{{\"type\":\"ok\",\"id\":{id},\"result\":{{}}}}");
}

/// An event as the hub writes it, `{"type":KIND,"message_id":…,"ask_id":…,"from":FROM,
/// "thread_id":…,"text":TEXT}`: the `ask` from floor-a with "ping?" is 132 bytes, the `reply`
/// from floor-b with "pong" 133. The hub numbers its message ids after the ask's id, the ask's
/// message 1 after it and the reply's 2.
fn event_line(out: &mut Vec<u8>, kind: &str, from: &str, text: &str, ask_id: u64, after: u64) {
    use std::io::Write;
    let _ = writeln!(
        out,
        "{{\"type\":\"{kind}\",\"message_id\":\"msg-fwdfloor-{}\",\"ask_id\":\"ask-fwdfloor-{ask_id}\",\
         \"from\":\"{from}\",\"thread_id\":\"ask-fwdfloor-{ask_id}\",\"text\":\"{text}\"}}",
        ask_id + after
    );
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`: user and kernel, in ns).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec it is given, a local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

// ---------------------------------------------------------------------------------------------
// The hub

/// A world whose hub runs at its default log level (`info`): started as a channel starts it, but
/// without `RELAY_LOG` (the kit's worlds log at `debug`, the bench's channels at `warn`, which a
/// hub they start would inherit).
fn default_level_hub() -> (World, u32) {
    let mut world = World::new(testkit::bins!())
        .without_env("RELAY_LOG")
        .with_env("RELAY_HUB_IDLE_SECS", HUB_IDLE_SECS);
    let hub = world.start_hub();
    (world, hub)
}

// ---------------------------------------------------------------------------------------------
// System calls

/// What `strace -c` counted in the hub over `trips` round trips.
pub struct Syscalls {
    pub trips: usize,
    /// Every system call made, most frequent first.
    pub calls: Vec<SyscallCount>,
}

pub struct SyscallCount {
    pub name: String,
    pub calls: u64,
    /// Calls that returned an error (for reads on a non-blocking socket, EAGAIN).
    pub errors: u64,
}

impl Syscalls {
    pub fn per_trip(&self) -> f64 {
        self.calls.iter().map(|c| c.calls).sum::<u64>() as f64 / self.trips as f64
    }

    /// `recvfrom 2.00 (0.00 failed), sendto 4.00, …`: each call per round trip.
    pub fn breakdown(&self) -> String {
        let trips = self.trips as f64;
        self.calls
            .iter()
            .map(|c| {
                let mut text = format!("{} {}", c.name, per_trip(c.calls, trips));
                if c.errors > 0 {
                    text.push_str(&format!(" ({} failed)", per_trip(c.errors, trips)));
                }
                text
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `count` per round trip, with the decimals that keep a rare call from showing as 0.
fn per_trip(count: u64, trips: f64) -> String {
    let each = count as f64 / trips;
    if each >= 0.1 {
        format!("{each:.2}")
    } else {
        format!("{each:.3}")
    }
}

/// Counts the hub's system calls over [`STRACE_RT_ITERS`] round trips with `strace -f -c`,
/// attached to the running hub (and all its threads) only once it says it is attached, so that
/// every call of every round trip is counted and no set-up is. Stopped with SIGINT, on which
/// strace detaches and writes its summary. `Err` says why there are no counts (no strace, or no
/// permission to trace).
fn count_syscalls(world: &World, hub: u32, pair: &mut Pair) -> Result<Syscalls, String> {
    let installed = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return Err("strace is not installed: system calls not counted".into());
    }
    let summary = world.dir.path().join("strace-summary.txt");
    let mut strace = KillOnDrop::spawn(
        Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(&summary)
            .args(["-p", &hub.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "strace",
    );
    let said = testkit::lines_of(strace.child().stderr.take().expect("strace's stderr"));
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match said.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("attached") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                return Err(format!(
                    "strace did not attach to the hub within {WAIT:?}: {}",
                    seen.join(" / ")
                ));
            }
        }
    }
    for _ in 0..STRACE_RT_ITERS {
        pair.round_trip();
    }
    kill(strace.pid(), "INT");
    let status = strace
        .wait_within(WAIT, testkit::process::POLL)
        .ok_or_else(|| format!("strace did not stop within {WAIT:?} of SIGINT"))?;
    let text = fs::read_to_string(&summary)
        .map_err(|e| format!("strace ({status}) left no summary: {e}"))?;
    let calls = parse_strace_summary(&text);
    if calls.is_empty() {
        return Err(format!("strace's summary has no system calls: {text}"));
    }
    Ok(Syscalls {
        trips: STRACE_RT_ITERS,
        calls,
    })
}

/// The rows of `strace -c`'s table (`% time  seconds  usecs/call  calls  [errors]  syscall`),
/// without the total, most calls first.
fn parse_strace_summary(text: &str) -> Vec<SyscallCount> {
    let mut calls: Vec<SyscallCount> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !(5..=6).contains(&fields.len()) || fields[0].parse::<f64>().is_err() {
                return None; // the header, a rule, or anything else
            }
            let name = *fields.last()?;
            (name != "total").then(|| SyscallCount {
                name: name.to_owned(),
                calls: fields[3].parse().unwrap_or(0),
                errors: if fields.len() == 6 {
                    fields[4].parse().unwrap_or(0)
                } else {
                    0
                },
            })
        })
        .collect();
    calls.sort_by(|x, y| y.calls.cmp(&x.calls).then(x.name.cmp(&y.name)));
    calls
}
