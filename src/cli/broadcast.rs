//! `relay broadcast`: ask every Claude Code session the same question, print each reply as it
//! arrives, then a summary of who did not answer and why.
//!
//! Exits 0 when every session asked answered, [`exit::NOT_ALL_ANSWERED`] when some did not (or
//! could not be asked), and `peer_not_found`'s status when there was nobody to ask.

use std::{collections::BTreeMap, process::ExitCode, time::Duration};

use clap::Args;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    cli::{
        Global, Outcome,
        ask::{DEADLINE_GRACE, question_text},
        exit, output,
        peer::{self, DEFAULT_NAME, Waited, Waiter, before_sending},
    },
    client::Event,
    errors::{ErrorCode, RelayError},
    protocol::{BroadcastRequest, Broadcasted, DeliveryMode, Op, validate_text},
    signals::Termination,
};

/// How long a broadcast waits for replies when `--wait` does not say.
pub(crate) const DEFAULT_WAIT_SECS: u64 = 60;

#[derive(Debug, Clone, Args)]
pub struct BroadcastArgs {
    /// The question; `-` reads it from stdin.
    pub question: String,
    /// How long to wait for replies, in seconds (1 to 3600).
    #[arg(long, value_name = "SECS", value_parser = peer::seconds, default_value_t = DEFAULT_WAIT_SECS)]
    pub wait: u64,
    /// The name to ask as; the hub adds -2, -3, ... when it is taken.
    #[arg(long = "as", value_name = "NAME", value_parser = peer::name, default_value = DEFAULT_NAME)]
    pub name: String,
}

/// Why one session asked gave no answer.
struct NoAnswer {
    code: &'static str,
    message: String,
}

pub(crate) async fn run(args: &BroadcastArgs, global: &Global) -> Outcome {
    let mut stop = Termination::catch();
    let question = before_sending(&mut stop, question_text(&args.question)).await?;
    validate_text("question", &question)?;
    let data = global.data()?;
    let peer = before_sending(&mut stop, peer::join(&data, &args.name)).await?;
    let request = BroadcastRequest {
        question,
        exclude_self: true,
        timeout_secs: args.wait,
    };
    let sent: Broadcasted = peer.client.request(Op::Broadcast(request)).await?;
    if sent.asks.is_empty() && sent.skipped.is_empty() {
        return Err(RelayError::new(
            ErrorCode::PeerNotFound,
            "no Claude Code session is connected, so nobody was asked",
        )
        .into());
    }
    // A signal from here on ends the wait, which says what was abandoned.
    let waiter = &mut Waiter::new(peer.events, stop);
    if waiter.is_live() {
        let names: Vec<String> = sent
            .asks
            .iter()
            .map(|ask| match ask.delivery {
                DeliveryMode::Live => ask.to.clone(),
                DeliveryMode::Woken => format!("{} (woken)", ask.to),
                DeliveryMode::Queued => format!("{} (queued)", ask.to),
            })
            .collect();
        errln!("relay: asked {} ({})", names.len(), names.join(", "));
    }
    // Ask id → the name of the session asked, until it answers or fails.
    let mut waiting: BTreeMap<String, String> = sent
        .asks
        .iter()
        .map(|ask| (ask.ask_id.clone(), ask.to.clone()))
        .collect();
    let mut answered = Vec::new();
    let mut unanswered: Vec<(String, NoAnswer)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(args.wait) + DEADLINE_GRACE;
    let total = sent.asks.len();
    let mut interrupted = false;
    while !waiting.is_empty() {
        let left = waiting.len();
        let progress = || format!("waiting for {left} of {total} to reply…");
        match waiter.next(until, progress).await {
            Waited::Event(Event::Reply(reply)) => {
                let Some(name) = waiting.remove(&reply.ask_id) else {
                    continue;
                };
                let elapsed = waiter.elapsed();
                if global.json {
                    output::print_json(&json!({
                        "type": "reply",
                        "from": name,
                        "ask_id": reply.ask_id,
                        "text": reply.text,
                        "elapsed_ms": elapsed.as_millis() as u64,
                    }));
                } else {
                    outln!("── {name} (after {})", output::human_duration(elapsed));
                    outln!(
                        "{}\n",
                        output::printable(reply.text.trim_end_matches('\n'), true)
                    );
                }
                answered.push(name);
            }
            Waited::Event(Event::AskFailed(failure)) => {
                let Some(name) = waiting.remove(&failure.ask_id) else {
                    continue;
                };
                let code = failure.code.as_str();
                let message = RelayError::new(failure.code, failure.message)
                    .for_people()
                    .message;
                if global.json {
                    output::print_json(&json!({
                        "type": "failed",
                        "to": name,
                        "ask_id": failure.ask_id,
                        "code": code,
                        "message": message,
                    }));
                }
                unanswered.push((name, NoAnswer { code, message }));
            }
            // A command line is never asked and never replies.
            Waited::Event(Event::Ask(_) | Event::Undelivered(_)) => {}
            Waited::Interrupted => {
                interrupted = true;
                break;
            }
            Waited::Deadline | Waited::Closed => break,
        }
    }
    let (code, message) = if interrupted {
        (
            "interrupted",
            "the broadcast was interrupted before this session replied",
        )
    } else {
        (
            ErrorCode::HubUnreachable.as_str(),
            "the hub neither delivered its reply nor failed its ask",
        )
    };
    for (_, name) in std::mem::take(&mut waiting) {
        let message = message.to_owned();
        unanswered.push((name, NoAnswer { code, message }));
    }
    print_summary(&sent, &answered, &unanswered, global.json);
    let status = if interrupted {
        exit::INTERRUPTED
    } else if unanswered.is_empty() && sent.skipped.is_empty() {
        exit::SUCCESS
    } else {
        exit::NOT_ALL_ANSWERED
    };
    Ok(ExitCode::from(status))
}

fn print_summary(
    sent: &Broadcasted,
    answered: &[String],
    unanswered: &[(String, NoAnswer)],
    json: bool,
) {
    // Sessions whose pushes are off see the question only at their next prompt, which explains
    // many a missing answer.
    let queued: Vec<&str> = sent
        .asks
        .iter()
        .filter(|ask| ask.delivery == DeliveryMode::Queued)
        .map(|ask| ask.to.as_str())
        .collect();
    if json {
        let unanswered: Vec<_> = unanswered
            .iter()
            .map(|(name, why)| json!({"name": name, "code": why.code, "message": why.message}))
            .collect();
        output::print_json(&json!({
            "type": "summary",
            "broadcast_id": sent.broadcast_id,
            "asked": sent.asks.len(),
            "answered": answered,
            "unanswered": unanswered,
            "queued": queued,
            "skipped": sent.skipped,
        }));
        return;
    }
    outln!("{} of {} answered.", answered.len(), sent.asks.len());
    for (name, why) in unanswered {
        let note = if queued.contains(&name.as_str()) {
            ", queued: its pushes are off, so it sees questions only at its next prompt"
        } else {
            ""
        };
        outln!(
            "no answer from {name} ({}{note}): {}",
            why.code,
            why.message
        );
    }
    if !sent.skipped.is_empty() {
        outln!(
            "not asked, their inbox is full: {}",
            sent.skipped.join(", ")
        );
    }
}
