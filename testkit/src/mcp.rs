//! The MCP client of a `relay-channel`: JSON-RPC over the child's stdio, as Claude Code speaks it.
//! The one client of the tests and the bench.
//!
//! A reader thread reads the child's stdout, notes the instant each line was read and parses it;
//! the test thread takes lines from its queue. So a latency the bench measures never includes the
//! time its main thread takes to get round to a message (which matters when 200 channels answer
//! at once), and requests can be in flight while a test waits for a push.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Write},
    process::{ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    PROMPTLY,
    process::{KillOnDrop, POLL},
    world::World,
};

/// The method of the notifications a channel pushes into its Claude Code session.
pub const PUSH: &str = "notifications/claude/channel";

/// A child with piped stdio that is sent JSON lines and whose stdout lines a reader thread
/// timestamps and parses (a line that is not JSON arrives as a JSON string). Killed by pid when
/// dropped.
pub struct JsonLines {
    name: String,
    process: KillOnDrop,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, Value)>,
    /// Lines read but not yet taken, oldest first.
    pending: VecDeque<(Instant, Value)>,
    /// Applied to every line as the test thread receives it.
    check: fn(&str, &Value),
}

impl JsonLines {
    /// Starts `command` with piped stdin and stdout (stderr as the command says). `name` names
    /// it in failures.
    pub fn spawn(command: Command, name: &str) -> JsonLines {
        JsonLines::spawn_checked(command, name, |_, _| {})
    }

    /// [`JsonLines::spawn`], with `check` applied to every line received (it panics on a line
    /// the child must not print).
    pub fn spawn_checked(mut command: Command, name: &str, check: fn(&str, &Value)) -> JsonLines {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut process = KillOnDrop::spawn(&mut command, name);
        let stdout = process.child().stdout.take().expect("piped stdout");
        let stdin = process.child().stdin.take();
        let (tx, lines) = mpsc::channel();
        // The reader ends at end of file, i.e. when the child dies.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send((at, value)).is_err() {
                    break;
                }
            }
        });
        JsonLines {
            name: name.to_owned(),
            process,
            stdin,
            lines,
            pending: VecDeque::new(),
            check,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Writes `message` as one line with a single `write`, as a real client does.
    pub fn send(&mut self, message: &Value) {
        let line = format!("{message}\n");
        self.stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{}: stdin is closed", self.name))
            .write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("{}: write: {e}", self.name));
    }

    /// The first line (already read or still to come) that is `wanted`, with the instant it was
    /// read; other lines are kept for later. `None` after `within`.
    pub fn take_within(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<(Instant, Value)> {
        if let Some(index) = self.pending.iter().position(|(_, line)| wanted(line)) {
            return self.pending.remove(index);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    (self.check)(&self.name, &line);
                    if wanted(&line) {
                        return Some((at, line));
                    }
                    self.pending.push_back((at, line));
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: stdout closed", self.name)
                }
            }
        }
    }

    /// [`JsonLines::take_within`] [`PROMPTLY`], failing the test without it; `what` names the
    /// line in that failure.
    pub fn take(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> (Instant, Value) {
        self.take_within(PROMPTLY, wanted)
            .unwrap_or_else(|| panic!("{}: no {what} within {PROMPTLY:?}", self.name))
    }

    /// Closes stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit, failing after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.process
            .wait_within(within, POLL)
            .unwrap_or_else(|| panic!("{} did not exit within {within:?}", self.name))
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// What a channel may print on stdout: JSON-RPC responses and channel pushes, nothing else (a
/// stray line would break Claude Code's reading of the server).
fn check_channel_line(name: &str, line: &Value) {
    assert!(
        line["jsonrpc"] == "2.0",
        "{name}: stdout carried a line that is not JSON-RPC: {line}"
    );
    let response = line.get("id").is_some() && line.get("method").is_none();
    assert!(
        response || line["method"] == PUSH,
        "{name}: unexpected: {line}"
    );
}

/// The outcome of a tool call: the JSON in its one text block, and whether it was an error.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub is_error: bool,
    pub body: Value,
}

/// A `relay-channel` process and an MCP client on its stdio.
pub struct Channel {
    /// The name it asked for, and once registered ([`World::registered`]) the one it got.
    pub name: String,
    lines: JsonLines,
    next_id: u64,
}

impl Channel {
    /// Starts `command` (a relay-channel, or something that execs one) with piped stdio and
    /// stderr inherited.
    pub fn spawn_command(mut command: Command, name: &str) -> Channel {
        command.stderr(Stdio::inherit());
        Channel {
            name: name.to_owned(),
            lines: JsonLines::spawn_checked(command, name, check_channel_line),
            next_id: 1,
        }
    }

    pub fn pid(&self) -> u32 {
        self.lines.pid()
    }

    /// Writes one JSON-RPC message as it is.
    pub fn send(&mut self, message: &Value) {
        self.lines.send(message);
    }

    /// Sends a request without waiting for its answer; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The whole response to request `id`, with the instant it was read. Pushes and other
    /// responses that arrive meanwhile are kept.
    pub fn response(&mut self, id: u64) -> (Instant, Value) {
        self.lines
            .take(&format!("answer to request {id}"), |m| m["id"] == id)
    }

    /// Sends a request and returns its whole response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id).1
    }

    /// Starts the MCP handshake; [`Channel::finish_initialize`] reads its answer.
    pub fn start_initialize(&mut self) -> u64 {
        self.send_request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "relay-tests", "version": "0"}}),
        )
    }

    /// Reads the answer to `initialize` (request `id`), sends `notifications/initialized`, and
    /// returns the result with the instant it was read.
    pub fn finish_initialize(&mut self, id: u64) -> (Instant, Value) {
        let (at, response) = self.response(id);
        assert!(
            response.get("result").is_some(),
            "{}: initialize failed: {response}",
            self.name
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        (at, response["result"].clone())
    }

    /// The whole MCP handshake; returns the server's `initialize` result.
    pub fn initialize(&mut self) -> Value {
        let id = self.start_initialize();
        self.finish_initialize(id).1
    }

    /// Calls tool `tool` without waiting for its answer; returns the request id.
    pub fn send_call(&mut self, tool: &str, arguments: Value) -> u64 {
        self.send_request("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// The outcome of the tool call `id`.
    pub fn outcome(&mut self, id: u64) -> ToolOutcome {
        let (_, response) = self.response(id);
        let result = &response["result"];
        let content = result["content"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no content: {response}", self.name));
        assert_eq!(content.len(), 1, "one content block: {response}");
        assert_eq!(content[0]["type"], "text");
        let body = serde_json::from_str(content[0]["text"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: tool text is not JSON ({e}): {response}", self.name));
        ToolOutcome {
            is_error: result["isError"] == true,
            body,
        }
    }

    pub fn call(&mut self, tool: &str, arguments: Value) -> ToolOutcome {
        let id = self.send_call(tool, arguments);
        self.outcome(id)
    }

    /// The JSON of the tool call `id`, which must have succeeded.
    pub fn outcome_ok(&mut self, id: u64) -> Value {
        let outcome = self.outcome(id);
        assert!(
            !outcome.is_error,
            "{}: tool call {id} failed: {}",
            self.name, outcome.body
        );
        outcome.body
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

    /// The next channel push (its `params`), or `None` after `within`.
    pub fn push_within(&mut self, within: Duration) -> Option<Value> {
        let (_, message) = self.lines.take_within(within, |m| m["method"] == PUSH)?;
        Some(message["params"].clone())
    }

    /// The first push whose `meta.kind` is `kind` (others are kept): the instant it was read,
    /// and its `params`.
    pub fn push_of(&mut self, kind: &str) -> (Instant, Value) {
        let (at, message) = self.lines.take(&format!("{kind} push"), |m| {
            m["method"] == PUSH && m["params"]["meta"]["kind"] == kind
        });
        (at, message["params"].clone())
    }

    /// Closes stdin, as Claude Code does on exit.
    pub fn close_stdin(&mut self) {
        self.lines.close_stdin();
    }

    /// Waits for the process to exit, failing after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.lines.wait_exit(within)
    }

    /// Kills the process (by its pid) and reaps it.
    pub fn kill(&mut self) {
        self.lines.kill();
    }
}

impl World {
    /// Starts a channel named by `RELAY_SESSION_NAME`, completes the MCP handshake and waits
    /// until it is registered with the hub.
    pub fn channel(&mut self, name: &str) -> Channel {
        let mut channel = self.spawn_channel(name, &[]);
        channel.initialize();
        self.registered(&mut channel);
        channel
    }

    /// Waits until `channel` is registered (its relay_peers answers), names it as registered,
    /// and notes the hub it started, so that the hub is killed when the world drops. Returns
    /// the relay_peers answer.
    pub fn registered(&mut self, channel: &mut Channel) -> Value {
        let peers = channel.ok("relay_peers", json!({}));
        if let Some(me) = peers["me"].as_str() {
            channel.name = me.to_owned();
        }
        self.note_hub();
        peers
    }

    /// Starts a channel process in its own working directory, without the handshake. `env` adds
    /// variables; a name of `""` leaves `RELAY_SESSION_NAME` unset.
    pub fn spawn_channel(&self, name: &str, env: &[(&str, &str)]) -> Channel {
        let cwd = self.workdir(if name.is_empty() { "unnamed" } else { name });
        let mut command = self.command(self.bins().channel, &cwd);
        if !name.is_empty() {
            command.env("RELAY_SESSION_NAME", name);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        Channel::spawn_command(command, name)
    }
}
