//! The plugin's `bin/relay-channel` launcher finds the real binary or says how to install it.

use std::{
    fs,
    process::{Command, Stdio},
};

use testkit::{Channel, World, bins};

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bin/relay-channel");

#[test]
fn the_launcher_runs_the_binary_from_relay_bin_dir() {
    let mut relay = World::new(bins!());
    let bin_dir = relay.bins().dir();
    let mut command = relay.command(LAUNCHER, relay.dir.path());
    command
        .env("RELAY_BIN_DIR", bin_dir)
        .env("RELAY_SESSION_NAME", "launched");
    let mut channel = Channel::spawn_command(command, "launched");
    let info = channel.initialize();
    assert_eq!(info["serverInfo"]["name"], "relay-channel");
    assert_eq!(relay.registered(&mut channel)["me"], "launched");
}

#[test]
fn without_a_binary_the_launcher_names_the_install_command() {
    // A plugin root with the launcher and no build of its own.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("bin")).unwrap();
    let launcher = root.path().join("bin/relay-channel");
    testkit::copy_executable(LAUNCHER, &launcher);
    let output = Command::new(&launcher)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", root.path().join("bin").display()),
        )
        .env("RELAY_BIN_DIR", root.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(127));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("./install.sh"), "{stderr}");
}
