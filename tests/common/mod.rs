//! Test support: real `relay-channel` processes driven over stdio JSON-RPC, raw hub connections
//! over the real Unix socket, and a temporary data directory and HOME per test. Every process a
//! test starts is killed by pid when its guard drops.

#![allow(dead_code)] // each test file uses a different part of this module

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

pub const CHANNEL_EXE: &str = env!("CARGO_BIN_EXE_relay-channel");
pub const HUB_EXE: &str = env!("CARGO_BIN_EXE_relay-hub");
pub const RELAY_EXE: &str = env!("CARGO_BIN_EXE_relay");

/// The longest a `relay` command line run may take in a test.
pub const RELAY_RUN_LIMIT: Duration = Duration::from_secs(60);

/// How long a test waits for anything that should happen at once.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A temporary world: data directory, HOME and working directories, and the hub that lives there.
pub struct Relay {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub home: PathBuf,
    extra_env: Vec<(String, String)>,
    hub_pids: Vec<u32>,
}

impl Relay {
    pub fn new() -> Relay {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let home = dir.path().join("home");
        fs::create_dir_all(&home).unwrap();
        Relay {
            dir,
            data,
            home,
            extra_env: Vec::new(),
            hub_pids: Vec::new(),
        }
    }

    /// Sets an environment variable for every process started from now on.
    pub fn with_env(mut self, key: &str, value: &str) -> Relay {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    pub fn socket(&self) -> PathBuf {
        self.data.join("hub.sock")
    }

    pub fn logs(&self) -> PathBuf {
        self.data.join("logs")
    }

    /// A command for `exe` in `cwd` with this world's HOME, data directory and environment.
    pub fn command(&self, exe: &str, cwd: &Path) -> Command {
        let mut command = Command::new(exe);
        command
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_PLUGIN_DATA", &self.data)
            .env("RELAY_LOG", "debug")
            // The test process is no `claude`, so a channel could not tell whether its pushes are
            // shown; these tests drive a client that reads every push.
            .env("RELAY_CHANNELS", "on");
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }

    /// A working directory named `name` under the temp dir.
    pub fn workdir(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("work").join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts a channel named by `RELAY_SESSION_NAME`, completes the MCP handshake and waits
    /// until it is registered with the hub.
    pub fn channel(&mut self, name: &str) -> Channel {
        let mut channel = self.spawn_channel(name, &[]);
        channel.initialize();
        self.registered(&mut channel);
        channel
    }

    /// Waits until `channel` is registered (its relay_peers answers) and notes the hub it
    /// started, so that the hub is killed when the test ends.
    pub fn registered(&mut self, channel: &mut Channel) -> Value {
        let peers = channel.ok("relay_peers", json!({}));
        self.note_hub();
        peers
    }

    /// Starts a channel process without the handshake. `env` adds variables; a name of `""`
    /// leaves `RELAY_SESSION_NAME` unset.
    pub fn spawn_channel(&self, name: &str, env: &[(&str, &str)]) -> Channel {
        let cwd = self.workdir(if name.is_empty() { "unnamed" } else { name });
        let mut command = self.command(CHANNEL_EXE, &cwd);
        if !name.is_empty() {
            command.env("RELAY_SESSION_NAME", name);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        Channel::spawn_command(command, name)
    }

    /// Runs `relay ARGS` in this world (data directory from `CLAUDE_PLUGIN_DATA`) to its end.
    pub fn relay(&self, args: &[&str]) -> RelayRun {
        self.stream_relay(args).finish()
    }

    /// Runs `relay-hub` the way a channel does and waits until it accepts connections.
    pub fn start_hub(&mut self) -> u32 {
        let status = self
            .command(HUB_EXE, self.dir.path())
            .stdin(Stdio::null())
            .status()
            .expect("run relay-hub");
        assert!(status.success(), "relay-hub exited with {status}");
        wait_for("the hub socket to accept", || {
            UnixStream::connect(self.socket()).is_ok()
        });
        self.note_hub();
        self.hub_pid().expect("hub pid")
    }

    /// The pid of the live hub of this data directory, from its lock file.
    pub fn hub_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data.join("hub.lock")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        self.is_our_hub(pid).then_some(pid)
    }

    /// A process is this test's hub when it is alive and runs in this data directory (the hub
    /// makes its data directory its working directory). This guards against a reused pid.
    fn is_our_hub(&self, pid: u32) -> bool {
        fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == self.data)
            && !is_zombie(pid)
    }

    /// Every live relay-hub process serving this data directory.
    pub fn hubs_running(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let exe = fs::read_link(entry.path().join("exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "relay-hub") && self.is_our_hub(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Remembers the current hub so that it is killed when the test ends.
    pub fn note_hub(&mut self) {
        if let Some(pid) = self.hub_pid()
            && !self.hub_pids.contains(&pid)
        {
            self.hub_pids.push(pid);
        }
    }

    /// Waits until the hub `pid` has exited.
    pub fn wait_hub_gone(&self, pid: u32, within: Duration) {
        let deadline = Instant::now() + within;
        while self.is_our_hub(pid) {
            assert!(
                Instant::now() < deadline,
                "hub {pid} still running after {within:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether some log line has `event` and satisfies `also`.
    pub fn logged(&self, event: &str, also: impl Fn(&Value) -> bool) -> bool {
        self.log_lines()
            .iter()
            .any(|line| line["event"] == event && also(line))
    }

    /// Every complete line of the log files, parsed.
    ///
    /// A last line without its newline is left out: a process is writing it at this moment. Each
    /// line is one `write` with `O_APPEND`, which keeps lines of different processes apart but is
    /// not atomic for a reader: Linux copies a write into the file page by page and makes each
    /// page's part visible as it goes, so a line that crosses a 4 KiB boundary can be read cut at
    /// that boundary (as `relay logs` knows, holding such a line back). It is whole at the next
    /// look, and callers that wait for a line look again.
    pub fn log_lines(&self) -> Vec<Value> {
        let mut lines = Vec::new();
        for entry in fs::read_dir(self.logs()).unwrap().flatten() {
            let mut bytes = fs::read(entry.path()).unwrap();
            bytes.truncate(
                bytes
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |end| end + 1),
            );
            let text = String::from_utf8(bytes).unwrap();
            for line in text.lines() {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
                lines.push(value);
            }
        }
        lines
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.note_hub();
        for pid in self.hubs_running().into_iter().chain(self.hub_pids.clone()) {
            if self.is_our_hub(pid) {
                kill(pid, "KILL");
            }
        }
    }
}

/// Creates `path` as an executable (mode 755) holding `contents`, for a test that then runs it.
///
/// Why not `fs::write` and `set_permissions`: while a file is open for writing, exec of it fails
/// with ETXTBSY ("Text file busy"), and the test process is not the only holder of the fds it
/// opens. Every other test runs in a thread of the same process and starts processes of its own;
/// a child forked at the moment this thread holds the file open for writing gets a copy of that
/// fd, and keeps it from fork until its own exec (when O_CLOEXEC closes it). If this thread
/// execs the file in that window, the exec fails. So the file is written by a short-lived
/// `sh` child instead: the only writable fd on it ever lives in that child, which has exited
/// before this returns, and no later fork can copy it.
pub fn write_executable(path: impl AsRef<Path>, contents: &str) {
    let path = path.as_ref();
    let mut child = Command::new("sh")
        .args(["-c", r#"cat > "$1" && chmod 755 "$1""#, "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start sh");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(contents.as_bytes()).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "writing {}: {status}", path.display());
}

/// Copies `from` to `to` as an executable (mode 755) with cp(1), for a test that then runs the
/// copy. `fs::copy` would hold `to` open for writing in this process: see [`write_executable`]
/// for why that makes running it fail now and then with ETXTBSY.
pub fn copy_executable(from: impl AsRef<Path>, to: impl AsRef<Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let status = Command::new("sh")
        .args(["-c", r#"cp -- "$1" "$2" && chmod 755 "$2""#, "sh"])
        .args([from, to])
        .stdin(Stdio::null())
        .status()
        .expect("start sh");
    assert!(
        status.success(),
        "copying {} to {}: {status}",
        from.display(),
        to.display()
    );
}

/// Sends a signal to a pid with kill(1).
pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Polls `condition` until it holds, failing the test after [`PROMPTLY`]. Only for state that
/// has no event to wait on (another process's files or existence).
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPTLY;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The outcome of a tool call: the JSON in its one text block, and whether it was an error.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub is_error: bool,
    pub body: Value,
}

/// A `relay-channel` process and a JSON-RPC client on its stdio.
pub struct Channel {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Result<Value, String>>,
    pushes: VecDeque<Value>,
    next_id: u64,
}

impl Channel {
    /// Starts `command` (a relay-channel) with piped stdio.
    pub fn spawn_command(mut command: Command, name: &str) -> Channel {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn relay-channel");
        let stdout = child.stdout.take().unwrap();
        let (tx, messages) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parsed = serde_json::from_str::<Value>(&line)
                    .ok()
                    .filter(|v| v["jsonrpc"] == "2.0")
                    .ok_or_else(|| format!("stdout carried a line that is not JSON-RPC: {line:?}"));
                if tx.send(parsed).is_err() {
                    break;
                }
            }
        });
        Channel {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            messages,
            pushes: VecDeque::new(),
            next_id: 1,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to channel");
        stdin.flush().unwrap();
    }

    fn next_message(&mut self, within: Duration) -> Option<Value> {
        match self.messages.recv_timeout(within) {
            Ok(Ok(message)) => Some(message),
            Ok(Err(e)) => panic!("{}: {e}", self.name),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("{}: stdout closed", self.name),
        }
    }

    /// Sends a request and returns its whole response; notifications that arrive meanwhile
    /// are kept for [`Channel::push`].
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + PROMPTLY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .next_message(left)
                .unwrap_or_else(|| panic!("{}: no answer to {method}", self.name));
            if message["id"] == id {
                return message;
            }
            assert_eq!(
                message["method"], "notifications/claude/channel",
                "unexpected: {message}"
            );
            self.pushes.push_back(message);
        }
    }

    pub fn initialize(&mut self) -> Value {
        let response = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "relay-tests", "version": "0"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        response["result"].clone()
    }

    pub fn call(&mut self, tool: &str, arguments: Value) -> ToolOutcome {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = &response["result"];
        let content = result["content"]
            .as_array()
            .unwrap_or_else(|| panic!("no content: {response}"));
        assert_eq!(content.len(), 1, "one content block: {response}");
        assert_eq!(content[0]["type"], "text");
        let body =
            serde_json::from_str(content[0]["text"].as_str().unwrap()).expect("tool text is JSON");
        ToolOutcome {
            is_error: result["isError"] == true,
            body,
        }
    }

    /// Calls a tool that must succeed and returns its JSON.
    pub fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let outcome = self.call(tool, arguments);
        assert!(
            !outcome.is_error,
            "{}: {tool} failed: {}",
            self.name, outcome.body
        );
        outcome.body
    }

    /// Calls a tool that must fail and returns its error code and message.
    pub fn err(&mut self, tool: &str, arguments: Value) -> (String, String) {
        let outcome = self.call(tool, arguments);
        assert!(
            outcome.is_error,
            "{}: {tool} should have failed: {}",
            self.name, outcome.body
        );
        assert_eq!(outcome.body["ok"], false);
        let message = outcome.body["message"].as_str().unwrap().to_owned();
        assert!(!message.is_empty());
        (outcome.body["code"].as_str().unwrap().to_owned(), message)
    }

    /// The next channel push (its `params`), waiting up to [`PROMPTLY`].
    pub fn push(&mut self) -> Value {
        self.push_within(PROMPTLY)
            .unwrap_or_else(|| panic!("{}: no channel push arrived", self.name))
    }

    pub fn push_within(&mut self, within: Duration) -> Option<Value> {
        if let Some(push) = self.pushes.pop_front() {
            return Some(push["params"].clone());
        }
        let message = self.next_message(within)?;
        assert_eq!(
            message["method"], "notifications/claude/channel",
            "unexpected: {message}"
        );
        Some(message["params"].clone())
    }

    /// Closes stdin, as Claude Code does on exit.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit, failing after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_all(mut from: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = from.read_to_string(&mut text);
        text
    })
}

/// What one run of `relay` printed, and its exit status.
#[derive(Debug)]
pub struct RelayRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RelayRun {
    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// Stdout as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{line:?} is not JSON ({e}): {self:?}"))
            })
            .collect()
    }
}

/// A raw connection to the hub's socket, speaking the wire protocol by hand.
pub struct RawPeer {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl RawPeer {
    pub fn connect(relay: &Relay) -> RawPeer {
        let stream = UnixStream::connect(relay.socket()).expect("connect to hub");
        stream.set_read_timeout(Some(PROMPTLY)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        RawPeer {
            stream,
            reader,
            next_id: 0,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to hub");
    }

    pub fn send(&mut self, message: &Value) {
        self.send_raw(format!("{message}\n").as_bytes());
    }

    /// The next line from the hub, parsed; `None` when the hub closed the connection.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("hub writes JSON lines")),
            Err(e) => panic!("reading from hub: {e}"),
        }
    }

    /// Says hello with the current protocol, as a peer whose pushes are shown, and returns the
    /// hub's answer.
    pub fn hello(&mut self, name: &str) -> Value {
        self.send(&json!({"id": 1, "op": "hello", "protocol": 2, "version": "test", "name": name, "pushes": "on"}));
        self.read().expect("answer to hello")
    }

    /// Sends `op` (a request without its id) and returns the response, skipping events.
    pub fn request(&mut self, mut op: Value) -> Value {
        let id = 1000 + self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        self.send(&op);
        loop {
            let message = self.read().expect("the hub answers");
            if message["id"] == id {
                return message;
            }
        }
    }

    /// True once the hub has closed this connection (reads until end of stream).
    pub fn closed_by_hub(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

/// Whether `pid` has exited: no `/proc` entry, or only a zombie waiting for its parent.
pub fn process_gone(pid: u32) -> bool {
    is_zombie(pid)
}

impl Relay {
    /// Starts `relay ARGS` with its stdout read line by line as it is printed, for commands that
    /// keep running (`relay logs -f`) or must be acted on at a known point (`relay demo`).
    pub fn stream_relay(&self, args: &[&str]) -> RelayStream {
        let mut command = self.command(RELAY_EXE, self.dir.path());
        command.args(args);
        RelayStream::spawn(command)
    }
}

/// A running `relay` whose stdout lines can be awaited one by one. Killed by pid if dropped.
pub struct RelayStream {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl RelayStream {
    /// Starts `command` with stdin from nowhere.
    pub fn spawn(mut command: Command) -> RelayStream {
        command.stdin(Stdio::null());
        RelayStream::spawn_with_stdin(command)
    }

    /// Starts `command` with whatever stdin it was given (see [`RelayStream::stdin`]).
    pub fn spawn_with_stdin(mut command: Command) -> RelayStream {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relay");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Some(read_all(child.stderr.take().unwrap()));
        RelayStream {
            child,
            lines,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's stdin, when it was started with a piped one.
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.child
            .stdin
            .as_mut()
            .expect("started with a piped stdin")
    }

    /// The next line on stdout, waiting at most [`PROMPTLY`].
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(PROMPTLY) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("relay printed no line within {PROMPTLY:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("relay closed stdout"),
        }
    }

    /// Reads JSON lines until one satisfies `condition` and returns it, failing the test after
    /// [`PROMPTLY`] or when stdout ends first.
    pub fn json_line_where(&mut self, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PROMPTLY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!("no {what} line within {PROMPTLY:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("stdout ended before a {what} line"),
            };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{line:?} is not JSON ({e})"));
            if condition(&value) {
                return value;
            }
        }
    }

    /// Waits for the end (at most [`RELAY_RUN_LIMIT`]) and returns the status, the stdout lines
    /// not yet taken and stderr.
    pub fn finish(mut self) -> RelayRun {
        let deadline = Instant::now() + RELAY_RUN_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "relay did not finish within {RELAY_RUN_LIMIT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        };
        // Bounded per line: a process it started could still hold its stdout open.
        let mut stdout = String::new();
        while let Ok(line) = self.lines.recv_timeout(PROMPTLY) {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        RelayRun {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

impl Drop for RelayStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
