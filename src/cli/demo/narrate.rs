//! How the demo tells its story: step by step for a person, or one JSON object per line for a
//! script (`--json`). Each JSON line has a `type`: `started`, `step`, `call`, `push`, `done`.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::cli::{
    demo::{channel::ToolReply, render::Push},
    output,
};

/// The processes and directory the demo started with.
pub(super) struct Started<'a> {
    pub temp_dir: &'a Path,
    pub data_dir: &'a Path,
    pub hub_pid: u32,
    /// Each session's name and channel pid, in start order.
    pub sessions: &'a [(String, u32)],
}

/// Prints the demo's events as narration or as JSON lines.
pub(super) struct Narrator {
    json: bool,
}

impl Narrator {
    pub(super) fn new(json: bool) -> Narrator {
        Narrator { json }
    }

    pub(super) fn started(&self, started: &Started) {
        if self.json {
            let (names, pids): (Vec<&str>, Vec<u32>) = started
                .sessions
                .iter()
                .map(|(name, pid)| (name.as_str(), *pid))
                .unzip();
            output::print_json(&json!({
                "type": "started",
                "temp_dir": started.temp_dir,
                "data_dir": started.data_dir,
                "hub_pid": started.hub_pid,
                "sessions": names,
                "channel_pids": pids,
            }));
            return;
        }
        outln!(
            "relay demo: two sessions talking through a private hub, as their Claude Code would see it."
        );
        outln!(
            "  temp dir      {} (removed at the end)",
            started.temp_dir.display()
        );
        outln!("  hub           pid {}", started.hub_pid);
        for (name, pid) in started.sessions {
            outln!("  {name:<13} relay-channel, pid {pid}");
        }
    }

    /// The start of step `number`, named `step` (the `step` of the lines that follow).
    pub(super) fn step(&self, number: usize, step: &str, title: &str) {
        if self.json {
            output::print_json(&json!({"type": "step", "step": step, "title": title}));
        } else {
            outln!("\n{number}. {title}");
        }
    }

    /// `session` called `tool` with `arguments` (in the order shown) and got `reply`.
    pub(super) fn call(
        &self,
        step: &str,
        session: &str,
        tool: &str,
        arguments: &[(&str, Value)],
        reply: &ToolReply,
    ) {
        if self.json {
            let arguments: Map<String, Value> = arguments
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect();
            output::print_json(&json!({
                "type": "call",
                "step": step,
                "session": session,
                "tool": tool,
                "arguments": arguments,
                "is_error": reply.is_error,
                "result": reply.body,
            }));
            return;
        }
        let shown: Vec<String> = arguments
            .iter()
            .map(|(key, value)| format!("{key}: {value}"))
            .collect();
        outln!("{session} ▸ {tool}({})", shown.join(", "));
        outln!("    ↳ {}", summarise(tool, reply));
    }

    /// `session` received `push`.
    pub(super) fn push(&self, step: &str, session: &str, push: &Push) {
        if self.json {
            output::print_json(&json!({
                "type": "push",
                "step": step,
                "session": session,
                "meta": push.meta,
                "content": push.content,
                "rendered": push.rendered,
            }));
        } else {
            outln!("{session} sees in its transcript:");
            outln!("{}", push.rendered);
        }
    }

    /// Everything ran and everything the demo started is gone.
    pub(super) fn done(&self, temp_dir: &Path) {
        if self.json {
            output::print_json(&json!({"type": "done"}));
        } else {
            outln!(
                "\nDone: both sessions closed, the hub stopped, {} removed.",
                temp_dir.display()
            );
        }
    }
}

/// One line on a tool's result, for people.
fn summarise(tool: &str, reply: &ToolReply) -> String {
    let body = &reply.body;
    if reply.is_error {
        return format!("error {}: {}", body["code"], text(&body["message"]));
    }
    match tool {
        "relay_peers" => {
            let peers: Vec<String> = body["peers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|peer| {
                    format!(
                        "{} ({}, pushes {}, pid {})",
                        text(&peer["name"]),
                        text(&peer["kind"]),
                        text(&peer["pushes"]),
                        peer["pid"]
                    )
                })
                .collect();
            let peers = if peers.is_empty() {
                "none".to_owned()
            } else {
                peers.join(", ")
            };
            format!("I am {}; peers: {peers}", text(&body["me"]))
        }
        "relay_ask" => format!(
            "ask_id {}, delivered {}",
            text(&body["ask_id"]),
            text(&body["delivery"])
        ),
        "relay_reply" => "reply sent".to_owned(),
        "relay_broadcast" => {
            let peers: Vec<String> = body["peers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(text)
                .collect();
            format!(
                "broadcast_id {}, asked {} session(s): {}",
                text(&body["broadcast_id"]),
                body["peer_count"],
                peers.join(", ")
            )
        }
        "relay_rename" => format!("now named {}", text(&body["name"])),
        _ => body.to_string(),
    }
}

/// A JSON string without its quotes; any other value as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}
