//! The results as a table with notes under it: rows with the targets claude-relay sets itself,
//! the machine they were taken on, and the figures of other implementations for comparison. For a
//! terminal, and as markdown for `docs/benchmarks.md`.

use std::{fs, process::Command, thread, time::Duration};

use crate::{
    federation::{FED_BROADCASTS, FED_HOSTS, FED_NATS_ITERS, FED_RT_ITERS, FED_SESSIONS_PER_HOST},
    floor::{FLOOR_RT_BATCH, FLOOR_RT_ITERS, FLOOR_RT_WARMUP},
    measure::{
        FANOUTS, FLOOR_ITERS, FLOOR_WARMUP, Floors, HARNESS_ITERS, RT_BATCH, RT_ITERS, RT_WARMUP,
        Results, START_ITERS, START_WARMUP, Samples,
    },
    procfs::Mem,
    thousand::{THOUSAND_CHANNELS, THOUSAND_PEERS_CALLS, THOUSAND_RAW, THOUSAND_ROUNDS},
};

/// The targets claude-relay sets itself.
const TARGET_CHANNEL_RSS: u64 = 4 * MIB;
const TARGET_HUB_RSS_200: u64 = 8 * MIB;
const TARGET_HUB_CPU_PER_RT: Duration = Duration::from_micros(20);
const TARGET_START: Duration = Duration::from_millis(10);
/// The hub's CPU per round trip as a multiple of a forwarder doing only its reads and writes.
const TARGET_HUB_OVER_FORWARDER: f64 = 2.0;
/// System calls of the hub per round trip: its 2 reads and 4 writes, and a few waits.
const TARGET_SYSCALLS_PER_RT: f64 = 9.0;
/// A thousand sessions: a broadcast reaching them all, their replies back, the hub's memory with
/// them, and the list of them.
const TARGET_THOUSAND_DELIVERED: Duration = Duration::from_millis(50);
const TARGET_THOUSAND_GATHERED: Duration = Duration::from_millis(100);
const TARGET_HUB_RSS_1000: u64 = 16 * MIB;
const TARGET_PEERS_1000: Duration = Duration::from_millis(10);

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

/// Where the figures were taken.
pub struct Machine {
    cpus: usize,
    cpu_model: String,
    kernel: String,
    rustc: String,
    /// The 1, 5 and 15 minute load averages when the bench started: other work on the machine
    /// is the main source of noise.
    load: String,
}

impl Machine {
    pub fn describe() -> Machine {
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

    pub fn summary(&self) -> String {
        format!(
            "machine: {} CPUs, {}, Linux {}, {}; load average at start {}",
            self.cpus, self.cpu_model, self.kernel, self.rustc, self.load
        )
    }
}

pub fn load_average() -> String {
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
    let across = &results.hub_floor.comparisons[0];
    let placement = across.placement.describe();
    let mut rows = vec![
        row("floor: Unix socket round trip", &floors.unix),
        row("floor: pipe round trip (cat)", &floors.pipe),
        row("floor: pipe round trip via bench harness", &floors.harness),
        row(
            &format!(
                "floor: minimal forwarder round trip (2 reads, 4 writes), raw peers ({placement})"
            ),
            &across.forwarder.latency,
        ),
        row(
            &format!("hub round trip, raw peers (default log level; {placement})"),
            &across.hub.latency,
        ),
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
    let thousand = &results.thousand;
    let sessions = thousand_sessions(results);
    rows.extend([
        Row::latency(
            &format!("{sessions}: broadcast, all pushes delivered"),
            &thousand.delivered,
            floors,
            Some(TARGET_THOUSAND_DELIVERED),
        ),
        Row::latency(
            &format!("{sessions}: all replies back"),
            &thousand.gathered,
            floors,
            Some(TARGET_THOUSAND_GATHERED),
        ),
        row(&format!("{sessions}: call → last reply"), &thousand.total),
        Row::latency(
            &format!("{sessions}: relay_peers answered"),
            &thousand.peers_call,
            floors,
            Some(TARGET_PEERS_1000),
        ),
    ]);
    if let Some(fed) = &results.federated {
        let n = fed.broadcast.recipients;
        rows.extend([
            row("floor: raw NATS request → reply (loopback server)", &fed.nats),
            row("federated hub: ask round trip, one hub", &fed.one_hub),
            row("federated hubs: ask round trip across two hubs", &fed.across),
            row(
                &format!("broadcast to {FED_HOSTS} hubs × {FED_SESSIONS_PER_HOST}: all {n} pushes delivered"),
                &fed.broadcast.delivered,
            ),
            row(
                &format!("broadcast to {FED_HOSTS} hubs × {FED_SESSIONS_PER_HOST}: all {n} replies back"),
                &fed.broadcast.gathered,
            ),
            row(
                &format!("broadcast to {FED_HOSTS} hubs × {FED_SESSIONS_PER_HOST}: call → last reply"),
                &fed.broadcast.total,
            ),
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
    let sessions = thousand_sessions(results);
    rows.extend([
        Row::memory(
            &format!("hub RSS, {sessions} + asker, fresh"),
            results.thousand.hub_connected,
            Some(TARGET_HUB_RSS_1000),
        ),
        Row::memory(
            &format!("hub RSS, {sessions}, after broadcasts"),
            results.thousand.hub_after,
            Some(TARGET_HUB_RSS_1000),
        ),
    ]);
    if let Some(fed) = &results.federated {
        rows.extend([
            Row::memory(
                &format!("federated hub RSS, {FED_SESSIONS_PER_HOST} peers + asker, fresh"),
                fed.broadcast.hub_connected,
                None,
            ),
            Row::memory(
                &format!(
                    "federated hub RSS, {FED_SESSIONS_PER_HOST} peers, after broadcasts to {FED_HOSTS} hubs"
                ),
                fed.broadcast.hub_after,
                None,
            ),
        ]);
    }
    rows
}

/// How the thousand-session rows name their sessions: `1000 raw peers + 2 channels`.
fn thousand_sessions(results: &Results) -> String {
    let channels = results.thousand.recipients - THOUSAND_RAW;
    format!("{THOUSAND_RAW} raw peers + {channels} channels")
}

/// The hub's CPU against the forwarder's, and its system calls, as rows.
fn floor_rows(results: &Results) -> Vec<Row> {
    let floor = &results.hub_floor;
    let mut rows = Vec::new();
    for (i, comparison) in floor.comparisons.iter().enumerate() {
        // The target is judged in the first placement (see `HubFloor::comparisons`).
        let judged = i == 0;
        let placement = comparison.placement.describe();
        let ratio = comparison.cpu_ratio();
        rows.extend([
            Row::cpu(
                &format!("floor: minimal forwarder CPU per round trip ({placement})"),
                comparison.forwarder.cpu_per_rt,
                None,
            ),
            Row::cpu(
                &format!(
                    "hub CPU per round trip, raw peers (default log level, all threads; \
                     {placement})"
                ),
                comparison.hub.cpu_per_rt,
                None,
            ),
            Row::single(
                &format!("hub CPU per round trip ÷ forwarder's ({placement})"),
                format!("{ratio:.1}×"),
                judged.then(|| format!("{TARGET_HUB_OVER_FORWARDER:.1}×")),
                judged.then_some(ratio <= TARGET_HUB_OVER_FORWARDER),
            ),
        ]);
    }
    rows.push(match &floor.syscalls {
        Ok(calls) => Row::single(
            "hub system calls per round trip (strace)",
            format!("{:.2}", calls.per_trip()),
            Some(format!("{TARGET_SYSCALLS_PER_RT:.0}")),
            Some(calls.per_trip() <= TARGET_SYSCALLS_PER_RT),
        ),
        Err(_) => Row::single(
            "hub system calls per round trip (strace)",
            "not counted".into(),
            Some(format!("{TARGET_SYSCALLS_PER_RT:.0}")),
            None,
        ),
    });
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
    if let Some(fed) = &results.federated {
        notes.push(format!(
            "federation: a round trip across hubs is {:.1}× one on a federated hub, and {:.1}× a raw \
             NATS request (it makes two: the ask and the reply)",
            ratio(fed.across.p50(), fed.one_hub.p50()),
            ratio(fed.across.p50(), fed.nats.p50()),
        ));
        notes.push(fmt_breakdown(
            "federated hub after broadcasts",
            fed.broadcast.hub_after,
        ));
    }
    let floor = &results.hub_floor;
    notes.push(format!(
        "forwarder floor: a tokio current-thread task in a process of its own doing only the \
         hub's 2 reads and 4 writes per round trip (its thread's CPU); hub at its default log \
         level (RELAY_LOG unset), CPU summed over its {} thread(s); both driven by the same raw \
         peers, {FLOOR_RT_ITERS} round trips each after {FLOOR_RT_WARMUP}, alternating in batches of \
         {FLOOR_RT_BATCH}, with the client and both servers pinned alike",
        floor.comparisons[0].hub.threads
    ));
    for comparison in &floor.comparisons {
        let ratios = comparison.batch_ratios();
        notes.push(format!(
            "hub CPU ÷ forwarder's in each of the {} pairs of batches ({}): min {:.1}×, median \
             {:.1}×, max {:.1}×",
            ratios.len(),
            comparison.placement.describe(),
            ratios[0],
            ratios[ratios.len() / 2],
            ratios[ratios.len() - 1],
        ));
    }
    notes.push(match &floor.syscalls {
        Ok(calls) => format!(
            "hub system calls per round trip over {} round trips (strace -f -c): {}",
            calls.trips,
            calls.breakdown()
        ),
        Err(why) => format!("hub system calls not counted: {why}"),
    });
    let thousand = &results.thousand;
    let sessions = thousand_sessions(results);
    notes.extend([
        fmt_breakdown(&format!("hub with {sessions}"), thousand.hub_connected),
        fmt_breakdown(
            &format!("hub with {sessions} after broadcasts"),
            thousand.hub_after,
        ),
        fmt_breakdown(
            &format!(
                "hub with {sessions} after broadcasts and relay_peers listing {} ({} KiB of JSON)",
                thousand.peers_listed,
                thousand.peers_bytes / 1024
            ),
            thousand.hub_end,
        ),
    ]);
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
         {START_WARMUP}, broadcasts {}; {THOUSAND_RAW} raw peers + {THOUSAND_CHANNELS} channels: \
         broadcasts {} after {}, relay_peers {} after {}; federation: NATS requests \
         {FED_NATS_ITERS}, round trips {FED_RT_ITERS} each after {RT_WARMUP}, broadcasts {} \
         after {}",
        broadcasts.join(", "),
        THOUSAND_ROUNDS.1,
        THOUSAND_ROUNDS.0,
        THOUSAND_PEERS_CALLS.1,
        THOUSAND_PEERS_CALLS.0,
        FED_BROADCASTS.1,
        FED_BROADCASTS.0,
    ));
    notes
}

/// The results table and the notes under it.
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    pub fn build(results: &Results) -> Report {
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
        rows.extend(floor_rows(results));
        Report {
            rows,
            notes: notes(results),
        }
    }

    /// The table with aligned columns, for a terminal.
    pub fn text(&self, machine: &Machine) -> String {
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
    pub fn markdown(&self, machine: &Machine) -> String {
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
