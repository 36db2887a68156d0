//! A minimal MCP client over a `relay-channel` child's stdio: what Claude Code does with the
//! channel, reduced to what the demo needs (`initialize`, `tools/call`, and collecting the
//! `notifications/claude/channel` pushes that arrive meanwhile).

use std::{collections::VecDeque, path::Path, process::Stdio, time::Duration};

use serde_json::{Map, Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
    time::{Instant, timeout_at},
};

use crate::channel::notify::METHOD as PUSH_METHOD;

/// The MCP protocol version the demo speaks (the one the channel's tests use).
const PROTOCOL_VERSION: &str = "2025-06-18";

/// How long writing one message to a channel's stdin may take.
const WRITE_LIMIT: Duration = Duration::from_secs(5);

/// What a tool call answered: the JSON of its one text block, and whether it is an error.
#[derive(Debug, Clone)]
pub(super) struct ToolReply {
    pub is_error: bool,
    pub body: Value,
}

/// A running `relay-channel` and the client end of its stdio.
pub(super) struct ChannelClient {
    /// The session's current name (it changes on `relay_rename`).
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Pushes that arrived while the client waited for a response.
    pushes: VecDeque<Value>,
    next_id: u64,
}

impl ChannelClient {
    /// Starts `command` (a relay-channel, environment already set) with piped stdin and stdout.
    /// The child gets its own process group, so that a Ctrl-C in the terminal reaches only
    /// `relay`, which then closes the sessions in order; it is killed if the session is dropped.
    pub(super) fn spawn(
        mut command: Command,
        name: &str,
        exe: &Path,
    ) -> Result<ChannelClient, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!("{} started without piped stdio", exe.display()));
        };
        Ok(ChannelClient {
            name: name.to_owned(),
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            pushes: VecDeque::new(),
            next_id: 1,
        })
    }

    /// The process id, while the process runs.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The MCP handshake: `initialize`, then `notifications/initialized`.
    pub(super) async fn initialize(&mut self, within: Duration) -> Result<Value, String> {
        let result = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "relay-demo", "version": env!("CARGO_PKG_VERSION")},
                }),
                within,
            )
            .await?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(result)
    }

    /// Calls `tool` and returns its reply; an error reply is a reply, not an `Err`.
    pub(super) async fn call_tool(
        &mut self,
        tool: &str,
        arguments: Map<String, Value>,
        within: Duration,
    ) -> Result<ToolReply, String> {
        let result = self
            .request(
                "tools/call",
                json!({"name": tool, "arguments": arguments}),
                within,
            )
            .await?;
        let text = match result["content"].as_array().map(Vec::as_slice) {
            Some([block]) if block["type"] == "text" => block["text"].as_str(),
            _ => None,
        }
        .ok_or_else(|| format!("{tool} did not answer with one text block: {result}"))?;
        let body = serde_json::from_str(text)
            .map_err(|e| format!("{tool} answered text that is not JSON ({e}): {text:?}"))?;
        Ok(ToolReply {
            is_error: result["isError"] == true,
            body,
        })
    }

    /// The `params` of the next channel push, waiting up to `within`.
    pub(super) async fn next_push(&mut self, within: Duration) -> Result<Value, String> {
        if let Some(push) = self.pushes.pop_front() {
            return Ok(push);
        }
        let deadline = Instant::now() + within;
        loop {
            let message = self.read(deadline, "a channel push").await?;
            if message["method"] == PUSH_METHOD {
                return Ok(message["params"].clone());
            }
        }
    }

    /// Closes stdin, as Claude Code does on exit, and waits up to `within` for the process to
    /// end; kills it if it does not. `Err` says what had to be done.
    pub(super) async fn close(&mut self, within: Duration) -> Result<(), String> {
        self.stdin = None;
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot wait for {}: {e}", self.name)),
            Err(_) => {
                let killed = self.child.kill().await;
                Err(format!(
                    "{} did not exit within {} s of its stdin closing; {}",
                    self.name,
                    within.as_secs(),
                    match killed {
                        Ok(()) => "killed it".to_owned(),
                        Err(e) => format!("killing it failed too: {e}"),
                    }
                ))
            }
        }
    }

    /// Sends a request and returns its `result`; pushes that arrive first are kept.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        let deadline = Instant::now() + within;
        let what = format!("the answer to {method}");
        loop {
            let message = self.read(deadline, &what).await?;
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(message["result"].clone());
            }
            if message["method"] == PUSH_METHOD {
                self.pushes.push_back(message["params"].clone());
            }
        }
    }

    async fn send(&mut self, message: &Value) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: stdin is already closed", self.name))?;
        let line = format!("{message}\n");
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        // A channel that stopped reading would block the write once the pipe is full.
        match tokio::time::timeout(WRITE_LIMIT, written).await {
            Ok(written) => written.map_err(|e| format!("cannot write to {}: {e}", self.name)),
            Err(_) => Err(format!(
                "{} did not read its stdin within {} s",
                self.name,
                WRITE_LIMIT.as_secs()
            )),
        }
    }

    /// The next JSON-RPC message from stdout, waiting for `what` until `deadline`.
    async fn read(&mut self, deadline: Instant, what: &str) -> Result<Value, String> {
        let line = match timeout_at(deadline, self.stdout.next_line()).await {
            Err(_) => return Err(format!("{}: no {what} in time", self.name)),
            Ok(Err(e)) => return Err(format!("cannot read from {}: {e}", self.name)),
            Ok(Ok(None)) => {
                return Err(format!(
                    "{}: its stdout closed while waiting for {what} (the process exited)",
                    self.name
                ));
            }
            Ok(Ok(Some(line))) => line,
        };
        serde_json::from_str::<Value>(&line)
            .ok()
            .filter(|message| message["jsonrpc"] == "2.0")
            .ok_or_else(|| format!("{} wrote a line that is not JSON-RPC: {line:?}", self.name))
    }
}
