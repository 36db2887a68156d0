//! `relay demo`: the conversation it shows, the transcript blocks it renders, and that it leaves
//! nothing behind, also when interrupted.

use std::{fs, path::PathBuf};

use serde_json::Value;
use testkit::{RelayRun, World, bins, kill, process_gone, wait_for};

const SOURCE_PREFIX: &str = "<channel source=\"plugin:relay:relay\" ";

/// The processes and directory named by the `started` line.
struct Started {
    pids: Vec<u32>,
    temp_dir: PathBuf,
}

fn started(line: &Value) -> Started {
    assert_eq!(line["type"], "started", "{line}");
    let mut pids = vec![line["hub_pid"].as_u64().expect("hub_pid") as u32];
    for pid in line["channel_pids"].as_array().expect("channel_pids") {
        pids.push(pid.as_u64().expect("a channel pid") as u32);
    }
    assert_eq!(pids.len(), 3, "{line}");
    let temp_dir = PathBuf::from(line["temp_dir"].as_str().expect("temp_dir"));
    assert!(
        PathBuf::from(line["data_dir"].as_str().expect("data_dir")).starts_with(&temp_dir),
        "{line}"
    );
    Started { pids, temp_dir }
}

/// Everything the demo started is gone and its directory removed.
fn left_nothing_behind(started: &Started) {
    for pid in &started.pids {
        wait_for(&format!("process {pid} to be gone"), || process_gone(*pid));
    }
    assert!(
        !started.temp_dir.exists(),
        "{} still exists",
        started.temp_dir.display()
    );
}

/// The one push of `kind` that `session` received in `step`.
fn push<'a>(lines: &'a [Value], step: &str, session: &str, kind: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            line["type"] == "push"
                && line["step"] == step
                && line["session"] == session
                && line["meta"]["kind"] == kind
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{step}: {kind} push at {session}: {lines:#?}"
    );
    found[0]
}

#[test]
fn the_demo_shows_every_push_as_the_transcript_would_and_leaves_nothing_behind() {
    let relay = World::new(bins!());
    let elsewhere = relay.dir.path().join("not-used");
    let run = relay.relay(&["demo", "--json", "--data-dir", elsewhere.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    let started = started(&lines[0]);
    assert_eq!(
        lines[0]["sessions"],
        serde_json::json!(["backend-api", "frontend"])
    );
    assert_eq!(lines.last().unwrap()["type"], "done", "{run:?}");

    // Every push is rendered as Claude Code renders it: source first, the meta as attributes,
    // the content verbatim on its own lines.
    let pushes: Vec<&Value> = lines.iter().filter(|l| l["type"] == "push").collect();
    assert_eq!(pushes.len(), 4, "{lines:#?}");
    for push in &pushes {
        let rendered = push["rendered"].as_str().unwrap();
        assert!(rendered.starts_with(SOURCE_PREFIX), "{rendered}");
        let content = push["content"].as_str().unwrap();
        assert!(
            rendered.ends_with(&format!(">\n{content}\n</channel>")),
            "{rendered}"
        );
        for (key, value) in push["meta"].as_object().unwrap() {
            let attribute = format!(" {key}=\"{}\"", value.as_str().unwrap());
            assert!(rendered.contains(&attribute), "{attribute} in {rendered}");
        }
    }

    // The question at backend-api, and its ask_id is the one relay_ask returned.
    let asked = lines
        .iter()
        .find(|l| l["type"] == "call" && l["tool"] == "relay_ask")
        .expect("a relay_ask call");
    assert_eq!(asked["session"], "frontend");
    assert_eq!(asked["arguments"]["to"], "backend-api");
    let question = push(&lines, "ask", "backend-api", "ask");
    assert_eq!(question["meta"]["from"], "frontend");
    assert_eq!(question["meta"]["ask_id"], asked["result"]["ask_id"]);
    assert_eq!(question["content"], asked["arguments"]["question"]);

    // The reply at frontend.
    let reply = push(&lines, "reply", "frontend", "reply");
    assert_eq!(reply["meta"]["from"], "backend-api");
    assert_eq!(reply["meta"]["ask_id"], asked["result"]["ask_id"]);

    // The broadcast question at frontend, and frontend's answer back at backend-api.
    let broadcast = lines
        .iter()
        .find(|l| l["type"] == "call" && l["tool"] == "relay_broadcast")
        .expect("a relay_broadcast call");
    let broadcast_id = &broadcast["result"]["broadcast_id"];
    let question = push(&lines, "broadcast", "frontend", "ask");
    assert_eq!(question["meta"]["broadcast_id"], *broadcast_id);
    assert!(
        question["rendered"].as_str().unwrap().contains(&format!(
            " broadcast_id=\"{}\"",
            broadcast_id.as_str().unwrap()
        )),
        "{question}"
    );
    let answer = push(&lines, "broadcast", "backend-api", "reply");
    assert_eq!(answer["meta"]["from"], "frontend");
    assert_eq!(answer["meta"]["broadcast_id"], *broadcast_id);

    // The final peers show the new name.
    let last_peers = lines
        .iter()
        .rfind(|l| l["type"] == "call" && l["tool"] == "relay_peers")
        .expect("a relay_peers call");
    assert_eq!(last_peers["session"], "backend-api");
    assert_eq!(last_peers["result"]["peers"][0]["name"], "frontend-web");

    left_nothing_behind(&started);
    // Its own world only: neither the given data directory nor CLAUDE_PLUGIN_DATA was used.
    assert!(!elsewhere.exists());
    assert!(!relay.data.exists());
}

#[test]
fn the_narration_shows_calls_and_transcript_blocks() {
    let relay = World::new(bins!());
    let run: RelayRun = relay.relay(&["demo"]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    assert!(
        out.contains("frontend ▸ relay_ask(to: \"backend-api\", question: \""),
        "{out}"
    );
    assert!(
        out.contains(
            "backend-api sees in its transcript:\n<channel source=\"plugin:relay:relay\" "
        ),
        "{out}"
    );
    assert!(
        out.contains("frontend sees in its transcript:\n<channel source=\"plugin:relay:relay\" "),
        "{out}"
    );
    assert!(out.contains("kind=\"reply\""), "{out}");
    assert!(out.contains(" broadcast_id=\""), "{out}");
    assert!(out.contains("peers: frontend-web"), "{out}");
    assert!(out.contains("Done:"), "{out}");
}

/// Whether `pid` is stopped (by SIGSTOP): state `T` in `/proc/PID/stat`.
fn is_stopped(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('T'))
    })
}

#[test]
fn sigterm_mid_demo_still_cleans_up_and_exits_130() {
    let relay = World::new(bins!());
    // The demo runs in tens of milliseconds. Freezing backend-api right after the `started` line
    // holds it up: every later step needs backend-api, and so does the clean-up, which waits
    // for it to exit before killing it. Only if the whole demo outran the test is the freeze too
    // late; that run proves nothing and is repeated.
    for _attempt in 0..5 {
        let mut demo = relay.stream_relay(&["demo", "--json"]);
        let started = started(&demo.json_line_where("started", |l| l["type"] == "started"));
        let backend_pid = started.pids[1];
        kill(backend_pid, "STOP");
        wait_for("backend-api to stop or be gone", || {
            is_stopped(backend_pid) || process_gone(backend_pid)
        });
        if process_gone(backend_pid) {
            let run = demo.finish();
            assert_eq!(run.code, 0, "{run:?}");
            left_nothing_behind(&started);
            continue;
        }
        kill(demo.pid(), "TERM");
        let run = demo.finish();
        assert_eq!(run.code, 130, "{run:?}");
        let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
        assert!(
            last["error"]["message"]
                .as_str()
                .unwrap()
                .contains("interrupted"),
            "{run:?}"
        );
        assert!(!run.stdout.contains("\"type\":\"done\""), "{run:?}");
        // The frozen session could not close by itself: killing it was the last resort, and
        // the demo said so.
        assert!(run.stderr.contains("backend-api did not exit"), "{run:?}");
        left_nothing_behind(&started);
        return;
    }
    panic!("the demo finished before backend-api could be frozen, five times in a row");
}

/// A copy of `relay` in a directory of its own, next to `channel_script` as its `relay-channel`
/// (if any), run with TMPDIR in the test's world so that the demo's temp dir can be checked.
fn run_copied_relay(channel_script: Option<&str>) -> RelayRun {
    let tmp = tempfile::tempdir().expect("temp dir");
    let relay = World::new(bins!()).with_env("TMPDIR", tmp.path().to_str().unwrap());
    let bin = relay.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("relay");
    testkit::copy_executable(relay.bins().relay, &exe);
    if let Some(script) = channel_script {
        testkit::write_executable(bin.join("relay-channel"), script);
    }
    let mut command = relay.command(exe.to_str().unwrap(), relay.dir.path());
    command.arg("demo");
    let run = testkit::RelayStream::spawn(command).finish();
    let leftovers: Vec<PathBuf> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    run
}

#[test]
fn a_missing_channel_binary_is_named() {
    let run = run_copied_relay(None);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("relay-channel is not next to relay"),
        "{run:?}"
    );
}

#[test]
fn a_failed_step_is_named_exits_1_and_removes_the_temp_dir() {
    // A "channel" that exits at once: the handshake of the first session fails.
    let run = run_copied_relay(Some("#!/bin/sh\nexit 3\n"));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("demo step \"start\" failed"), "{run:?}");
    assert!(run.stderr.contains("backend-api"), "{run:?}");
    assert!(run.stderr.contains("temp directory removed"), "{run:?}");
}

#[test]
fn help_says_the_users_hub_is_never_used() {
    let run = World::new(bins!()).relay(&["demo", "--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("--data-dir and CLAUDE_PLUGIN_DATA are ignored"),
        "{run:?}"
    );
}

#[test]
fn a_reader_that_leaves_early_does_not_stop_the_clean_up() {
    let relay = World::new(bins!());
    let mut command = relay.command(relay.bins().relay, relay.dir.path());
    let mut child = command
        .args(["demo", "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn relay demo");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    // The reader is dropped here, as `relay demo --json | head -1` does.
    let started = started(&serde_json::from_str(&first).unwrap());
    wait_for("relay demo to end", || child.try_wait().unwrap().is_some());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a reader that left is no failure");
    left_nothing_behind(&started);
}
