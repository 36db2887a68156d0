//! End-to-end tests with the REAL `claude` CLI, run offline against a scripted mock of the
//! Messages API. They prove what unit tests cannot: that Claude Code loads the plugin, that our
//! channel's pushes reach a real session's model as `<channel>` blocks, and that the model's tool
//! calls travel back. Most sessions are `claude -p` in stream-json mode; one test drives a plain
//! interactive `claude` in a tmux pane, as a person uses it (`tmux` required, like the CLI).
//!
//! Every case in `claude_cli/cases.rs` runs once per CLI version in `.ci/claude-versions` (the
//! oldest supported and the newest tested), each installed by `.ci/install-claude.sh`; the
//! version is in the test's name (`v2_1_332::...`). Without a CLI (outside CI) a test prints one
//! "skipped" line and passes; under `CI=true` a missing CLI fails. Set `RELAY_TEST_KEEP=1` to
//! keep a test's temp dir (HOMEs, stderr and `--debug-file` logs, hub logs) for inspection.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::bins;
use testkit::claude::harness::{
    ClaudeSession, Harness, TerminalSession, base_command, claude_or_skip, tool,
};
use testkit::claude::mock_api::{ChannelBlock, Reply, Request};
use testkit::claude::tmux::find_tmux;

/// What `relay peers --json` says of the sessions of harness `h`'s hub, by name.
fn peers_of(h: &Harness) -> Vec<Value> {
    let out = std::process::Command::new(bins!().relay)
        .args(["peers", "--json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", h.root())
        .env("CLAUDE_PLUGIN_DATA", h.plugin_data_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run relay peers");
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|list| list["peers"].as_array().cloned())
        .unwrap_or_default()
}

/// Waits until a waiter is armed for session `name` (its `Stop` or `SessionStart` hook runs in
/// the background, so nothing tells the test when), or fails.
fn waiter_armed(h: &Harness, sessions: &[ClaudeSession], name: &str) {
    let armed = testkit::process::poll_until(STEP, || {
        peers_of(h)
            .iter()
            .any(|peer| peer["name"] == name && peer["waiter"] == true)
    });
    if !armed {
        h.fail(sessions, &format!("no waiter was armed for {name}"));
    }
}

/// How many requests of session `s` carry, as what the model answers now, a `<relay-message>`
/// containing `marker`: how often it was shown.
fn times_shown(h: &Harness, s: &ClaudeSession, marker: &str) -> usize {
    h.mock
        .main_requests(&s.id)
        .iter()
        .filter(|r| {
            relay_messages_in(&r.text_since_last_answer())
                .iter()
                .any(|(_, text)| text.contains(marker))
        })
        .count()
}

/// Claude Code start-up plus MCP connect; generous for a loaded 2-core CI box.
const READY: Duration = Duration::from_secs(60);
/// One hop: a tool call, or a push from one session to another.
const STEP: Duration = Duration::from_secs(30);
/// How long the canary waits for a push that must NOT arrive. Seeded runs
/// deliver in about a second.
const CANARY_WAIT: Duration = Duration::from_secs(10);

/// The source attribute Claude Code gives our plugin's pushes.
const SOURCE: &str = "plugin:relay:relay";

/// The repository root, loaded as the plugin under test.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The world of one test against CLI `version`; `None` when it is to be skipped (see
/// [`claude_or_skip`]). The plugin's `bin/relay-channel` launcher execs
/// `$RELAY_BIN_DIR/relay-channel`, the one cargo built.
fn harness(test: &str, version: &str) -> Option<Harness> {
    let cli = claude_or_skip(test, version)?;
    Some(Harness::new(cli, repo_root(), bins!().dir().to_owned()))
}

/// The `tmux` to drive an interactive session with; `None` (after one line saying so) when there
/// is none outside CI. Under `CI=true` a missing tmux fails, as a missing CLI does.
fn tmux_or_skip(test: &str, version: &str) -> Option<PathBuf> {
    match find_tmux() {
        Ok(tmux) => Some(tmux),
        Err(why) => {
            let why = format!("{why} (bash .ci/install-packages.sh installs it)");
            testkit::skip_unless_ci(&format!("{test} ({version})"), "tmux", &why);
            None
        }
    }
}

/// How many times the relay's logs (of harness `h`, in full) record `event`.
fn log_events(h: &Harness, event: &str) -> usize {
    let needle = format!("\"event\":\"{event}\"");
    let logs = h.plugin_data_dir().join("logs");
    fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| fs::read_to_string(entry.path()).unwrap_or_default())
        .map(|text| text.matches(&needle).count())
        .sum()
}

/// Fails a terminal test with what the terminal shows, what the model was sent, and the logs.
fn fail_in_terminal(h: &Harness, s: &TerminalSession, what: &str) -> ! {
    h.fail(
        &[],
        &format!(
            "{what}\n=== {} terminal\n{}\n=== {} requests\n{}",
            s.name,
            s.pane.screen(),
            s.name,
            h.mock.describe(&s.id)
        ),
    )
}

/// Wait for a main request of `s` satisfying `pred`, or fail with diagnostics.
fn expect(
    h: &Harness,
    sessions: &[ClaudeSession],
    s: &ClaudeSession,
    what: &str,
    pred: impl Fn(&Request) -> bool,
) -> Request {
    h.mock
        .wait_for(&s.id, STEP, pred)
        .unwrap_or_else(|| h.fail(sessions, &format!("{}: {what}", s.name)))
}

/// The JSON result of relay tool `short` in this request, if it has one.
fn result_json(r: &Request, short: &str) -> Option<Value> {
    r.tool_result(&tool(short)).map(|t| {
        t.json()
            .unwrap_or_else(|| json!({"not_json": t.text, "is_error": t.is_error}))
    })
}

/// Channel blocks of `kind` in the last user message of `r`.
fn channels_of(r: &Request, kind: &str) -> Vec<ChannelBlock> {
    r.channels()
        .into_iter()
        .filter(|c| c.attr("kind") == Some(kind))
        .collect()
}

/// The answering side of every multi-session test: when an ask arrives over
/// the channel, call `relay_reply` with the ask_id taken from that block.
fn replier(answer: &'static str) -> impl FnMut(&Request) -> Option<Reply> + Send + 'static {
    move |r| {
        if let Some(ask) = channels_of(r, "ask").into_iter().next() {
            let ask_id = ask.attr("ask_id").unwrap_or_default().to_owned();
            return Some(Reply::tool(
                tool("relay_reply"),
                json!({"ask_id": ask_id, "text": answer}),
            ));
        }
        if r.tool_result(&tool("relay_reply")).is_some() {
            return Some(Reply::text("replied"));
        }
        None
    }
}

/// The answering side for a session without the channels flag: when a question containing
/// `marker` is shown (by a waiter or the prompt hook, as a `<relay-message>`), reply `answer` to
/// its ask_id.
fn relay_message_replier(
    marker: &'static str,
    answer: &'static str,
) -> impl FnMut(&Request) -> Option<Reply> + Send + 'static {
    move |r| {
        if let Some((head, _)) = relay_messages_in(&r.text_since_last_answer())
            .into_iter()
            .find(|(_, text)| text.contains(marker))
        {
            let ask_id = attr_in(&head, "ask_id").unwrap_or_default();
            return Some(Reply::tool(
                tool("relay_reply"),
                json!({"ask_id": ask_id, "text": answer}),
            ));
        }
        let replied = r
            .tool_result(&tool("relay_reply"))
            .and_then(|t| t.json())
            .is_some_and(|v| v["ok"] == true);
        replied.then(|| Reply::text("replied"))
    }
}

/// The pids of the waiters (`relay-channel wait`) of the Claude Code session `session_id`.
fn waiter_pids(session_id: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_waiter =
            args.len() >= 2 && args[0].ends_with(b"relay-channel") && args[1] == b"wait";
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        let ours = environ
            .split(|b| *b == 0)
            .any(|var| var == format!("CLAUDE_CODE_SESSION_ID={session_id}").as_bytes());
        if is_waiter && ours {
            pids.push(pid);
        }
    }
    pids
}

/// Alpha's side of the two-session exchange: list peers (again, briefly, until
/// beta shows up: a channel may register with the hub a moment after its
/// tools are offered), ask beta, then acknowledge the reply.
fn asker(question: &'static str) -> impl FnMut(&Request) -> Option<Reply> + Send + 'static {
    let mut peer_calls = 0;
    move |r| {
        if r.last_user_text().contains("START-ASK") {
            return Some(Reply::tool(tool("relay_peers"), json!({})));
        }
        if let Some(peers) = result_json(r, "relay_peers") {
            peer_calls += 1;
            if !peer_names(&peers).contains(&"beta".to_owned()) && peer_calls < 20 {
                std::thread::sleep(Duration::from_millis(250));
                return Some(Reply::tool(tool("relay_peers"), json!({})));
            }
            return Some(Reply::tool(
                tool("relay_ask"),
                json!({"to": "beta", "question": question}),
            ));
        }
        if r.tool_result(&tool("relay_ask")).is_some() {
            return Some(Reply::text("asked beta"));
        }
        if !channels_of(r, "reply").is_empty() {
            return Some(Reply::text("got the reply"));
        }
        None
    }
}

fn peer_names(peers: &Value) -> Vec<String> {
    peers["peers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Run `claude <args>` (not a session) with a harness HOME; returns (success, stdout+stderr).
fn run_cli(h: &Harness, home_name: &str, args: &[&str]) -> (bool, String) {
    let (home, cwd) = h.make_home(home_name, true);
    let out = base_command(&h.cli, &home, &cwd, &h.mock.base_url())
        .args(args)
        .env("CLAUDE_CODE_PLUGIN_CACHE_DIR", h.plugin_cache_dir())
        .env("RELAY_BIN_DIR", &h.bin_dir)
        .output()
        .expect("run claude");
    let text = format!(
        "$ claude {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Copy the repo minus `target/` and `.git/`: installing from a directory
/// marketplace copies the whole tree into the plugin cache, build output
/// included (hundreds of MB).
fn stage_repo(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap().flatten() {
            let name = entry.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            let (src, dst) = (entry.path(), to.join(&name));
            if src.is_dir() {
                copy(&src, &dst);
            } else if src.is_file() {
                if src.metadata().unwrap().permissions().mode() & 0o111 != 0 {
                    // bin/relay-channel. Not fs::copy, which would hold it open for writing in
                    // this process: see testkit::write_executable.
                    testkit::copy_executable(&src, &dst);
                } else {
                    fs::copy(&src, &dst).unwrap();
                }
            }
        }
    }
    copy(&repo_root(), to);
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).map_or(0, |i| i + open.len());
    let end = text[start..].find(close).map_or(text.len(), |i| start + i);
    &text[start..end]
}

/// Every string in the request's messages (hook context may come as its own block or message).
fn all_message_text(r: &Request) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::String(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            Value::Object(map) => map.values().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(&r.body["messages"], &mut out);
    out
}

/// The head and content of every `<relay-message ...>` block in `text`.
fn relay_messages_in(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<relay-message ") {
        let after = &rest[start..];
        let Some(head_end) = after.find('>') else {
            break;
        };
        let Some(close) = after.find("</relay-message>") else {
            break;
        };
        found.push((
            after[..head_end].to_owned(),
            after[head_end + 1..close].trim().to_owned(),
        ));
        rest = &after[close..];
    }
    found
}

/// The head and content of every `<relay-message ...>` block (what the prompt hook shows a
/// session whose pushes are off) anywhere in the messages of `r`.
fn relay_messages(r: &Request) -> Vec<(String, String)> {
    relay_messages_in(&all_message_text(r))
}

fn attr_in(head: &str, key: &str) -> Option<String> {
    let marker = format!(" {key}=\"");
    let start = head.find(&marker)? + marker.len();
    let end = head[start..].find('"')?;
    Some(head[start..start + end].to_owned())
}

/// One module of every case per tested CLI version; `build.rs` writes one invocation per line
/// of `.ci/claude-versions`.
macro_rules! claude_cli_tests {
    ($module:ident, $version:literal) => {
        mod $module {
            use super::*;

            const VERSION: &str = $version;

            include!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/claude_cli/cases.rs"
            ));
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/claude_versions.rs"));
