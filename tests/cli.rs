//! The `relay` command line against a real hub: status, peers, ask, broadcast, hub stop and
//! restart, their exit codes and `--json` shapes.

use serde_json::json;
use testkit::{PROMPTLY, RawPeer, World, bins, wait_for};

/// The exit statuses the README documents.
const USAGE: i32 = 2;
const NOT_ALL_ANSWERED: i32 = 3;
const PEER_NOT_FOUND: i32 = 10;
const PEER_GONE: i32 = 11;
const TIMEOUT: i32 = 12;
const HUB_UNREACHABLE: i32 = 18;
const BAD_ARGS: i32 = 19;

#[test]
fn status_without_a_hub_exits_1_with_a_clear_line() {
    let relay = World::new(bins!());
    let run = relay.relay(&["status"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no hub is running"), "{run:?}");
    let run = relay.relay(&["status", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["running"], false);
}

/// The README's rule for `--json` failures, each case where no hub runs: an `error` object on
/// stdout, but `status` answers `running: false`, and a command line clap cannot parse gets
/// clap's message on stderr only.
#[test]
fn under_json_a_failure_is_an_error_object_on_stdout_as_the_readme_says() {
    let relay = World::new(bins!());
    for (args, code) in [
        (vec!["peers", "--json"], 1),
        (vec!["ask", "alpha", "hello?", "--json"], HUB_UNREACHABLE),
        (vec!["broadcast", "anyone?", "--json"], HUB_UNREACHABLE),
        (vec!["logs", "--json"], 1),
    ] {
        let run = relay.relay(&args);
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        let error = &run.json()["error"];
        let message = error["message"].as_str().unwrap();
        assert!(run.stderr.contains(message), "{args:?}: {run:?}");
        let expected = (code == HUB_UNREACHABLE).then_some("hub_unreachable");
        assert_eq!(error["code"].as_str(), expected, "{args:?}: {run:?}");
    }
    let status = relay.relay(&["status", "--json"]);
    assert_eq!(status.code, 1, "{status:?}");
    assert_eq!(status.json()["running"], false, "{status:?}");
    let unparsed = relay.relay(&["status", "--json", "--frobnicate"]);
    assert_eq!(unparsed.code, USAGE, "{unparsed:?}");
    assert_eq!(unparsed.stdout, "", "{unparsed:?}");
    assert!(unparsed.stderr.contains("--frobnicate"), "{unparsed:?}");
}

#[test]
fn status_describes_the_running_hub() {
    let mut relay = World::new(bins!());
    let _alpha = relay.channel("alpha");
    let hub_pid = relay.hub_pid().unwrap();

    let status = relay.relay(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let status = status.json();
    assert_eq!(status["running"], true);
    assert_eq!(status["hub_pid"], hub_pid);
    assert_eq!(status["hub_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["protocol"], 2);
    assert_eq!(status["peers"], 1);
    assert_eq!(status["pending_asks"], 0);
    assert!(status["uptime_secs"].is_u64(), "{status}");
    assert_eq!(status["socket"], relay.socket().to_str().unwrap());
    assert_eq!(status["data_dir"], relay.data.to_str().unwrap());

    let text = relay.relay(&["status"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains(&format!("running, pid {hub_pid}")),
        "{text:?}"
    );
    assert!(text.stdout.contains("pending asks"), "{text:?}");
}

#[test]
fn data_dir_option_selects_the_hub() {
    let mut relay = World::new(bins!());
    let _alpha = relay.channel("alpha");
    let elsewhere = relay.dir.path().join("elsewhere");
    let run = relay.relay(&["status", "--data-dir", elsewhere.to_str().unwrap()]);
    assert_eq!(run.code, 1, "another data directory has no hub: {run:?}");
    let run = relay.relay(&["status", "--data-dir", relay.data.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn peers_lists_every_session_without_joining() {
    let mut relay = World::new(bins!());
    assert_eq!(relay.relay(&["peers"]).code, 1, "no hub yet");
    let alpha = relay.channel("alpha");
    let _beta = relay.channel("beta");

    let run = relay.relay(&["peers", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let peers = run.json()["peers"].as_array().unwrap().clone();
    let names: Vec<&str> = peers.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta"], "the command line is not listed");
    assert_eq!(peers[0]["kind"], "channel");
    assert_eq!(peers[0]["pushes"], "on");
    assert_eq!(peers[0]["pid"], alpha.pid());

    let table = relay.relay(&["peers"]);
    let mut lines = table.stdout.lines();
    let header = lines.next().unwrap();
    for column in [
        "NAME",
        "KIND",
        "CWD",
        "BRANCH",
        "PID",
        "DELIVERY",
        "LAST SEEN",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with("alpha "), "{row}");
    assert!(row.contains(&alpha.pid().to_string()), "{row}");
    assert!(row.contains(" ago"), "{row}");
    assert!(
        !table.stdout.contains("pushes on:"),
        "only sessions whose pushes are not on get a note: {table:?}"
    );

    let mut gamma = relay.spawn_channel("gamma", &[("RELAY_CHANNELS", "off")]);
    gamma.initialize();
    relay.registered(&mut gamma);
    let table = relay.relay(&["peers"]);
    assert!(
        table
            .stdout
            .ends_with("\ngamma: pushes off: RELAY_CHANNELS=off\n"),
        "{table:?}"
    );
}

#[test]
fn ask_prints_the_reply_and_shows_the_command_line_as_a_cli_peer() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");

    let asking = relay.stream_relay(&["ask", "alpha", "Is the build green?", "--as", "ops"]);
    let question = alpha.push();
    assert_eq!(question["content"], "Is the build green?");
    assert_eq!(question["meta"]["from"], "ops");
    let peers = alpha.ok("relay_peers", json!({}));
    let ops = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ops")
        .cloned()
        .expect("the command line is listed");
    assert_eq!(ops["kind"], "cli");
    let ask_id = question["meta"]["ask_id"].as_str().unwrap();
    alpha.ok(
        "relay_reply",
        json!({"ask_id": ask_id, "text": "Green.\nAll 98 tests pass."}),
    );
    let run = asking.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout, "Green.\nAll 98 tests pass.\n",
        "stdout is the reply alone"
    );

    let asking = relay.stream_relay(&["ask", "alpha", "Which branch?", "--json"]);
    let question = alpha.push();
    assert_eq!(question["meta"]["from"], "cli", "the default name");
    let ask_id = question["meta"]["ask_id"].as_str().unwrap().to_owned();
    alpha.ok("relay_reply", json!({"ask_id": ask_id, "text": "main"}));
    let run = asking.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let reply = run.json();
    assert_eq!(reply["ask_id"], ask_id);
    assert_eq!(reply["thread_id"], ask_id);
    assert_eq!(reply["from"], "alpha");
    assert_eq!(reply["text"], "main");
    assert_eq!(reply["delivery"], "live");
    assert!(reply["elapsed_ms"].is_u64(), "{reply}");
}

#[test]
fn ask_failures_exit_with_their_own_codes() {
    let mut relay = World::new(bins!());
    let no_hub = relay.relay(&["ask", "alpha", "hello?"]);
    assert_eq!(no_hub.code, HUB_UNREACHABLE, "{no_hub:?}");
    assert!(no_hub.stderr.contains("no hub is running"), "{no_hub:?}");

    for (args, what) in [
        (vec!["ask", "alpha", "q", "--timeout", "0"], "--timeout"),
        (vec!["broadcast", "q", "--wait", "3601"], "--wait"),
        (vec!["ask", "alpha", "q", "--as", "two words"], "--as"),
    ] {
        let run = relay.relay(&args);
        assert_eq!(run.code, USAGE, "{args:?}: {run:?}");
        assert!(run.stderr.contains(what), "{run:?}");
    }
    for (args, what) in [
        (vec!["ask", "alpha", "-"], "empty"),
        (vec!["ask", "alpha", "  "], "empty"),
    ] {
        let run = relay.relay(&args);
        assert_eq!(run.code, BAD_ARGS, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("bad_args") && run.stderr.contains(what),
            "{run:?}"
        );
    }

    let mut alpha = relay.channel("alpha");
    let unknown = relay.relay(&["ask", "nobody", "hello?", "--json"]);
    assert_eq!(unknown.code, PEER_NOT_FOUND, "{unknown:?}");
    assert_eq!(unknown.json()["error"]["code"], "peer_not_found");
    assert!(unknown.stderr.contains("peer_not_found"), "{unknown:?}");

    let timed_out = relay.stream_relay(&["ask", "alpha", "slow?", "--timeout", "1"]);
    alpha.push();
    let run = timed_out.finish();
    assert_eq!(run.code, TIMEOUT, "{run:?}");
    assert!(run.stderr.contains("timeout"), "{run:?}");
    assert!(
        !run.stderr.contains("surface this"),
        "advice meant for a model is left out: {run:?}"
    );

    // A command line cannot be asked: it could never answer.
    let waiting = relay.stream_relay(&["ask", "alpha", "wait", "--as", "waiter"]);
    alpha.push();
    let run = relay.relay(&["ask", "waiter", "hello?"]);
    assert_eq!(run.code, BAD_ARGS, "{run:?}");
    assert!(run.stderr.contains("command line"), "{run:?}");

    alpha.kill();
    let run = waiting.finish();
    assert_eq!(run.code, PEER_GONE, "{run:?}");
    assert!(run.stderr.contains("peer_gone"), "{run:?}");
}

#[test]
fn broadcast_streams_replies_then_summarises_who_did_not_answer() {
    let mut relay = World::new(bins!());
    assert_eq!(relay.relay(&["broadcast", "anyone?"]).code, HUB_UNREACHABLE);
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");

    let asking = relay.stream_relay(&["broadcast", "What are you on?", "--wait", "2", "--json"]);
    let question = alpha.push();
    let ask_id = question["meta"]["ask_id"].as_str().unwrap();
    alpha.ok(
        "relay_reply",
        json!({"ask_id": ask_id, "text": "the parser"}),
    );
    beta.push();
    let run = asking.finish();
    assert_eq!(run.code, NOT_ALL_ANSWERED, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert_eq!(lines[0]["type"], "reply");
    assert_eq!(lines[0]["from"], "alpha");
    assert_eq!(lines[0]["text"], "the parser");
    assert_eq!(lines[1]["type"], "failed");
    assert_eq!(lines[1]["to"], "beta");
    assert_eq!(lines[1]["code"], "timeout");
    let summary = &lines[2];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["asked"], 2);
    assert_eq!(summary["answered"], json!(["alpha"]));
    assert_eq!(summary["unanswered"][0]["name"], "beta");
    assert_eq!(summary["unanswered"][0]["code"], "timeout");
    assert_eq!(summary["skipped"], json!([]));
    assert_eq!(summary["queued"], json!([]));

    let asking = relay.stream_relay(&["broadcast", "Still there?"]);
    for (channel, text) in [(&mut alpha, "yes from alpha"), (&mut beta, "yes from beta")] {
        let question = channel.push();
        let ask_id = question["meta"]["ask_id"].as_str().unwrap().to_owned();
        channel.ok("relay_reply", json!({"ask_id": ask_id, "text": text}));
    }
    let run = asking.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("── alpha (after"), "{run:?}");
    assert!(run.stdout.contains("yes from beta"), "{run:?}");
    assert!(run.stdout.contains("2 of 2 answered."), "{run:?}");
}

#[test]
fn broadcast_with_nobody_to_ask_says_so() {
    let mut relay = World::new(bins!());
    relay.start_hub();
    // Another command line is connected, but command lines are never asked.
    let mut person = RawPeer::connect(&relay);
    let welcome = person.request(json!({
        "op": "hello", "protocol": 2, "version": "test", "name": "person", "kind": "cli", "pushes": "on"
    }));
    assert_eq!(welcome["type"], "ok", "{welcome}");
    let run = relay.relay(&["broadcast", "anyone?"]);
    assert_eq!(run.code, PEER_NOT_FOUND, "{run:?}");
    assert!(run.stderr.contains("nobody was asked"), "{run:?}");
}

#[test]
fn hub_stop_fails_pending_asks_and_sessions_come_back() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let old_hub = relay.hub_pid().unwrap();
    let asking = relay.stream_relay(&["ask", "alpha", "are you there?"]);
    alpha.push();

    let stop = relay.relay(&["hub", "stop", "--json"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let stopped = stop.json();
    assert_eq!(stopped["stopped"]["hub_pid"], old_hub);
    assert_eq!(stopped["stopped"]["pending_asks"], 1);
    relay.wait_hub_gone(old_hub, PROMPTLY);
    let run = asking.finish();
    assert_eq!(run.code, HUB_UNREACHABLE, "{run:?}");

    // The session reconnects by itself (starting a new hub).
    wait_for("alpha to reconnect", || {
        relay.relay(&["peers", "--json"]).code == 0
            && relay.relay(&["peers", "--json"]).json()["peers"][0]["name"] == "alpha"
    });
    relay.note_hub();
    assert_ne!(relay.hub_pid(), Some(old_hub));

    // With nothing running, stop is a no-op that says so.
    let mut empty = World::new(bins!());
    let run = empty.relay(&["hub", "stop"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("no hub was running"), "{run:?}");
    empty.note_hub();
}

#[test]
fn hub_restart_starts_a_new_hub_the_sessions_rejoin() {
    let mut relay = World::new(bins!());
    let cold = relay.relay(&["hub", "restart", "--json"]);
    assert_eq!(cold.code, 0, "{cold:?}");
    relay.note_hub();
    let first = cold.json()["running"]["hub_pid"].as_u64().unwrap() as u32;
    assert_eq!(relay.hub_pid(), Some(first));

    let mut alpha = relay.channel("alpha");
    let run = relay.relay(&["hub", "restart", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    relay.note_hub();
    let restarted = run.json();
    assert_eq!(restarted["stopped"]["hub_pid"], first);
    let second = restarted["running"]["hub_pid"].as_u64().unwrap() as u32;
    assert_ne!(second, first);
    relay.wait_hub_gone(first, PROMPTLY);
    wait_for("alpha to rejoin", || {
        relay.relay(&["status", "--json"]).json()["peers"] == 1
    });
    let peers = alpha.ok("relay_peers", json!({}));
    assert_eq!(peers["me"], "alpha", "{peers}");
}

#[test]
fn an_interrupted_ask_exits_130_and_its_late_reply_is_refused() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let asking = relay.stream_relay(&["ask", "alpha", "long one?", "--json"]);
    let question = alpha.push();
    testkit::kill(asking.pid(), "TERM");
    let run = asking.finish();
    assert_eq!(run.code, 130, "{run:?}");
    assert!(run.stderr.contains("interrupted"), "{run:?}");
    let error = &run.json()["error"];
    assert!(
        error["message"].as_str().unwrap().contains("abandoned"),
        "{run:?}"
    );
    wait_for("the hub to see the command line leave", || {
        relay.relay(&["status", "--json"]).json()["peers"] == 1
    });
    let ask_id = question["meta"]["ask_id"].as_str().unwrap();
    let (code, _) = alpha.err("relay_reply", json!({"ask_id": ask_id, "text": "late"}));
    assert_eq!(code, "unknown_ask");
}

#[test]
fn from_a_shell_the_plugin_data_directory_is_the_default() {
    let relay = World::new(bins!());
    let status_data_dir = |relay: &World| {
        let mut command = relay.command(relay.bins().relay, relay.dir.path());
        command
            .env_remove("CLAUDE_PLUGIN_DATA")
            .args(["status", "--json"]);
        testkit::RelayStream::spawn(command).finish().json()["data_dir"].clone()
    };
    assert_eq!(
        status_data_dir(&relay),
        relay.home.join(".claude-relay").to_str().unwrap(),
        "without the plugin, as a channel outside Claude Code"
    );
    let plugin = relay.home.join(".claude/plugins/data/relay-claude-relay");
    std::fs::create_dir_all(&plugin).unwrap();
    assert_eq!(status_data_dir(&relay), plugin.to_str().unwrap());
}

#[test]
fn a_relative_data_dir_names_the_same_hub_from_anywhere() {
    let mut relay = World::new(bins!());
    let mut command = relay.command(relay.bins().relay, relay.dir.path());
    command.args(["hub", "restart", "--data-dir", "data", "--json"]);
    let run = testkit::RelayStream::spawn(command).finish();
    assert_eq!(run.code, 0, "{run:?}");
    relay.note_hub();
    assert_eq!(
        relay.hub_pid(),
        Some(run.json()["running"]["hub_pid"].as_u64().unwrap() as u32),
        "the hub serves <cwd>/data, where the command line looks"
    );
    assert!(relay.socket().exists());
}

/// Whether `pid` has handlers for SIGINT and SIGTERM installed (`SigCgt` in its status).
fn catches_interrupt_and_term(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0 && mask & (1 << (15 - 1)) != 0)
}

#[test]
fn a_signal_while_the_question_is_read_sends_nothing() {
    use std::io::Write;

    let mut relay = World::new(bins!());
    let _alpha = relay.channel("alpha");
    let mut command = relay.command(relay.bins().relay, relay.dir.path());
    command
        .args(["ask", "alpha", "-"])
        .stdin(std::process::Stdio::piped());
    let mut asking = testkit::RelayStream::spawn_with_stdin(command);
    asking
        .stdin()
        .write_all(b"half a quest")
        .expect("write to relay's stdin");
    wait_for("relay to catch SIGINT and SIGTERM", || {
        catches_interrupt_and_term(asking.pid())
    });
    testkit::kill(asking.pid(), "INT");
    let run = asking.finish();
    assert_eq!(run.code, 130, "{run:?}");
    assert!(run.stderr.contains("nothing was sent"), "{run:?}");
    // A stopped hub has written every line it held.
    assert_eq!(relay.relay(&["hub", "stop"]).code, 0);
    assert!(!relay.logged("ask_sent", |_| true), "no question went out");
}

/// `relay hub stop` stops a hub of another version whose status has another shape, and reports
/// only what it could read of it.
#[test]
fn hub_stop_stops_a_hub_of_another_shape() {
    use std::{
        io::{BufRead, BufReader, Write},
        os::unix::net::UnixListener,
    };

    let relay = World::new(bins!());
    std::fs::create_dir_all(&relay.data).unwrap();
    let listener = UnixListener::bind(relay.socket()).unwrap();
    let socket = relay.socket();
    let old_hub = std::thread::spawn(move || {
        let mut ops = Vec::new();
        // One connection for status and shutdown; the next ones ask whether it is gone.
        let (stream, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(&stream).lines();
        for _ in 0..2 {
            let request: serde_json::Value =
                serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            let result = match request["op"].as_str().unwrap() {
                "status" => json!({"hub_pid": 4242, "version": "9.0.0", "sessions": 3}),
                _ => json!({}),
            };
            let answer = json!({"type": "ok", "id": request["id"], "result": result});
            writeln!(&stream, "{answer}").unwrap();
            ops.push(request["op"].as_str().unwrap().to_owned());
        }
        std::fs::remove_file(socket).unwrap();
        ops
    });
    let run = relay.relay(&["hub", "stop", "--json"]);
    assert_eq!(old_hub.join().unwrap(), ["status", "shutdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["stopped"], json!({"hub_pid": 4242}));
    assert!(run.stderr.contains("another version (pid 4242)"), "{run:?}");
}

#[test]
fn broadcast_says_which_sessions_had_the_question_queued() {
    let mut relay = World::new(bins!());
    let mut off = relay.spawn_channel("offline", &[("RELAY_CHANNELS", "off")]);
    off.initialize();
    relay.registered(&mut off);
    let run = relay.relay(&["broadcast", "anyone?", "--wait", "1"]);
    assert_eq!(run.code, NOT_ALL_ANSWERED, "{run:?}");
    assert!(
        run.stdout
            .contains("no answer from offline (timeout, queued: its pushes are off"),
        "{run:?}"
    );
    let run = relay.relay(&["broadcast", "anyone?", "--wait", "1", "--json"]);
    let summary = run.json_lines().pop().unwrap();
    assert_eq!(summary["queued"], json!(["offline"]), "{run:?}");
}
