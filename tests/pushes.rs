//! A channel works out from its parent's command line whether Claude Code will show its pushes,
//! and every peer sees the answer in relay_peers.

use serde_json::json;
use testkit::{Channel, World, bins};

/// Starts a channel whose parent is a shell that calls itself `claude` and carries `flags` on its
/// command line, as a real `claude` process would.
fn channel_under_fake_claude(relay: &World, name: &str, flags: &str) -> Channel {
    let script = format!("'{}'; exit $?", relay.bins().channel);
    let mut command = relay.command("/bin/bash", relay.dir.path());
    command
        .env("RELAY_SESSION_NAME", name)
        .env("RELAY_CHANNELS", "")
        .args([
            "-c",
            &format!("exec -a claude /bin/bash -c \"$0\" {flags}"),
            &script,
        ]);
    Channel::spawn_command(command, name)
}

fn channels_of(peers: &serde_json::Value, name: &str) -> String {
    let entry = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {peers}"));
    entry["pushes"].as_str().unwrap().to_owned()
}

#[test]
fn relay_peers_shows_whose_pushes_are_on_off_or_unknown() {
    let mut relay = World::new(bins!());
    let mut on = channel_under_fake_claude(
        &relay,
        "with-flag",
        "--dangerously-load-development-channels plugin:relay@claude-relay",
    );
    on.initialize();
    relay.registered(&mut on);
    let mut off = channel_under_fake_claude(&relay, "without-flag", "--resume");
    off.initialize();
    relay.registered(&mut off);
    let mut forced = relay.spawn_channel("forced", &[("RELAY_CHANNELS", "on")]);
    forced.initialize();
    relay.registered(&mut forced);
    // This test process is no `claude`: unknown.
    let mut observer = relay.spawn_channel("observer", &[("RELAY_CHANNELS", "")]);
    observer.initialize();
    relay.registered(&mut observer);

    let peers = observer.ok("relay_peers", json!({}));
    assert_eq!(channels_of(&peers, "with-flag"), "on");
    assert_eq!(channels_of(&peers, "without-flag"), "off");
    assert_eq!(channels_of(&peers, "forced"), "on");
    let seen_by_on = on.ok("relay_peers", json!({}));
    assert_eq!(channels_of(&seen_by_on, "observer"), "unknown");

    // Each says why, and so does its log line.
    let reason = |peers: &serde_json::Value, name: &str| {
        peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["pushes_reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        reason(&peers, "with-flag"),
        "claude was started with --dangerously-load-development-channels plugin:relay@claude-relay"
    );
    assert_eq!(
        reason(&peers, "without-flag"),
        "claude was started without a channels flag naming plugin:relay"
    );
    assert_eq!(reason(&peers, "forced"), "RELAY_CHANNELS=on");
    assert!(
        reason(&seen_by_on, "observer").contains("is not claude"),
        "{seen_by_on}"
    );
    assert!(relay.logged("pushes_decided", |l| {
        l["pushes"] == "off"
            && l["reason"] == "claude was started without a channels flag naming plugin:relay"
    }));
}
