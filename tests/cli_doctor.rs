//! `relay doctor`: each check passes in a healthy world and fails, with its fix, when its part
//! is broken. Every run gets a PATH made here, so what is installed on the machine (a real
//! `claude`, a `relay-channel` in ~/.cargo/bin) cannot change the outcome.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, net::UnixListener, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};
use testkit::{RelayRun, RelayStream, World, bins};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every check, in the order the doctor runs them.
const CHECKS: [&str; 12] = [
    "relay-hub",
    "relay-channel",
    "launcher",
    "data-dir",
    "socket",
    "hub",
    "stale-socket",
    "delivery",
    "federation",
    "claude",
    "plugin",
    "sessions",
];

/// The directory of the built `relay`, `relay-hub` and `relay-channel`.
fn bin_dir() -> PathBuf {
    bins!().dir().to_owned()
}

/// Runs `relay doctor ARGS` with `path` as its whole PATH.
fn doctor(relay: &World, path: &str, args: &[&str]) -> RelayRun {
    let mut command = relay.command(relay.bins().relay, relay.dir.path());
    command.env("PATH", path).arg("doctor").args(args);
    RelayStream::spawn(command).finish()
}

/// `relay doctor --json`, checked for its shape; returns the document.
fn doctor_json(relay: &World, path: &str) -> (i32, Value) {
    let run = doctor(relay, path, &["--json"]);
    let report = run.json();
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {run:?}"))
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS, "{report}");
    for check in report["checks"].as_array().unwrap() {
        assert!(!check["detail"].as_str().unwrap().is_empty(), "{check}");
        match check["status"].as_str().unwrap() {
            "pass" => assert_eq!(check["fix"], Value::Null, "{check}"),
            "fail" => assert!(!check["fix"].as_str().unwrap().is_empty(), "{check}"),
            "warn" => {}
            other => panic!("status {other:?}: {check}"),
        }
    }
    let failed = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|check| check["status"] == "fail");
    assert_eq!(report["ok"], !failed, "{report}");
    assert_eq!(run.code, if failed { 1 } else { 0 }, "{run:?}");
    (run.code, report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

/// A directory holding a fake `claude` that answers `--version` as Claude Code does.
fn fake_claude_dir(relay: &World) -> PathBuf {
    fake_claude_of_version(relay, "2.1.197")
}

/// A directory holding a fake `claude` of `version`.
fn fake_claude_of_version(relay: &World, version: &str) -> PathBuf {
    let dir = relay.dir.path().join(format!("fakebin-{version}"));
    fs::create_dir_all(&dir).unwrap();
    let claude = dir.join("claude");
    testkit::write_executable(
        &claude,
        &format!("#!/bin/sh\necho '{version} (Claude Code)'\n"),
    );
    dir
}

/// Records the plugin as installed and enabled in the world's HOME, in the files and shapes
/// `claude plugin install relay@claude-relay` writes (seen with Claude Code 2.1.197).
fn record_plugin_installed(relay: &World) {
    let plugins = relay.home.join(".claude/plugins");
    let install_path = plugins.join("cache/claude-relay/relay").join(VERSION);
    fs::create_dir_all(&install_path).unwrap();
    let record = json!({
        "version": 2,
        "plugins": {
            "relay@claude-relay": [{
                "scope": "user",
                "installPath": install_path,
                "version": VERSION,
                "installedAt": "2026-01-01T00:00:00.000Z",
                "lastUpdated": "2026-01-01T00:00:00.000Z"
            }]
        }
    });
    fs::write(plugins.join("installed_plugins.json"), record.to_string()).unwrap();
    let settings = json!({"enabledPlugins": {"relay@claude-relay": true}});
    fs::write(
        relay.home.join(".claude/settings.json"),
        settings.to_string(),
    )
    .unwrap();
}

/// A PATH with the fake `claude` and the built relay binaries, nothing else.
fn healthy_path(relay: &World) -> String {
    format!(
        "{}:{}",
        fake_claude_dir(relay).display(),
        bin_dir().display()
    )
}

#[test]
fn a_healthy_installation_passes_every_check() {
    let mut relay = World::new(bins!());
    let hub_pid = relay.start_hub();
    record_plugin_installed(&relay);
    let path = healthy_path(&relay);

    let (code, report) = doctor_json(&relay, &path);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
    for name in CHECKS {
        assert_eq!(check(&report, name)["status"], "pass", "{report}");
    }
    let hub = check(&report, "hub")["detail"].as_str().unwrap();
    assert!(hub.contains(&format!("pid {hub_pid}")), "{hub}");
    assert!(hub.contains(VERSION), "{hub}");
    let launcher = check(&report, "launcher")["detail"].as_str().unwrap();
    let channel = bin_dir().join("relay-channel");
    assert!(
        launcher.contains(&format!("runs {} (from PATH)", channel.display())),
        "{launcher}"
    );
    let claude = check(&report, "claude")["detail"].as_str().unwrap();
    assert!(claude.contains("2.1.197 (Claude Code)"), "{claude}");

    let run = doctor(&relay, &path, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("ok    relay-hub "), "{}", run.stdout);
    assert!(
        lines.iter().any(|line| line.starts_with("ok    hub ")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("FAIL") && !run.stdout.contains('\x1b'),
        "{}",
        run.stdout
    );
}

#[test]
fn a_data_dir_open_to_others_fails_with_the_chmod_fix() {
    let relay = World::new(bins!());
    fs::create_dir_all(&relay.data).unwrap();
    fs::set_permissions(&relay.data, fs::Permissions::from_mode(0o755)).unwrap();

    let (code, report) = doctor_json(&relay, &healthy_path(&relay));
    assert_eq!(code, 1);
    let data_dir = check(&report, "data-dir");
    assert_eq!(data_dir["status"], "fail", "{report}");
    assert!(data_dir["detail"].as_str().unwrap().contains("0755"));
    assert_eq!(
        data_dir["fix"],
        format!("chmod 700 {}", relay.data.display())
    );

    let run = doctor(&relay, &healthy_path(&relay), &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(&format!(
            "FAIL  data-dir       {} has mode 0755, not 0700\n      fix: chmod 700 {}\n",
            relay.data.display(),
            relay.data.display()
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn a_socket_nothing_serves_is_a_warning_about_a_dead_hub() {
    let relay = World::new(bins!());
    fs::create_dir_all(&relay.data).unwrap();
    fs::set_permissions(&relay.data, fs::Permissions::from_mode(0o700)).unwrap();
    drop(UnixListener::bind(relay.socket()).unwrap());
    assert!(relay.socket().exists(), "the socket file stays behind");

    let (_, report) = doctor_json(&relay, &healthy_path(&relay));
    let stale = check(&report, "stale-socket");
    assert_eq!(stale["status"], "warn", "{report}");
    assert!(
        stale["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("rm {}", relay.socket().display())),
        "{stale}"
    );
    assert_eq!(check(&report, "hub")["status"], "pass", "{report}");
}

#[test]
fn without_claude_the_claude_check_fails_with_the_install_fix() {
    let relay = World::new(bins!());
    record_plugin_installed(&relay);

    let (code, report) = doctor_json(&relay, &bin_dir().display().to_string());
    assert_eq!(code, 1);
    let claude = check(&report, "claude");
    assert_eq!(claude["status"], "fail", "{report}");
    assert!(
        claude["detail"]
            .as_str()
            .unwrap()
            .contains("no `claude` on PATH"),
        "{claude}"
    );
    assert!(
        claude["fix"]
            .as_str()
            .unwrap()
            .contains("install Claude Code"),
        "{claude}"
    );
}

/// The fix is install.sh, and by hand what it does: the marketplace is a staged copy of the
/// plugin's files in `${XDG_DATA_HOME:-$HOME/.local/share}/claude-relay/marketplace`, never the
/// checkout (Claude Code copies a directory marketplace whole, `target/` included).
#[test]
fn without_the_plugin_the_plugin_check_fails_with_the_install_script() {
    let plain = World::new(bins!());
    let stage = plain.home.join(".local/share/claude-relay/marketplace");
    let xdg = World::new(bins!());
    let xdg_data = xdg.dir.path().join("xdg-data");
    let xdg = xdg.with_env("XDG_DATA_HOME", xdg_data.to_str().unwrap());
    let xdg_stage = xdg_data.join("claude-relay/marketplace");

    for (relay, stage) in [(&plain, stage), (&xdg, xdg_stage)] {
        let (code, report) = doctor_json(relay, &healthy_path(relay));
        assert_eq!(code, 1);
        let plugin = check(&report, "plugin");
        assert_eq!(plugin["status"], "fail", "{report}");
        let fix = plugin["fix"].as_str().unwrap();
        assert!(fix.starts_with("run ./install.sh"), "{fix}");
        let stage = stage.display();
        assert!(
            fix.contains(&format!(
                "into {stage}, then `claude plugin marketplace add {stage}`"
            )) && fix.contains("`claude plugin install relay@claude-relay`"),
            "{fix}"
        );
        assert!(!fix.contains("<checkout>"), "{fix}");
    }
}

/// A process whose command line reads `claude ARGS`, killed by pid when dropped.
struct FakeSession(Child);

impl FakeSession {
    /// `bash -c 'read -t 60'` under the name `claude`: it waits on its stdin, which this end
    /// holds open; `args` follow on its command line.
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> FakeSession {
        let child = Command::new("bash")
            .arg0("claude")
            .args(["-c", "read -t 60", "fake-session"])
            .args(args)
            .current_dir(cwd)
            .env_remove("RELAY_CHANNELS")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start bash");
        FakeSession(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for FakeSession {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sessions without the channels flag are woken by their waiters: listed, never a warning.
#[test]
fn claude_sessions_are_counted_with_and_without_the_channels_flag() {
    let relay = World::new(bins!());
    let cwd = relay.workdir("project");
    let flagless = FakeSession::start(&cwd, &[], &[]);
    let flagged = FakeSession::start(
        &cwd,
        &[
            "--dangerously-load-development-channels",
            "plugin:relay@claude-relay",
        ],
        &[],
    );
    let printing = FakeSession::start(&cwd, &["-p"], &[]);
    let overridden = FakeSession::start(&cwd, &[], &[("RELAY_CHANNELS", "on")]);

    let (_, report) = doctor_json(&relay, &healthy_path(&relay));
    let sessions = check(&report, "sessions");
    assert_eq!(sessions["status"], "pass", "{report}");
    let detail = sessions["detail"].as_str().unwrap();
    assert!(detail.contains("woken by their waiters"), "{detail}");
    assert!(
        detail.contains(&format!("pid {} in {}", flagless.pid(), cwd.display())),
        "{detail}"
    );
    for quiet in [&flagged, &printing, &overridden] {
        assert!(
            !detail.contains(&format!("pid {} ", quiet.pid())),
            "pid {} is listed: {detail}",
            quiet.pid()
        );
    }
}

/// A hub of another protocol, played by the test on the socket: it answers `status` (which every
/// protocol keeps), in a shape with a field this version does not know.
#[test]
fn a_hub_of_another_protocol_fails_with_the_restart_fix() {
    let relay = World::new(bins!());
    fs::create_dir_all(&relay.data).unwrap();
    fs::set_permissions(&relay.data, fs::Permissions::from_mode(0o700)).unwrap();
    let listener = UnixListener::bind(relay.socket()).unwrap();
    let old_hub = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the doctor connects");
        stream.set_read_timeout(Some(testkit::PROMPTLY)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let request: Value = serde_json::from_str(&line).unwrap();
        let answer = json!({"type": "ok", "id": request["id"], "result": {
            "hub_pid": 4242, "hub_version": "9.0.0", "protocol": 99,
            "started_at": "2026-01-01T00:00:00Z", "sessions": []
        }});
        writeln!(&stream, "{answer}").unwrap();
        request
    });

    let (code, report) = doctor_json(&relay, &healthy_path(&relay));
    assert_eq!(old_hub.join().unwrap()["op"], "status");
    assert_eq!(code, 1);
    let hub = check(&report, "hub");
    assert_eq!(hub["status"], "fail", "{report}");
    let detail = hub["detail"].as_str().unwrap();
    assert!(
        detail.contains("pid 4242") && detail.contains("9.0.0") && detail.contains("protocol 99"),
        "{detail}"
    );
    assert!(
        hub["fix"].as_str().unwrap().contains("relay hub restart"),
        "{hub}"
    );
    assert_eq!(check(&report, "stale-socket")["status"], "pass", "{report}");
}

#[test]
fn a_relay_channel_of_another_version_on_path_is_a_warning() {
    let relay = World::new(bins!());
    record_plugin_installed(&relay);
    let old = relay.dir.path().join("oldbin");
    fs::create_dir_all(&old).unwrap();
    let channel = old.join("relay-channel");
    testkit::write_executable(&channel, "#!/bin/sh\necho 'relay-channel 0.0.1'\n");
    let path = format!("{}:{}", old.display(), healthy_path(&relay));

    let (_, report) = doctor_json(&relay, &path);
    let launcher = check(&report, "launcher");
    assert_eq!(launcher["status"], "warn", "{report}");
    let detail = launcher["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("runs {} (from PATH)", channel.display()))
            && detail.contains(&format!("version 0.0.1, but this relay is {VERSION}")),
        "{detail}"
    );
    assert!(launcher["fix"].as_str().unwrap().contains("./install.sh"));
    assert_eq!(
        check(&report, "relay-channel")["status"],
        "pass",
        "{report}"
    );
}

/// Claude Code changes fast: a `claude` outside the versions the suite runs against
/// (`.ci/claude-versions`) is a warning that says so; one inside passes.
#[test]
fn a_claude_outside_the_tested_range_is_a_warning() {
    let relay = World::new(bins!());
    record_plugin_installed(&relay);
    for (version, status, says) in [
        ("2.1.197", "pass", "tested range 2.1.197 to "),
        ("2.1.250", "pass", "tested range 2.1.197 to "),
        ("2.0.99", "warn", "older than 2.1.197, the oldest"),
        (
            "9.0.0",
            "warn",
            "the newest Claude Code the relay is tested with",
        ),
    ] {
        let path = format!(
            "{}:{}",
            fake_claude_of_version(&relay, version).display(),
            bin_dir().display()
        );
        let (_, report) = doctor_json(&relay, &path);
        let claude = check(&report, "claude");
        assert_eq!(claude["status"], status, "{version}: {claude}");
        assert!(
            claude["detail"].as_str().unwrap().contains(says),
            "{version}: {claude}"
        );
    }
}

/// The pushes check lists each connected session whose pushes are off, with its channel's
/// reason.
#[test]
fn sessions_whose_pushes_are_off_are_named_with_the_reason() {
    let mut relay = World::new(bins!());
    let _alpha = relay.channel("alpha");
    let mut beta = relay.spawn_channel("beta", &[("RELAY_CHANNELS", "off")]);
    beta.initialize();
    relay.registered(&mut beta);
    let (_, report) = doctor_json(&relay, &healthy_path(&relay));
    let delivery = check(&report, "delivery");
    assert_eq!(delivery["status"], "warn", "{delivery}");
    assert_eq!(
        delivery["detail"],
        "2 session(s) connected: 1 pushed to, 0 woken by their waiter, 1 queued; these get messages \
         only at their next prompt, no waiter being armed for them: beta (pushes off: RELAY_CHANNELS=off)",
        "{delivery}"
    );
}
