//! The hub's life: started on demand, exactly one per data directory, survived by its channels,
//! exiting when idle; and the channel's exit.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, net::UnixListener},
    thread,
    time::{Duration, Instant},
};

use serde_json::json;
use testkit::{Channel, PROMPTLY, World, bins, kill, wait_for};

#[test]
fn the_first_channel_starts_the_hub_with_private_files() {
    let mut relay = World::new(bins!());
    assert!(!relay.socket().exists());
    let alpha = relay.channel("alpha");
    let hub = relay.hub_pid().expect("a hub runs");
    assert_eq!(relay.hubs_running(), [hub]);
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&relay.data), 0o700);
    assert_eq!(mode(&relay.socket()), 0o600);
    // The hub is a daemon: not the channel's child, and in a session of its own, so that
    // Claude Code ending the channel's process group does not reach it.
    let (parent, session) = (stat_field(hub, 1), stat_field(hub, 3));
    assert_ne!(
        parent,
        alpha.pid().to_string(),
        "the hub is not the channel's child"
    );
    assert_ne!(
        session,
        stat_field(alpha.pid(), 3),
        "the hub has its own session"
    );
}

/// Field `index` of /proc/PID/stat, counting from the state field after the command name.
fn stat_field(pid: u32, index: usize) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(')').next().unwrap();
    after_name.split_whitespace().nth(index).unwrap().to_owned()
}

#[test]
fn eight_channels_started_at_once_leave_exactly_one_hub() {
    let mut relay = World::new(bins!());
    let names: Vec<String> = (1..=8).map(|n| format!("peer{n}")).collect();
    let mut channels: Vec<Channel> = names
        .iter()
        .map(|name| relay.spawn_channel(name, &[]))
        .collect();
    for channel in &mut channels {
        channel.initialize();
    }
    for channel in &mut channels {
        relay.registered(channel);
    }
    // Everyone is in the same hub: each sees the seven others.
    for channel in &mut channels {
        let peers = channel.ok("relay_peers", json!({}));
        assert_eq!(peers["peers"].as_array().unwrap().len(), 7, "{peers}");
    }
    let hubs = relay.hubs_running();
    assert_eq!(hubs.len(), 1, "hubs: {hubs:?}");
    assert_eq!(relay.hub_pid(), Some(hubs[0]));
}

#[test]
fn channels_reconnect_under_their_names_after_the_hub_is_killed() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    alpha.ok("relay_rename", json!({"new_name": "backend-api"}));
    let pending = alpha.ok(
        "relay_ask",
        json!({"to": "beta", "question": "still there?"}),
    );
    beta.push();
    let old_hub = relay.hub_pid().unwrap();
    kill(old_hub, "KILL");

    // The ask pending when the hub died fails for its caller.
    let failure = alpha.push();
    assert_eq!(failure["meta"]["kind"], "error");
    assert_eq!(failure["meta"]["code"], "hub_unreachable");
    assert_eq!(failure["meta"]["ask_id"], pending["ask_id"]);
    assert!(
        failure["content"]
            .as_str()
            .unwrap()
            .contains("do not broadcast as a fallback")
    );

    // A new hub comes up and both sessions are back under the same names.
    wait_for("a new hub", || {
        relay.hub_pid().is_some_and(|pid| pid != old_hub)
    });
    relay.note_hub();
    wait_for("both sessions to re-register", || {
        beta.ok("relay_peers", json!({}))["peers"]
            .as_array()
            .is_some_and(|peers| peers.len() == 1)
    });
    assert_eq!(
        beta.ok("relay_peers", json!({}))["peers"][0]["name"],
        "backend-api"
    );
    assert_eq!(alpha.ok("relay_peers", json!({}))["me"], "backend-api");
    assert_eq!(beta.ok("relay_peers", json!({}))["me"], "beta");
    let asked = beta.ok(
        "relay_ask",
        json!({"to": "backend-api", "question": "back?"}),
    );
    let incoming = alpha.push();
    assert_eq!(incoming["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(relay.hubs_running().len(), 1);
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let mut relay = World::new(bins!());
    fs::create_dir_all(&relay.data).unwrap();
    // A socket file nobody listens on, as a SIGKILLed hub leaves behind.
    drop(UnixListener::bind(relay.socket()).unwrap());
    assert!(relay.socket().exists());
    let mut alpha = relay.channel("alpha");
    assert_eq!(alpha.ok("relay_peers", json!({}))["me"], "alpha");
    assert!(relay.hub_pid().is_some());
    wait_for("the hub to log that it removed the stale socket", || {
        relay.logged("removed_stale_socket", |line| line["component"] == "hub")
    });
}

/// The idle deadline itself, and a connection putting it off, are tested in process on a paused
/// clock (src/hub/tests.rs); this is the daemon really ending, its socket gone.
#[test]
fn the_hub_exits_when_idle_and_removes_its_socket() {
    let mut relay = World::new(bins!()).with_env("RELAY_HUB_IDLE_SECS", "1");
    let mut alpha = relay.channel("alpha");
    let hub = relay.hub_pid().unwrap();
    alpha.close_stdin();
    assert!(alpha.wait_exit(PROMPTLY).success());
    relay.wait_hub_gone(hub, Duration::from_secs(5));
    assert!(
        !relay.socket().exists(),
        "the socket is removed on the way out"
    );
    assert!(relay.logged("hub_idle_exit", |_| true));
}

#[test]
fn the_channel_exits_cleanly_on_stdin_eof_sigint_and_sigterm() {
    let mut relay = World::new(bins!());
    let mut by_eof = relay.channel("eof");
    by_eof.close_stdin();
    assert!(by_eof.wait_exit(Duration::from_secs(5)).success());
    for signal in ["INT", "TERM"] {
        let mut channel = relay.channel(&signal.to_lowercase());
        kill(channel.pid(), signal);
        let status = channel.wait_exit(Duration::from_secs(5));
        assert!(status.success(), "exit after SIG{signal}: {status}");
    }
}

#[test]
fn tools_answer_hub_unreachable_within_seconds_when_no_hub_can_start() {
    let relay = World::new(bins!());
    // A channel with no relay-hub beside it cannot start a hub.
    let lonely = relay.dir.path().join("bin");
    fs::create_dir_all(&lonely).unwrap();
    let exe = lonely.join("relay-channel");
    testkit::copy_executable(relay.bins().channel, &exe);
    let mut command = std::process::Command::new(&exe);
    command
        .env_clear()
        .env("HOME", &relay.home)
        .env("CLAUDE_PLUGIN_DATA", &relay.data)
        .env("RELAY_SESSION_NAME", "lonely");
    let mut channel = Channel::spawn_command(command, "lonely");
    channel.initialize();
    let started = Instant::now();
    let (code, message) = channel.err("relay_peers", json!({}));
    assert_eq!(code, "hub_unreachable");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains("relay-hub"), "{message}");
}

#[test]
fn a_hub_of_another_protocol_is_reported_as_protocol_mismatch() {
    let relay = World::new(bins!());
    fs::create_dir_all(&relay.data).unwrap();
    let listener = UnixListener::bind(relay.socket()).unwrap();
    // Answers every hello the way a hub of protocol 0 would, for as long as the test runs.
    thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let hello: serde_json::Value = serde_json::from_str(&line).unwrap();
            let answer = json!({"type": "err", "id": hello["id"], "code": "protocol_mismatch",
                "message": "the running hub speaks relay protocol 0; stop it with `kill 1`"});
            let _ = writeln!(stream, "{answer}");
        }
    });
    let mut channel = relay.spawn_channel("alpha", &[]);
    channel.initialize();
    let (code, message) = channel.err("relay_peers", json!({}));
    assert_eq!(code, "protocol_mismatch");
    assert!(message.contains("protocol 0"), "{message}");
}

fn hub_control(relay: &World, flag: &str) -> std::process::Output {
    relay
        .command(relay.bins().hub, relay.dir.path())
        .arg(flag)
        .output()
        .expect("run relay-hub")
}

#[test]
fn relay_hub_status_and_stop_control_the_running_hub() {
    let mut relay = World::new(bins!());
    let output = hub_control(&relay, "--status");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no hub is running"));

    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    let asked = alpha.ok("relay_ask", json!({"to": "beta", "question": "q"}));
    beta.push();
    let hub = relay.hub_pid().unwrap();
    let output = hub_control(&relay, "--status");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        format!("pid={hub}"),
        format!("version={}", env!("CARGO_PKG_VERSION")),
        "protocol=2".to_owned(),
        "peers=2".to_owned(),
        "pending_asks=1".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }

    let output = hub_control(&relay, "--stop");
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("stopped=true")
    );
    relay.wait_hub_gone(hub, Duration::from_secs(5));
    // The ask pending at that moment fails for its caller; the sessions come back by themselves.
    let failure = alpha.push();
    assert_eq!(failure["meta"]["code"], "hub_unreachable");
    assert_eq!(failure["meta"]["ask_id"], asked["ask_id"]);
    wait_for("a new hub", || {
        relay.hub_pid().is_some_and(|pid| pid != hub)
    });
    relay.note_hub();
    wait_for("alpha to see beta again", || {
        alpha.ok("relay_peers", json!({}))["peers"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
}
