//! The demo's script: two sessions, `backend-api` and `frontend`, find each other, ask, reply,
//! broadcast and rename, through real channels and a real hub. Every wait is bounded by
//! [`STEP_LIMIT`], and each step checks that what arrived is what the relay promises, so a
//! broken relay ends the demo with the step that showed it.

use std::{fmt, time::Duration};

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::{
    cli::demo::{
        channel::ToolReply,
        narrate::{Narrator, Started},
        render::Push,
        world::World,
    },
    control,
};

/// The longest any one wait of the demo may take.
pub(super) const STEP_LIMIT: Duration = Duration::from_secs(10);

const BACKEND: &str = "backend-api";
const FRONTEND: &str = "frontend";
const RENAMED: &str = "frontend-web";

const QUESTION: &str =
    "Which endpoint returns a user's avatar, and what does it answer when there is none?";
const ANSWER: &str =
    "GET /api/users/{id}/avatar: 200 with image/png, or 404 when the user has none.";
const BROADCAST: &str =
    "I am renaming the session cookie from `sid` to `session`. Does anything of yours read it?";
const BROADCAST_ANSWER: &str =
    "Yes: src/auth/session.ts reads `sid`. I will switch once your change is merged.";

/// Which of the two sessions; an index into the world's sessions, in start order.
#[derive(Debug, Clone, Copy)]
enum Who {
    Backend = 0,
    Frontend = 1,
}

/// A step that did not go as the relay promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StepFailed {
    pub step: &'static str,
    pub message: String,
}

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "demo step {:?} failed: {}", self.step, self.message)
    }
}

/// Plays the whole script in `world`, telling it through `out`.
pub(super) async fn play(world: &mut World, out: &Narrator) -> Result<(), StepFailed> {
    let mut play = Play { world, out };
    play.start().await?;

    out.step(1, "peers", "frontend looks for the other sessions");
    play.call("peers", Who::Frontend, "relay_peers", vec![])
        .await?;

    out.step(2, "ask", "frontend asks backend-api a question");
    play.call(
        "ask",
        Who::Frontend,
        "relay_ask",
        vec![("to", json!(BACKEND)), ("question", json!(QUESTION))],
    )
    .await?;
    let ask = play.push("ask", Who::Backend, "ask", FRONTEND).await?;

    out.step(
        3,
        "reply",
        "backend-api replies; the answer lands in frontend's transcript",
    );
    play.call(
        "reply",
        Who::Backend,
        "relay_reply",
        vec![
            ("ask_id", json!(ask.meta_str("ask_id"))),
            ("text", json!(ANSWER)),
        ],
    )
    .await?;
    play.push("reply", Who::Frontend, "reply", BACKEND).await?;

    out.step(
        4,
        "broadcast",
        "backend-api asks every session; frontend answers",
    );
    play.call(
        "broadcast",
        Who::Backend,
        "relay_broadcast",
        vec![("question", json!(BROADCAST))],
    )
    .await?;
    let question = play
        .push("broadcast", Who::Frontend, "ask", BACKEND)
        .await?;
    if question.meta_str("broadcast_id").is_empty() {
        return Err(StepFailed {
            step: "broadcast",
            message: format!(
                "the broadcast reached frontend without a broadcast_id: {}",
                question.rendered
            ),
        });
    }
    play.call(
        "broadcast",
        Who::Frontend,
        "relay_reply",
        vec![
            ("ask_id", json!(question.meta_str("ask_id"))),
            ("text", json!(BROADCAST_ANSWER)),
        ],
    )
    .await?;
    play.push("broadcast", Who::Backend, "reply", FRONTEND)
        .await?;

    out.step(
        5,
        "rename",
        "frontend takes a clearer name; backend-api sees it at once",
    );
    play.call(
        "rename",
        Who::Frontend,
        "relay_rename",
        vec![("new_name", json!(RENAMED))],
    )
    .await?;
    play.world.sessions[Who::Frontend as usize].name = RENAMED.to_owned();
    let peers = play
        .call("rename", Who::Backend, "relay_peers", vec![])
        .await?;
    let names: Vec<&str> = peers["peers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|peer| peer["name"].as_str())
        .collect();
    if names != [RENAMED] {
        return Err(StepFailed {
            step: "rename",
            message: format!("backend-api's peers are {names:?}, not [{RENAMED:?}]"),
        });
    }
    Ok(())
}

struct Play<'a> {
    world: &'a mut World,
    out: &'a Narrator,
}

impl Play<'_> {
    /// Starts both sessions, each registered with the hub before the next starts (the first
    /// one starts the hub), and says what runs.
    async fn start(&mut self) -> Result<(), StepFailed> {
        let failed = |message: String| StepFailed {
            step: "start",
            message,
        };
        for name in [BACKEND, FRONTEND] {
            let channel = self.world.spawn_channel(name).map_err(failed)?;
            let initialized = channel.initialize(STEP_LIMIT).await.map_err(failed)?;
            if !initialized["capabilities"]["experimental"]["claude/channel"].is_object() {
                return Err(failed(format!(
                    "{name} does not declare the claude/channel capability, so Claude Code would \
                     never show its pushes: {initialized}"
                )));
            }
            self.registered(name).await.map_err(failed)?;
        }
        let status = control::status(&self.world.data)
            .await
            .map_err(|e| failed(format!("cannot ask the hub its status: {}", e.message)))?
            .ok_or_else(|| failed("the sessions are registered, but no hub answers".to_owned()))?;
        self.world.hub_pid = Some(status.hub_pid);
        let mut sessions = Vec::new();
        for session in &self.world.sessions {
            let pid = session
                .pid()
                .ok_or_else(|| failed(format!("{} has already exited", session.name)))?;
            sessions.push((session.name.clone(), pid));
        }
        self.out.started(&Started {
            temp_dir: self.world.temp_path(),
            data_dir: self.world.data.root(),
            hub_pid: status.hub_pid,
            sessions: &sessions,
        });
        Ok(())
    }

    /// Waits until the last session started is registered with the hub: its `relay_peers`
    /// answers once it is, and says `hub_unreachable` while the hub is still starting.
    async fn registered(&mut self, name: &str) -> Result<(), String> {
        let deadline = Instant::now() + STEP_LIMIT;
        let session = self
            .world
            .sessions
            .last_mut()
            .expect("a session was just started");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = session.call_tool("relay_peers", Map::new(), left).await?;
            if !reply.is_error {
                return Ok(());
            }
            if reply.body["code"] != "hub_unreachable" || Instant::now() >= deadline {
                return Err(format!(
                    "{name} could not join the hub: {} {}",
                    reply.body["code"], reply.body["message"]
                ));
            }
        }
    }

    /// `who` calls `tool`; the call is told, and must succeed. Returns the tool's JSON.
    async fn call(
        &mut self,
        step: &'static str,
        who: Who,
        tool: &str,
        arguments: Vec<(&str, Value)>,
    ) -> Result<Value, StepFailed> {
        let session = &mut self.world.sessions[who as usize];
        let object: Map<String, Value> = arguments
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        let reply: ToolReply = session
            .call_tool(tool, object, STEP_LIMIT)
            .await
            .map_err(|message| StepFailed { step, message })?;
        self.out.call(step, &session.name, tool, &arguments, &reply);
        if reply.is_error {
            return Err(StepFailed {
                step,
                message: format!("{}'s {tool} failed: {}", session.name, reply.body),
            });
        }
        Ok(reply.body)
    }

    /// Waits for the next push at `who`, tells it, and checks that it is of `kind` from `from`.
    async fn push(
        &mut self,
        step: &'static str,
        who: Who,
        kind: &str,
        from: &str,
    ) -> Result<Push, StepFailed> {
        let session = &mut self.world.sessions[who as usize];
        let failed = |message: String| StepFailed { step, message };
        let params = session.next_push(STEP_LIMIT).await.map_err(failed)?;
        let push =
            Push::from_params(&params).map_err(|e| failed(format!("{}: {e}", session.name)))?;
        self.out.push(step, &session.name, &push);
        if push.meta_str("kind") != kind || push.meta_str("from") != from {
            return Err(failed(format!(
                "{} expected a push of kind {kind:?} from {from:?}, and got {}",
                session.name, push.rendered
            )));
        }
        Ok(push)
    }
}
