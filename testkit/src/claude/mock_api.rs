//! A scripted stand-in for the Anthropic Messages API, so the real `claude`
//! CLI can run offline and deterministically.
//!
//! It is a tiny HTTP/1.1 server on `127.0.0.1:0` (std `TcpListener`, one
//! thread per connection, `Connection: close`). `POST /v1/messages` is answered
//! with a streaming SSE reply; anything else gets a 404 (and is recorded, which
//! helps when a new CLI version starts calling something new).
//!
//! Every request is recorded, so a test can assert on what each session's
//! model was shown ("beta's next request contains the `<channel ...>` block"),
//! and can block on that with [`MockApi::wait_for`] (a `Condvar`, no sleeps).
//!
//! Replies are scripted per session: the CLI is started with
//! `--session-id <uuid>`, which it echoes in the `X-Claude-Code-Session-Id`
//! header, so one mock can play the model for several sessions at once. A
//! script is a closure from the [`Request`] to a [`Reply`]; it usually
//! looks at the last `role:"user"` message, which holds the prompt, the
//! `tool_result` blocks of the previous turn, or a pushed `<channel>` block; or at
//! everything sent since the model's last answer ([`Request::text_since_last_answer`]).
//! Closures (not canned strings) because some replies depend on the request,
//! e.g. `relay_reply` must quote the `ask_id` that arrived in a channel block.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One recorded HTTP request.
#[derive(Clone, Debug)]
pub struct Request {
    /// Position in the mock's log (0-based, over all sessions).
    pub seq: usize,
    pub method: String,
    /// Path including any query string, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// The `X-Claude-Code-Session-Id` header, if any.
    pub session: Option<String>,
    /// The parsed JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
    /// When its request line was read: the moment the request reached the mock.
    pub at: Instant,
}

/// A `tool_result` block of the last user message, paired with the name of
/// the `tool_use` it answers (looked up in the preceding assistant message).
#[derive(Clone, Debug)]
pub struct ToolResult {
    pub tool_use_id: String,
    /// Full tool name, e.g. `mcp__plugin_relay_relay__relay_ask` (empty if unknown).
    pub name: String,
    pub text: String,
    pub is_error: bool,
}

impl ToolResult {
    /// The result text parsed as JSON (our relay tools answer with JSON text).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }
}

/// A `<channel k="v" ...>content</channel>` block as Claude Code renders a
/// `notifications/claude/channel` push into the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelBlock {
    /// Attributes, entity-decoded (`source`, `kind`, `from`, `ask_id`, ...).
    pub attrs: BTreeMap<String, String>,
    pub content: String,
}

impl ChannelBlock {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }
}

impl Request {
    /// Main-loop requests carry the tool list; side requests (title
    /// generation and the like) do not, and are never shown to scripts.
    pub fn is_main(&self) -> bool {
        self.path.starts_with("/v1/messages")
            && !self.path.starts_with("/v1/messages/")
            && self.body["tools"]
                .as_array()
                .is_some_and(|tools| !tools.is_empty())
    }

    /// Names of the tools offered to the model in this request.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The last `role:"user"` message: what the model is answering now.
    pub fn last_user(&self) -> Option<&Value> {
        self.messages().iter().rev().find(|m| m["role"] == "user")
    }

    /// All text of the last user message (string content or `text` blocks), joined by newlines.
    pub fn last_user_text(&self) -> String {
        self.last_user().map(message_text).unwrap_or_default()
    }

    /// All text of the messages after the model's last answer (the last assistant message):
    /// the last user message, and any message that follows it. Claude Code (2.1.197 and 2.1.332)
    /// sends the output of a background (`asyncRewake`) hook that exits 2 while a turn runs as a
    /// `role:"system"` message after the turn's next tool results, instead of starting a turn.
    pub fn text_since_last_answer(&self) -> String {
        self.since_last_answer()
            .iter()
            .map(message_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The messages after the last assistant message.
    fn since_last_answer(&self) -> &[Value] {
        let messages = self.messages();
        let after = messages
            .iter()
            .rposition(|m| m["role"] == "assistant")
            .map_or(0, |i| i + 1);
        &messages[after..]
    }

    /// `tool_result` blocks of the last user message, with their tool names.
    pub fn tool_results(&self) -> Vec<ToolResult> {
        let messages = self.messages();
        let Some(last) = messages.iter().rposition(|m| m["role"] == "user") else {
            return Vec::new();
        };
        let mut names = HashMap::new();
        for m in &messages[..last] {
            for b in blocks(m) {
                if b["type"] == "tool_use" {
                    names.insert(
                        b["id"].as_str().unwrap_or_default().to_owned(),
                        b["name"].as_str().unwrap_or_default().to_owned(),
                    );
                }
            }
        }
        blocks(&messages[last])
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                let id = b["tool_use_id"].as_str().unwrap_or_default().to_owned();
                ToolResult {
                    name: names.get(&id).cloned().unwrap_or_default(),
                    tool_use_id: id,
                    text: content_text(&b["content"]),
                    is_error: b["is_error"].as_bool().unwrap_or(false),
                }
            })
            .collect()
    }

    /// The result of tool `name` (full name, or a suffix such as `__relay_ask`) in the last user message.
    pub fn tool_result(&self, name: &str) -> Option<ToolResult> {
        self.tool_results()
            .into_iter()
            .find(|r| r.name == name || r.name.ends_with(name))
    }

    /// Whether tool `name` can be called in reply to this request: offered at the top of the
    /// prompt, or (Claude Code 2.1.332 defers MCP tools behind tool search) loaded by the
    /// `ToolSearch` call this request answers.
    pub fn can_call(&self, name: &str) -> bool {
        self.tool_names().iter().any(|t| t == name)
            || self
                .tool_result("ToolSearch")
                .is_some_and(|found| found.text.contains(name))
    }

    /// Whether tool `name` is offered only by name, to be loaded with `ToolSearch` first.
    pub fn is_deferred(&self, name: &str) -> bool {
        !self.can_call(name)
            && self.tool_names().iter().any(|t| t == "ToolSearch")
            && self.body["messages"].to_string().contains(name)
    }

    /// `<channel>` blocks in the last user message.
    pub fn channels(&self) -> Vec<ChannelBlock> {
        parse_channels(&self.last_user_text())
    }

    /// `<channel>` blocks anywhere in the conversation sent with this request.
    pub fn all_channels(&self) -> Vec<ChannelBlock> {
        self.messages()
            .iter()
            .filter(|m| m["role"] == "user")
            .flat_map(|m| parse_channels(&message_text(m)))
            .collect()
    }
}

fn blocks(message: &Value) -> &[Value] {
    message["content"].as_array().map_or(&[], Vec::as_slice)
}

/// Text of a message or `tool_result` content: a string, or an array of blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn message_text(message: &Value) -> String {
    content_text(&message["content"])
}

/// Parse every `<channel attr="..." ...>content</channel>` in `text`.
pub fn parse_channels(text: &str) -> Vec<ChannelBlock> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<channel ") {
        rest = &rest[start + "<channel ".len()..];
        let Some(tag_end) = rest.find('>') else { break };
        let attrs = parse_attrs(&rest[..tag_end]);
        rest = &rest[tag_end + 1..];
        let end = rest.find("</channel>").unwrap_or(rest.len());
        out.push(ChannelBlock {
            attrs,
            content: rest[..end].trim().to_owned(),
        });
        rest = &rest[end..];
    }
    out
}

/// `k1="v1" k2="v2"` -> map. Values are entity-escaped by Claude Code, so
/// they cannot contain a raw `"` or `>`.
fn parse_attrs(s: &str) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let mut rest = s.trim();
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim().to_owned();
        let after = &rest[eq + 2..];
        let Some(close) = after.find('"') else { break };
        attrs.insert(key, unescape(&after[..close]));
        rest = after[close + 1..].trim_start();
    }
    attrs
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// One content block of a scripted assistant message.
#[derive(Clone, Debug)]
pub enum Block {
    Text(String),
    /// A tool call; `name` is the full tool name the CLI offers.
    ToolUse {
        name: String,
        input: Value,
    },
}

/// A scripted assistant message. Its stop reason is `tool_use` when it has a
/// tool call (the CLI then runs the tool and sends the result in its next
/// request), else `end_turn`.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub blocks: Vec<Block>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Reply {
            blocks: vec![Block::Text(text.into())],
        }
    }

    pub fn tool(name: impl Into<String>, input: Value) -> Self {
        Reply {
            blocks: vec![Block::ToolUse {
                name: name.into(),
                input,
            }],
        }
    }

    /// A call of tool `name` as a model would make it in reply to `request`: directly when the
    /// tool can be called, else first `ToolSearch` to load a deferred tool (the script is asked
    /// again with its result, and then calls the tool). `None` when the tool is not offered.
    pub fn call(request: &Request, name: &str, input: Value) -> Option<Self> {
        if request.can_call(name) {
            return Some(Reply::tool(name, input));
        }
        request
            .is_deferred(name)
            .then(|| Reply::tool("ToolSearch", json!({"query": format!("select:{name}")})))
    }

    /// Add another block (e.g. a second tool call in the same turn).
    pub fn and(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }
}

/// Decides the model's reply to a main-loop request. `None` means "nothing
/// scripted for this": the mock answers with [`default_reply`].
pub type Script = Box<dyn FnMut(&Request) -> Option<Reply> + Send>;

struct State {
    requests: Vec<Request>,
    /// Each behind its own lock: scripts run outside the state lock.
    scripts: HashMap<String, Arc<Mutex<Script>>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled after every recorded request.
    changed: Condvar,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking script must not hide the real failure behind a poison error.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The mock server. Dropping it stops accepting connections.
pub struct MockApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockApi {
    /// Bind `127.0.0.1:0` and serve in background threads.
    pub fn start() -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock API on loopback");
        let addr = listener.local_addr().expect("mock API address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                requests: Vec::new(),
                scripts: HashMap::new(),
            }),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stop) = (shared.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    thread::spawn(move || {
                        // Errors only mean the client went away; nothing to do.
                        let _ = serve_connection(conn, &shared);
                    });
                }
            })
        };
        MockApi {
            addr,
            shared,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Script the model of session `session_id` (replaces an earlier script).
    pub fn script(
        &self,
        session_id: &str,
        script: impl FnMut(&Request) -> Option<Reply> + Send + 'static,
    ) {
        self.shared.lock().scripts.insert(
            session_id.to_owned(),
            Arc::new(Mutex::new(Box::new(script))),
        );
    }

    /// A snapshot of every request recorded so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// Main-loop requests of one session, in order.
    pub fn main_requests(&self, session_id: &str) -> Vec<Request> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.session.as_deref() == Some(session_id) && r.is_main())
            .cloned()
            .collect()
    }

    /// Block until a main-loop request of `session_id` satisfies `pred`
    /// (requests already recorded count too), or `timeout` passes.
    pub fn wait_for(
        &self,
        session_id: &str,
        timeout: Duration,
        pred: impl Fn(&Request) -> bool,
    ) -> Option<Request> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        let mut checked = 0;
        loop {
            let found = state.requests[checked..]
                .iter()
                .find(|r| r.session.as_deref() == Some(session_id) && r.is_main() && pred(r))
                .cloned();
            if found.is_some() {
                return found;
            }
            checked = state.requests.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A short dump of the recorded requests of one session, for failure messages.
    pub fn describe(&self, session_id: &str) -> String {
        let mut out = String::new();
        for r in self.main_requests(session_id) {
            let results: Vec<String> = r
                .tool_results()
                .iter()
                .map(|t| format!("{} -> {}", t.name, t.text))
                .collect();
            let text = r.last_user_text();
            out.push_str(&format!(
                "  #{} last user text (tail): {:?}\n     tool results: {:?}\n",
                r.seq,
                tail(&text, 600),
                results
            ));
            let after_the_results = r
                .since_last_answer()
                .iter()
                .skip_while(|m| m["role"] != "user")
                .skip(1)
                .map(message_text)
                .collect::<Vec<_>>()
                .join("\n");
            if !r.tool_results().is_empty() && !after_the_results.is_empty() {
                out.push_str(&format!(
                    "     sent after the tool results (tail): {:?}\n",
                    tail(&after_the_results, 600)
                ));
            }
        }
        if out.is_empty() {
            out.push_str("  (no main-loop requests)\n");
        }
        out
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so its thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// The last `max` bytes of `s` (on a char boundary), for failure messages.
pub fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Read one request, record it, answer it, close.
fn serve_connection(conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;

    let mut line = String::new();
    reader.read_line(&mut line)?;
    let at = Instant::now();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();

    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }

    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        read_chunked(&mut reader)?
    } else {
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut buf = vec![0; len];
        reader.read_exact(&mut buf)?;
        buf
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);

    let request = {
        let mut state = shared.lock();
        let request = Request {
            seq: state.requests.len(),
            method,
            path,
            session: headers.get("x-claude-code-session-id").cloned(),
            body,
            at,
        };
        state.requests.push(request.clone());
        request
    };
    shared.changed.notify_all();

    let response =
        if request.method == "POST" && request.path.split('?').next() == Some("/v1/messages") {
            let reply = if request.is_main() {
                run_script(shared, &request).unwrap_or_else(|| default_reply(&request))
            } else {
                Reply::text("Relay test")
            };
            let model = request.body["model"].as_str().unwrap_or("claude-mock");
            let sse = render_sse(&reply, model, &shared.next_id);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
             request-id: req_mock_{}\r\nconnection: close\r\n\r\n{sse}",
                request.seq
            )
        } else if request.path.starts_with("/v1/messages/count_tokens") {
            let body = r#"{"input_tokens":100}"#;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            let body = r#"{"type":"error","error":{"type":"not_found_error","message":"mock"}}"#;
            format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
                body.len()
            )
        };
    conn.write_all(response.as_bytes())?;
    conn.flush()
}

/// The model's answer when no script decides: wait for MCP servers that are
/// still connecting, else a short text. Under `-p` the first turn does not
/// wait for MCP servers; while one is pending Claude Code offers the
/// `WaitForMcpServers` tool instead of its tools (seen on a loaded machine).
/// Calling it makes the next request carry the server's tools, which is
/// what a test's readiness check waits for.
pub fn default_reply(request: &Request) -> Reply {
    const WAIT: &str = "WaitForMcpServers";
    let offered = request.tool_names().iter().any(|t| t == WAIT);
    if offered && request.tool_result(WAIT).is_none() {
        return Reply::tool(WAIT, json!({}));
    }
    Reply::text("ok")
}

/// Run the session's script outside the state lock, so a script that takes
/// its time never stalls other sessions, the recording, or a test's wait.
fn run_script(shared: &Shared, request: &Request) -> Option<Reply> {
    let id = request.session.as_ref()?;
    let script = shared.lock().scripts.get(id).cloned()?;
    let mut script = script.lock().unwrap_or_else(|e| e.into_inner());
    script(request)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // Trailers end with an empty line.
            let mut l = String::new();
            while reader.read_line(&mut l)? > 0 && !l.trim().is_empty() {
                l.clear();
            }
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// The event stream of one assistant message, in the order the real API sends it.
fn render_sse(reply: &Reply, model: &str, next_id: &AtomicU64) -> String {
    fn event(out: &mut String, data: Value) {
        let name = data["type"].as_str().unwrap_or_default().to_owned();
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    let mut out = String::new();
    event(
        &mut out,
        json!({"type": "message_start", "message": {
            "id": format!("msg_mock_{}", next_id.fetch_add(1, Ordering::SeqCst)), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
    );
    let mut stop_reason = "end_turn";
    for (index, block) in reply.blocks.iter().enumerate() {
        match block {
            Block::Text(text) => {
                event(
                    &mut out,
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "text", "text": ""}}),
                );
                event(
                    &mut out,
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "text_delta", "text": text}}),
                );
            }
            Block::ToolUse { name, input } => {
                stop_reason = "tool_use";
                let id = format!("toolu_mock_{:04}", next_id.fetch_add(1, Ordering::SeqCst));
                event(
                    &mut out,
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                );
                event(
                    &mut out,
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
                );
            }
        }
        event(
            &mut out,
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        &mut out,
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 10}}),
    );
    event(&mut out, json!({"type": "message_stop"}));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_channel_blocks() {
        let text = "x <channel source=\"plugin:relay:relay\" kind=\"ask\" from=\"alpha\" ask_id=\"a&amp;1\">\nhi there\n</channel> y";
        let blocks = parse_channels(text);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].attr("from"), Some("alpha"));
        assert_eq!(blocks[0].attr("ask_id"), Some("a&1"));
        assert_eq!(blocks[0].content, "hi there");
    }
}
