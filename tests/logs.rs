//! The daily JSON log files written by the hub and every channel.

use std::{fs, os::unix::fs::PermissionsExt};

use serde_json::{Value, json};
use testkit::{World, bins};

fn today_utc() -> String {
    let output = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn hub_and_channels_write_one_json_object_per_line_to_the_daily_file() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    let asked = alpha.ok("relay_ask", json!({"to": "beta", "question": "q"}));
    let ask_id = asked["ask_id"].as_str().unwrap();
    beta.push();
    beta.ok("relay_reply", json!({"ask_id": ask_id, "text": "a"}));
    alpha.push();

    let files: Vec<String> = fs::read_dir(relay.logs())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [format!("relay.{}.log", today_utc())]);
    // The appender creates its files with the umask: the directory is what keeps them private.
    let mode = fs::metadata(relay.logs()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    // The hub writes its lines within 50 ms, the asker's channel its push as it sends it.
    testkit::wait_for("the reply's lines", || {
        relay.logged("reply_sent", |l| l["ask_id"] == ask_id)
            && relay.logged("pushed", |l| {
                l["ask_id"] == ask_id && l["session"] == "alpha"
            })
    });
    let lines = relay.log_lines();
    for line in &lines {
        for key in ["timestamp", "level", "component", "pid", "event"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        assert!(
            ["hub", "channel"].contains(&line["component"].as_str().unwrap()),
            "{line}"
        );
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let find = |component: &str, event: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["component"] == component && l["event"] == event && l["ask_id"] == ask_id)
            .collect()
    };
    // The whole life of one ask can be followed by its ask_id, across processes.
    assert_eq!(find("hub", "ask_sent").len(), 1);
    assert_eq!(find("hub", "reply_sent").len(), 1);
    let pushed = find("channel", "pushed");
    assert_eq!(pushed.len(), 2, "pushed to beta, then to alpha");
    let sessions: Vec<&str> = pushed
        .iter()
        .map(|l| l["session"].as_str().unwrap())
        .collect();
    assert_eq!(sessions, ["beta", "alpha"]);
    // Every line's pid is its writer's; a peer's own pid is a field of its own.
    let hub_pid = relay.hub_pid().unwrap();
    for line in lines.iter().filter(|l| l["component"] == "hub") {
        assert_eq!(line["pid"], hub_pid, "{line}");
    }
    let registered = lines
        .iter()
        .find(|l| l["event"] == "peer_registered" && l["session"] == "alpha")
        .expect("alpha registered");
    assert_eq!(registered["peer_pid"], alpha.pid());
    // Peer text is not logged.
    // Lossy: a line being written can be cut inside a character (see testkit::World::log_lines).
    let all = fs::read(relay.logs().join(format!("relay.{}.log", today_utc()))).unwrap();
    let all = String::from_utf8_lossy(&all);
    assert!(!all.contains("\"q\""), "question text leaked into the log");
}

#[test]
fn relay_log_sets_the_level() {
    let mut relay = World::new(bins!()).with_env("RELAY_LOG", "warn");
    let mut alpha = relay.channel("alpha");
    alpha.ok("relay_peers", json!({}));
    alpha.err("relay_ask", json!({"to": "nobody", "question": "q"}));
    // A stopped hub has written every line it held.
    assert_eq!(relay.relay(&["hub", "stop"]).code, 0);
    let lines = relay.log_lines();
    assert!(
        lines
            .iter()
            .all(|l| l["level"] == "warn" || l["level"] == "error"),
        "{lines:?}"
    );
}
