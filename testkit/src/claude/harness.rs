//! Drives real `claude` CLI processes, offline, against [`MockApi`].
//!
//! A [`Harness`] is one test's little world: the mock model, a temp root with
//! one `HOME` and one working directory per session, and ONE plugin cache dir
//! shared by all its sessions. Claude Code sets `CLAUDE_PLUGIN_DATA` to
//! `<plugin cache dir>/data/<plugin>-<marketplace>` (here `relay-inline`, the
//! marketplace of a `--plugin-dir` plugin), so sharing the cache dir is what
//! makes the sessions of one test meet on one hub, and keeps them away from the
//! hubs of tests running in parallel.
//!
//! A [`ClaudeSession`] is one `claude -p` (a Claude Code instance, what the
//! glossary calls a session) in stream-json mode with the repo loaded as a
//! plugin (`--plugin-dir`) and its channel allowed (`--channels`). Its stdin
//! stays open: an idle session that receives a channel push starts a turn by
//! itself, which is exactly what the tests want to observe.
//!
//! Cleanup never goes by process name. Each `claude` runs in its own process
//! group (its MCP servers inherit it) and is killed by that group id; the hub,
//! which daemonizes out of the group, is killed by the pid in its `hub.lock`
//! (after checking `/proc/<pid>/cmdline` really names `relay-hub`).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::mock_api::{MockApi, tail};
use super::tmux::TmuxPane;
use crate::process::{kill, kill_group, poll_until, process_gone};

/// Name of the plugin (`.claude-plugin/plugin.json`) and of its MCP server.
pub const PLUGIN: &str = "relay";

/// The prefix Claude Code gives the plugin's tools: `mcp__plugin_<plugin>_<server>__`.
pub const TOOL_PREFIX: &str = "mcp__plugin_relay_relay__";

/// Full tool name of a relay tool, e.g. `tool("relay_ask")`.
pub fn tool(short: &str) -> String {
    format!("{TOOL_PREFIX}{short}")
}

/// The relay tools a session may call without a permission prompt (under
/// `-p` an unapproved tool is simply denied).
pub const ALLOWED_TOOLS: [&str; 5] = [
    "relay_peers",
    "relay_ask",
    "relay_reply",
    "relay_broadcast",
    "relay_rename",
];

/// Where `.ci/install-claude.sh` installs CLI `version`:
/// `$CLAUDE_CLI_CACHE_DIR/VERSION`, or `$HOME/.cache/claude-relay/claude-cli/VERSION`.
fn install_dir(version: &str) -> Option<PathBuf> {
    let cache = match std::env::var_os("CLAUDE_CLI_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var_os("HOME")?).join(".cache/claude-relay/claude-cli"),
    };
    Some(cache.join(version))
}

/// The `claude` executable of `version`, as `.ci/install-claude.sh` installed it.
pub fn find_claude(version: &str) -> Result<PathBuf, String> {
    let dir = install_dir(version).ok_or("neither CLAUDE_CLI_CACHE_DIR nor HOME is set")?;
    let bin = dir.join("node_modules/.bin/claude");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no claude CLI {version} at {} (run .ci/install-claude.sh)",
            bin.display()
        ))
    }
}

/// The CLI `version` to test with, or `None` when the test should be skipped: outside CI a
/// missing CLI prints one line and skips; under `CI=true` it fails, since a skipped suite is how
/// a Claude Code change that breaks the relay could land unseen.
pub fn claude_or_skip(test: &str, version: &str) -> Option<PathBuf> {
    match find_claude(version) {
        Ok(bin) => Some(bin),
        Err(why) => {
            crate::skip_unless_ci(&format!("{test} ({version})"), "the claude CLI", &why);
            None
        }
    }
}

/// The `.claude.json` a session's HOME starts with. Channels are gated by a
/// remote feature flag that nothing fetches offline; `seed_channels` puts it
/// (and the allowlist entry for our `--plugin-dir` plugin, marketplace
/// `inline`) into the cached copy the CLI reads. The canary test leaves it out.
pub fn claude_json(seed_channels: bool) -> Value {
    let mut v = json!({ "hasCompletedOnboarding": true });
    if seed_channels {
        v["cachedGrowthBookFeatures"] = json!({
            "tengu_harbor": true,
            "tengu_harbor_ledger": [{ "marketplace": "inline", "plugin": PLUGIN }],
        });
    }
    v
}

/// The API key of an interactive session. Claude Code asks once whether to use a key found in
/// the environment, and remembers the answer by the key's last 20 characters: this one is long
/// enough for that, and [`interactive_claude_json`] approves it.
pub const INTERACTIVE_API_KEY: &str = "sk-ant-api03-relay-offline-test-0123456789abcdefghij";

/// The `.claude.json` of an interactive session working in `cwd`: [`claude_json`] plus the
/// answers to the dialogs an interactive `claude` shows at its first start, so that it opens
/// straight at its prompt: onboarding done, [`INTERACTIVE_API_KEY`] approved, `cwd` trusted.
pub fn interactive_claude_json(seed_channels: bool, cwd: &Path) -> Value {
    let mut v = claude_json(seed_channels);
    let key = &INTERACTIVE_API_KEY[INTERACTIVE_API_KEY.len() - 20..];
    v["customApiKeyResponses"] = json!({ "approved": [key], "rejected": [] });
    let cwd = fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_owned());
    v["projects"] = json!({ cwd.to_string_lossy(): { "hasTrustDialogAccepted": true } });
    v
}

/// A random RFC 4122 v4 UUID, for `--session-id` (no uuid crate needed).
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Environment every `claude` process of the harness runs with: a clean env
/// (nothing leaks in from a developer's own Claude Code session), the CLI's
/// own network traffic sent to a dead proxy, the model sent to the mock.
///
/// Deliberately NOT set: `DISABLE_TELEMETRY`, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`,
/// `DO_NOT_TRACK`, `DISABLE_GROWTHBOOK`: each turns the feature-flag machinery
/// off, and with it channels.
pub fn base_command(cli: &Path, home: &Path, cwd: &Path, api_url: &str) -> Command {
    let mut cmd = Command::new(cli);
    cmd.env_clear()
        .current_dir(cwd)
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("ANTHROPIC_API_KEY", "test")
        .env("ANTHROPIC_BASE_URL", api_url);
    // Let a developer turn on the relay's own logging for a debugging run.
    for var in ["RUST_LOG", "RUST_BACKTRACE", "RELAY_LOG"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

/// One test's world: mock model, temp dirs, shared plugin cache (hence hub).
pub struct Harness {
    pub cli: PathBuf,
    pub mock: MockApi,
    /// The plugin loaded with `--plugin-dir` (the repository root).
    pub plugin_dir: PathBuf,
    /// Directory of the cargo-built `relay-channel`, given as `RELAY_BIN_DIR`
    /// to the `bin/relay-channel` launcher.
    pub bin_dir: PathBuf,
    /// Seed the channels feature flag into each session's `.claude.json`.
    pub seed_channels: bool,
    /// Sessions started WITHOUT `--channels`: their Claude Code drops pushes.
    pub without_channels_flag: Vec<&'static str>,
    /// Full names of the tools sessions may use without a prompt
    /// (`--allowedTools`); by default every relay tool.
    pub allowed_tools: Vec<String>,
    /// Environment variables for one session's `claude` (and so its MCP server and hooks):
    /// (session name, variable, value).
    pub session_env: Vec<(&'static str, &'static str, &'static str)>,
    /// Sessions on hosts of their own, federated through a NATS server (see
    /// [`Harness::federate`]): (session name, host name).
    hosts: Vec<(&'static str, &'static str)>,
    nats_url: Option<String>,
    root: TempDir,
}

impl Harness {
    /// A harness for the `claude` executable `cli`, loading the plugin in `plugin_dir` whose
    /// launcher runs the `relay-channel` in `bin_dir`.
    pub fn new(cli: PathBuf, plugin_dir: PathBuf, bin_dir: PathBuf) -> Harness {
        let root = tempfile::Builder::new()
            .prefix("relay-cli-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir_all(root.path().join("plugin-cache")).expect("plugin cache dir");
        Harness {
            cli,
            mock: MockApi::start(),
            plugin_dir,
            bin_dir,
            seed_channels: true,
            without_channels_flag: Vec::new(),
            allowed_tools: ALLOWED_TOOLS.iter().map(|t| tool(t)).collect(),
            session_env: Vec::new(),
            hosts: Vec::new(),
            nats_url: None,
            root,
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `CLAUDE_CODE_PLUGIN_CACHE_DIR` shared by all sessions of this harness (but those on hosts
    /// of their own).
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.root().join("plugin-cache")
    }

    /// Puts each session of `hosts` (session name, host name) on a host of its own: its own
    /// plugin cache, so its own data directory and hub, federated with the others' through the
    /// NATS server at `url` under that host name.
    pub fn federate(&mut self, url: &str, hosts: &[(&'static str, &'static str)]) {
        self.nats_url = Some(url.to_owned());
        self.hosts = hosts.to_vec();
    }

    /// The plugin cache of session `name`: its host's, or the shared one.
    fn cache_dir_of(&self, name: &str) -> PathBuf {
        match self.hosts.iter().find(|(session, _)| *session == name) {
            Some((_, host)) => self.root().join(format!("plugin-cache-{host}")),
            None => self.plugin_cache_dir(),
        }
    }

    /// The data directories' parents of every plugin cache: the shared one and each host's.
    fn data_roots(&self) -> Vec<PathBuf> {
        let mut caches = vec![self.plugin_cache_dir()];
        caches.extend(
            self.hosts
                .iter()
                .map(|(session, _)| self.cache_dir_of(session)),
        );
        caches.into_iter().map(|cache| cache.join("data")).collect()
    }

    /// `CLAUDE_PLUGIN_DATA` of our plugin as Claude Code computes it for a
    /// `--plugin-dir` plugin: the hub's lock, socket and logs live here.
    pub fn plugin_data_dir(&self) -> PathBuf {
        self.plugin_cache_dir().join("data").join("relay-inline")
    }

    /// The HOME (seeded with `.claude.json` on first use) and working dir
    /// for `name`. Reusing a name reuses the HOME as the CLI left it, so
    /// several `claude` commands can build on each other's config.
    ///
    /// The working dir's basename is `name` on purpose: Claude Code does not
    /// pass `CLAUDE_CODE_SESSION_NAME` to MCP servers, and it writes the
    /// session file the relay reads the name from only just after starting
    /// them, so for its first moments a channel goes by its cwd slug. With
    /// the two equal, the delivery tests do not depend on that window.
    pub fn make_home(&self, name: &str, seed_channels: bool) -> (PathBuf, PathBuf) {
        let home = self.root().join(format!("home-{name}"));
        let cwd = self.root().join("work").join(name);
        fs::create_dir_all(&home).expect("session HOME");
        fs::create_dir_all(&cwd).expect("session cwd");
        let config = home.join(".claude.json");
        if !config.exists() {
            fs::write(
                config,
                serde_json::to_vec_pretty(&claude_json(seed_channels)).unwrap(),
            )
            .expect("write .claude.json");
        }
        (home, cwd)
    }

    /// Where Claude Code writes the debug log of session `name` (`--debug-file`): what it did
    /// with the MCP server, e.g. the protocol era it negotiated.
    pub fn debug_file(&self, name: &str) -> PathBuf {
        self.root().join(format!("{name}.debug"))
    }

    /// Fails the test unless every session's Claude Code connected to the relay on the legacy
    /// MCP era, the one with a path for channel pushes: on the modern era (2026-07-28) Claude
    /// Code registers no channel and drops every push. 2.1.332 logs the era in its `--debug-file`;
    /// older CLIs, which know only the legacy era, log the connection without it.
    pub fn assert_legacy_era(&self, sessions: &[ClaudeSession]) {
        for s in sessions {
            let log = fs::read_to_string(self.debug_file(&s.name)).unwrap_or_default();
            let connected = log.lines().find(|line| {
                line.contains(&format!("MCP server \"plugin:{PLUGIN}:{PLUGIN}\""))
                    && line.contains("Connection established")
            });
            match connected {
                Some(line) if !line.contains("\"protocolEra\"") => {}
                Some(line) if line.contains("\"protocolEra\":\"legacy\"") => {}
                Some(line) => self.fail(
                    sessions,
                    &format!("{} connected on another MCP era: {line}", s.name),
                ),
                None => self.fail(
                    sessions,
                    &format!("{}'s debug log shows no relay connection", s.name),
                ),
            }
        }
    }

    /// Start session `name` (its relay name, via `CLAUDE_CODE_SESSION_NAME`).
    /// Script its model with `self.mock.script(&session.id, ..)`.
    pub fn spawn(&self, name: &str) -> ClaudeSession {
        let (home, cwd) = self.make_home(name, self.seed_channels);
        let id = new_uuid();
        let mut cmd = base_command(&self.cli, &home, &cwd, &self.mock.base_url());
        cmd.args([
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--session-id",
            &id,
            "--debug-file",
        ])
        .arg(self.debug_file(name))
        .arg("--plugin-dir")
        .arg(&self.plugin_dir);
        if !self.without_channels_flag.contains(&name) {
            cmd.args(["--channels", &format!("plugin:{PLUGIN}@inline")]);
        }
        cmd.arg("--allowedTools")
            .arg(self.allowed_tools.join(","))
            .env("CLAUDE_CODE_SESSION_NAME", name)
            .env("CLAUDE_CODE_PLUGIN_CACHE_DIR", self.cache_dir_of(name))
            .env("RELAY_BIN_DIR", &self.bin_dir);
        if let (Some(url), Some((_, host))) = (
            &self.nats_url,
            self.hosts.iter().find(|(session, _)| *session == name),
        ) {
            cmd.env("RELAY_NATS_URL", url).env("RELAY_HOST", host);
        }
        for (_, key, value) in self.session_env.iter().filter(|(who, ..)| *who == name) {
            cmd.env(key, value);
        }
        ClaudeSession::start(name, id, cmd, &self.root().join(format!("{name}.stderr")))
    }

    /// Start session `name` as a one-shot print run: `claude -p PROMPT` (text input, output as
    /// stream-json events), no channels flag, its stdin closed at once. Claude Code runs it to
    /// the end of its turn and exits. Script its model before the prompt reaches it, e.g. from a
    /// script registered for the id it is given: `id` is its `--session-id`.
    pub fn spawn_print(&self, name: &str, id: &str, prompt: &str) -> ClaudeSession {
        let (home, cwd) = self.make_home(name, self.seed_channels);
        let mut cmd = base_command(&self.cli, &home, &cwd, &self.mock.base_url());
        cmd.args(["-p", prompt, "--output-format", "stream-json", "--verbose"])
            .args(["--session-id", id, "--debug-file"])
            .arg(self.debug_file(name))
            .arg("--plugin-dir")
            .arg(&self.plugin_dir)
            .arg("--allowedTools")
            .arg(self.allowed_tools.join(","))
            .env("CLAUDE_CODE_SESSION_NAME", name)
            .env("CLAUDE_CODE_PLUGIN_CACHE_DIR", self.plugin_cache_dir())
            .env("RELAY_BIN_DIR", &self.bin_dir);
        let mut session = ClaudeSession::start(
            name,
            id.to_owned(),
            cmd,
            &self.root().join(format!("{name}.stderr")),
        );
        session.close_input();
        session
    }

    /// Start session `name` as a person starts Claude Code: plain `claude` (no `-p`, no channels
    /// flag) in a terminal, here a pane of a private tmux server (`tmux` is its executable). Its
    /// HOME is seeded so that no first-run dialog stands before the prompt
    /// ([`interactive_claude_json`]); the relay tools are allowed (`--allowedTools`) as a user
    /// who approved them once would have them. Script its model with
    /// `self.mock.script(&session.id, ..)`.
    pub fn start_in_terminal(&self, name: &str, tmux: &Path) -> TerminalSession {
        let (home, cwd) = self.make_home(name, self.seed_channels);
        fs::write(
            home.join(".claude.json"),
            serde_json::to_vec_pretty(&interactive_claude_json(self.seed_channels, &cwd)).unwrap(),
        )
        .expect("write .claude.json");
        let id = new_uuid();
        let mut cmd = base_command(&self.cli, &home, &cwd, &self.mock.base_url());
        cmd.env("ANTHROPIC_API_KEY", INTERACTIVE_API_KEY)
            .args(["--session-id", &id, "--debug-file"])
            .arg(self.debug_file(name))
            .arg("--plugin-dir")
            .arg(&self.plugin_dir)
            .arg("--allowedTools")
            .arg(self.allowed_tools.join(","))
            .env("CLAUDE_CODE_SESSION_NAME", name)
            .env("CLAUDE_CODE_PLUGIN_CACHE_DIR", self.plugin_cache_dir())
            .env("RELAY_BIN_DIR", &self.bin_dir);
        for (_, key, value) in self.session_env.iter().filter(|(who, ..)| *who == name) {
            cmd.env(key, value);
        }
        let dir = self.root().join(format!("{name}.tmux"));
        fs::create_dir_all(&dir).expect("tmux dir");
        TerminalSession {
            name: name.to_owned(),
            id,
            pane: TmuxPane::start(tmux, &dir, &cmd),
        }
    }

    /// Start the named sessions together (their start-ups overlap), type a
    /// first prompt into each, and wait until each one's model has been
    /// offered the relay tools, i.e. its relay MCP server is connected. (If
    /// the server is still connecting at the first turn, the mock's default
    /// reply calls `WaitForMcpServers`, so a later request carries the tools.)
    pub fn start_ready(&self, names: &[&str], timeout: Duration) -> Vec<ClaudeSession> {
        let mut sessions: Vec<ClaudeSession> = names.iter().map(|n| self.spawn(n)).collect();
        for s in &mut sessions {
            s.send("hello");
        }
        for s in &sessions {
            let ready = self.mock.wait_for(&s.id, timeout, |r| {
                r.tool_names().iter().any(|t| t.starts_with(TOOL_PREFIX))
            });
            if ready.is_none() {
                self.fail(
                    &sessions,
                    &format!("{} was never offered the relay tools", s.name),
                );
            }
        }
        sessions
    }

    /// Panic with everything useful for a post-mortem: each session's
    /// requests as the mock saw them, its stderr/stdout tails, the relay logs.
    pub fn fail(&self, sessions: &[ClaudeSession], what: &str) -> ! {
        let mut report = format!("FAILED: {what}\n");
        for s in sessions {
            report.push_str(&format!(
                "=== {} (session {}) requests:\n{}",
                s.name,
                s.id,
                self.mock.describe(&s.id)
            ));
            report.push_str(&s.diagnostics());
        }
        report.push_str(&format!("=== relay logs\n{}", self.relay_logs()));
        panic!("{report}");
    }

    /// Pids of the live hub daemons of this harness: the pid in each
    /// `<data dir>/hub.lock` that names a running `relay-hub`.
    pub fn hub_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let data_dirs = self
            .data_roots()
            .into_iter()
            .flat_map(|root| fs::read_dir(root).into_iter().flatten().flatten());
        for entry in data_dirs {
            let lock = entry.path().join("hub.lock");
            let Ok(text) = fs::read_to_string(&lock) else {
                continue;
            };
            let Ok(pid) = text.trim().parse::<u32>() else {
                continue;
            };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("relay-hub") {
                pids.push(pid);
            }
        }
        pids
    }

    /// Text of the relay's logs (files under a data dir's `logs/`, and any
    /// `*.log` / `*.stderr` there), for failure reports.
    pub fn relay_logs(&self) -> String {
        let mut out = String::new();
        let mut stack = self.data_roots();
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.components().any(|c| c.as_os_str() == "logs")
                    || p.extension().is_some_and(|e| e == "stderr" || e == "log")
                {
                    let text = fs::read_to_string(&p).unwrap_or_default();
                    out.push_str(&format!("--- {}\n{}\n", p.display(), tail(&text, 4000)));
                }
            }
        }
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::env::var_os("RELAY_TEST_KEEP").is_some() {
            let _ = writeln!(std::io::stderr(), "keeping {}", self.root().display());
            self.root.disable_cleanup(true);
        }
        for pid in self.hub_pids() {
            kill(pid, "TERM");
            if !poll_until(Duration::from_secs(3), || process_gone(pid)) {
                kill(pid, "KILL");
            }
        }
    }
}

/// One interactive `claude` in a terminal (see [`Harness::start_in_terminal`]). Dropping it ends
/// the `claude` and the tmux server.
pub struct TerminalSession {
    /// The relay name it was started with.
    pub name: String,
    /// The `--session-id`, which is also the mock's key for its script.
    pub id: String,
    /// The terminal: type into it, read it.
    pub pane: TmuxPane,
}

/// stdout lines of a session, with a Condvar so tests can wait on them.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

/// One running `claude -p` session (a Claude Code instance) in stream-json mode.
pub struct ClaudeSession {
    /// The relay name it was started with.
    pub name: String,
    /// The `--session-id`, which is also the mock's key for its script.
    pub id: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Lines>,
    stderr_path: PathBuf,
}

impl ClaudeSession {
    /// Spawn `cmd` in its own process group, stdout collected, stderr to a file.
    pub fn start(name: &str, id: String, mut cmd: Command, stderr_path: &Path) -> ClaudeSession {
        let stderr = fs::File::create(stderr_path).expect("stderr file");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .expect("spawn claude");
        let stdout = Arc::new(Lines::default());
        let out = child.stdout.take().expect("stdout");
        {
            let stdout = stdout.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    stdout.lines.lock().unwrap().push(line);
                    stdout.changed.notify_all();
                }
            });
        }
        ClaudeSession {
            name: name.to_owned(),
            id,
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr_path: stderr_path.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Type a user message (a prompt, or a slash command such as `/relay:relay-rename x`).
    pub fn send(&mut self, text: &str) {
        let msg = json!({"type": "user", "message": {"role": "user", "content": text}});
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write to claude stdin");
        stdin.flush().expect("flush claude stdin");
    }

    /// Closes the session's input, as a script does when it has nothing more to say: under
    /// stream-json input, Claude Code ends once its turn is done.
    pub fn close_input(&mut self) {
        drop(self.stdin.take());
    }

    /// The stream-json events printed so far (unparsable lines are skipped).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Block until a stdout event satisfies `pred`, or `timeout` passes.
    pub fn wait_event(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.stdout.lines.lock().unwrap();
        let mut checked = 0;
        loop {
            for l in &lines[checked..] {
                if let Ok(v) = serde_json::from_str::<Value>(l)
                    && pred(&v)
                {
                    return Some(v);
                }
            }
            checked = lines.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = self
                .stdout
                .changed
                .wait_timeout(lines, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Whether the session's process has exited (without reaping it).
    pub fn has_exited(&self) -> bool {
        process_gone(self.child.id())
    }

    /// Tail of stderr and stdout, for failure messages.
    pub fn diagnostics(&self) -> String {
        let stderr = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let stdout = self.stdout.lines.lock().unwrap().join("\n");
        format!(
            "--- {} stderr (tail)\n{}\n--- {} stdout (tail)\n{}\n",
            self.name,
            tail(&stderr, 3000),
            self.name,
            tail(&stdout, 3000)
        )
    }
}

impl Drop for ClaudeSession {
    /// Close stdin (a clean `claude` exit also stops its MCP servers), then
    /// make sure: kill the whole process group by its id. The leader is
    /// reaped only at the very end, so its pid (= the group id) cannot be
    /// reused by an unrelated process while we signal it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let pid = self.child.id();
        if !poll_until(Duration::from_secs(3), || process_gone(pid)) {
            kill_group(pid, "TERM");
            poll_until(Duration::from_secs(2), || process_gone(pid));
        }
        // Leftovers too (an MCP server that ignored the shutdown).
        kill_group(pid, "KILL");
        let _ = self.child.wait();
    }
}
