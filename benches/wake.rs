//! Waking against pushing, with the real `claude` CLI: how long from an ask to the asked
//! session's next request reaching the model, for an idle session woken by its waiter and, in the
//! same run, for an idle session started with the channels flag (pushed to).
//!
//! Run with `cargo bench --bench wake`. It measures every Claude Code version in
//! `.ci/claude-versions` that `.ci/install-claude.sh` installed (`RELAY_BENCH_CLAUDE=2.1.332` for
//! one), `RELAY_BENCH_WAKES` asks to each session (default 20) after two warm-up asks each. A
//! version that is not installed is skipped with a line saying so. `docs/benchmarks.md` explains
//! the figures.
//!
//! Everything is the test kit's, as in the real-CLI tests (`tests/claude_cli.rs`): a temporary
//! world with the mock of the Messages API, two `claude -p --input-format stream-json` sessions
//! (`woken` without the channels flag, `pushed` with it), and the release-built relay. The asker
//! is a `relay-channel` driven over MCP, as Claude Code drives it; each ask is timed from the
//! moment its `relay_ask` tool call is written to the asker's stdin to the moment the mock reads
//! the request line of the asked session's request that carries the question (the same clock:
//! the mock runs in this process).
//!
//! A waiter is armed only once a turn has ended (the `Stop` hook runs then), so every ask to the
//! woken session waits until the asker's `relay_peers` shows its waiter armed; the bench also
//! reports that arming delay, from the turn's last model request to the first `relay_peers` that
//! shows the waiter (polled every 5 ms). Each ask is answered with `relay_reply` and the next one
//! waits for that turn's end, so both sessions are idle when asked. Every process is stopped by
//! pid or process group when its owner drops.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use testkit::{
    Channel,
    claude::{
        harness::{ClaudeSession, Harness, find_claude, tool},
        mock_api::{Reply, Request},
    },
};

/// Claude Code start-up plus MCP connect.
const READY: Duration = Duration::from_secs(60);
/// The longest one step (an ask reaching the model, a turn ending, a waiter arming) may take.
const STEP: Duration = Duration::from_secs(30);
/// Asks to each session before the measured ones.
const WARMUP: usize = 2;
/// How often the asker looks whether the waiter is armed.
const ARM_POLL: Duration = Duration::from_millis(5);

/// The two idle sessions asked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Woken,
    Pushed,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Woken => "woken",
            Path::Pushed => "pushed",
        }
    }

    /// The delivery `relay_ask` must report for it.
    fn delivery(self) -> &'static str {
        match self {
            Path::Woken => "woken",
            Path::Pushed => "live",
        }
    }
}

/// The samples of one CLI version.
struct Measured {
    version: String,
    woken: Vec<Duration>,
    pushed: Vec<Duration>,
    arming: Vec<Duration>,
}

fn main() {
    let wakes: usize = std::env::var("RELAY_BENCH_WAKES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let versions: Vec<String> = match std::env::var("RELAY_BENCH_CLAUDE") {
        Ok(chosen) => chosen.split_whitespace().map(str::to_owned).collect(),
        Err(_) => env!("RELAY_TESTED_CLAUDE")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    println!(
        "claude-relay wake bench: {wakes} asks per session after {WARMUP} warm-ups, on {} CPUs, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut results = Vec::new();
    for version in &versions {
        match find_claude(version) {
            Ok(cli) => results.push(measure(version, cli, wakes)),
            Err(why) => println!("skipped {version}: {why}"),
        }
    }
    if results.is_empty() {
        println!(
            "wake bench skipped: no Claude Code CLI is installed (bash .ci/install-claude.sh)"
        );
        return;
    }
    println!();
    println!(
        "| Claude Code | from relay_ask to the asked session's request | n | p50 | p90 | min | max |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|");
    for m in &results {
        for (what, samples) in [
            ("woken by its waiter", &m.woken),
            ("pushed (channels flag)", &m.pushed),
        ] {
            println!("| {} | {what} | {} |", m.version, stats(samples));
        }
    }
    println!();
    println!(
        "| Claude Code | turn's last model request → waiter armed | n | p50 | p90 | min | max |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|");
    for m in &results {
        println!(
            "| {} | Stop hook arming delay | {} |",
            m.version,
            stats(&m.arming)
        );
    }
}

/// `n | p50 | p90 | min | max` of `samples`, in milliseconds (nearest-rank percentiles).
fn stats(samples: &[Duration]) -> String {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "{} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms",
        ms.len(),
        rank(0.5),
        rank(0.9),
        ms[0],
        ms[ms.len() - 1]
    )
}

/// Measures CLI `version` (the executable `cli`): `wakes` asks to each session.
fn measure(version: &str, cli: PathBuf, wakes: usize) -> Measured {
    println!("measuring Claude Code {version} ...");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut h = Harness::new(cli, repo, testkit::bins!().dir().to_owned());
    h.without_channels_flag = vec!["woken"];
    let sessions = h.start_ready(&["woken", "pushed"], READY);
    for s in &sessions {
        h.mock.script(&s.id, answer_asks);
    }
    let mut asker = asker(&h);
    let mut turns = [1, 1];
    let mut measured = Measured {
        version: version.to_owned(),
        woken: Vec::new(),
        pushed: Vec::new(),
        arming: Vec::new(),
    };
    for round in 0..WARMUP + wakes {
        let order = if round % 2 == 0 {
            [Path::Woken, Path::Pushed]
        } else {
            [Path::Pushed, Path::Woken]
        };
        for path in order {
            let index = path as usize;
            let s = &sessions[index];
            turn_ended(&h, &sessions, s, turns[index]);
            let arming = (path == Path::Woken).then(|| armed(&h, &sessions, &mut asker, s));
            let question = format!("BENCH-Q {} {round}", path.name());
            let sent = Instant::now();
            let call = asker.send_call(
                "relay_ask",
                json!({"to": path.name(), "question": question}),
            );
            let asked = asker.outcome_ok(call);
            if asked["delivery"] != path.delivery() {
                h.fail(&sessions, &format!("asked {}: {asked}", path.name()));
            }
            let reached = h
                .mock
                .wait_for(&s.id, STEP, |r| {
                    r.text_since_last_answer().contains(&question)
                })
                .unwrap_or_else(|| {
                    h.fail(&sessions, &format!("{question} never reached the model"))
                });
            asker.push_of("reply");
            turns[index] += 1;
            if round < WARMUP {
                continue;
            }
            let latency = reached.at.saturating_duration_since(sent);
            match path {
                Path::Woken => measured.woken.push(latency),
                Path::Pushed => measured.pushed.push(latency),
            }
            measured.arming.extend(arming);
        }
    }
    measured
}

/// The model of both sessions: answer an ask (shown as a `<relay-message>` when woken, as a
/// `<channel>` block when pushed) with relay_reply, then end the turn.
fn answer_asks(r: &Request) -> Option<Reply> {
    let text = r.text_since_last_answer();
    if text.contains("BENCH-Q") {
        let ask_id = attr(&text, "ask_id").unwrap_or_default();
        return Some(Reply::tool(
            tool("relay_reply"),
            json!({"ask_id": ask_id, "text": "BENCH-A"}),
        ));
    }
    r.tool_result(&tool("relay_reply"))
        .map(|_| Reply::text("answered"))
}

/// The value of the first `key="..."` attribute in `text`.
fn attr(text: &str, key: &str) -> Option<String> {
    let marker = format!(" {key}=\"");
    let start = text.find(&marker)? + marker.len();
    let end = text[start..].find('"')?;
    Some(text[start..start + end].to_owned())
}

/// The asker: a `relay-channel` on the harness's hub, driven over MCP as Claude Code drives it,
/// its pushes on (so replies come back as pushes), once it sees both sessions.
fn asker(h: &Harness) -> Channel {
    let mut command = Command::new(testkit::bins!().channel);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", h.root())
        .env("CLAUDE_PLUGIN_DATA", h.plugin_data_dir())
        .env("RELAY_SESSION_NAME", "asker")
        .env("RELAY_CHANNELS", "on")
        .env("RELAY_LOG", "warn")
        .current_dir(h.root());
    let mut asker = Channel::spawn_command(command, "asker");
    asker.initialize();
    let deadline = Instant::now() + STEP;
    loop {
        let peers = asker.ok("relay_peers", json!({}));
        let names: Vec<&str> = peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|peer| peer["name"].as_str())
            .collect();
        if names.contains(&"woken") && names.contains(&"pushed") {
            return asker;
        }
        assert!(
            Instant::now() < deadline,
            "the asker never saw both sessions: {peers}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until session `s` has ended `turns` turns (one stream-json `result` each).
fn turn_ended(h: &Harness, sessions: &[ClaudeSession], s: &ClaudeSession, turns: usize) {
    let deadline = Instant::now() + STEP;
    while results(s) < turns {
        if Instant::now() >= deadline {
            h.fail(sessions, &format!("{}: turn {turns} never ended", s.name));
        }
        s.wait_event(Duration::from_millis(100), |event| {
            event["type"] == "result"
        });
    }
}

fn results(s: &ClaudeSession) -> usize {
    s.events()
        .iter()
        .filter(|event| event["type"] == "result")
        .count()
}

/// Waits until the asker's `relay_peers` shows the waiter of session `s` armed; returns how long
/// after the request that ended its last turn it was first seen armed.
fn armed(
    h: &Harness,
    sessions: &[ClaudeSession],
    asker: &mut Channel,
    s: &ClaudeSession,
) -> Duration {
    let last = h
        .mock
        .main_requests(&s.id)
        .last()
        .map(|r| r.at)
        .expect("a request ended the last turn");
    let deadline = Instant::now() + STEP;
    loop {
        let peers = asker.ok("relay_peers", json!({}));
        let armed = peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|peer: &Value| peer["name"] == s.name.as_str() && peer["waiter"] == true);
        if armed {
            return Instant::now().saturating_duration_since(last);
        }
        if Instant::now() >= deadline {
            h.fail(sessions, &format!("{}: no waiter armed: {peers}", s.name));
        }
        std::thread::sleep(ARM_POLL);
    }
}
