//! `relay ask`: ask one session a question, wait for its reply and print it on stdout.
//!
//! Progress goes to stderr (on a terminal only); the reply text alone goes to stdout, so that
//! `answer=$(relay ask backend-api "…")` captures just the answer. A failure exits with the
//! status of its error code (see [`crate::cli::exit`]).

use std::{io::Read, process::ExitCode, time::Duration};

use clap::Args;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    channel::DEFAULT_ASK_TIMEOUT_SECS,
    cli::{
        CliError, Global, Outcome, exit, output,
        peer::{self, DEFAULT_NAME, Waited, Waiter, before_sending},
    },
    client::Event,
    errors::{ErrorCode, RelayError},
    protocol::{AskRequest, Asked, DeliveryMode, Op, validate_text},
    signals::Termination,
};

/// How long past the ask's own deadline the command line waits for the hub's `timeout`
/// failure before giving up on its own.
pub(crate) const DEADLINE_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct AskArgs {
    /// The session to ask, by its name in `relay peers` (`name@host` for a session of another
    /// host of the federation).
    pub peer: String,
    /// The question; `-` reads it from stdin.
    pub question: String,
    /// How long to wait for the reply, in seconds (1 to 3600).
    #[arg(long, value_name = "SECS", value_parser = peer::seconds, default_value_t = DEFAULT_ASK_TIMEOUT_SECS)]
    pub timeout: u64,
    /// The name to ask as; the hub adds -2, -3, ... when it is taken.
    #[arg(long = "as", value_name = "NAME", value_parser = peer::name, default_value = DEFAULT_NAME)]
    pub name: String,
}

pub(crate) async fn run(args: &AskArgs, global: &Global) -> Outcome {
    let mut stop = Termination::catch();
    let question = before_sending(&mut stop, question_text(&args.question)).await?;
    validate_text("question", &question)?;
    let data = global.data()?;
    let peer = before_sending(&mut stop, peer::join(&data, &args.name)).await?;
    let request = AskRequest {
        to: args.peer.clone(),
        question,
        thread_id: None,
        timeout_secs: args.timeout,
    };
    let asked: Asked = peer.client.request(Op::Ask(request)).await?;
    // A signal from here on ends the wait, which says what was abandoned.
    let waiter = &mut Waiter::new(peer.events, stop);
    if waiter.is_live() {
        errln!(
            "relay: asked {} as {} (ask {}){}",
            args.peer,
            peer.welcome.name,
            asked.ask_id,
            queued_note(asked.delivery, &args.peer)
        );
    }
    let until = Instant::now() + Duration::from_secs(args.timeout) + DEADLINE_GRACE;
    let progress = || format!("waiting for {} to reply…", args.peer);
    loop {
        match waiter.next(until, progress).await {
            Waited::Event(Event::Reply(reply)) if reply.ask_id == asked.ask_id => {
                if global.json {
                    output::print_json(&json!({
                        "ask_id": reply.ask_id,
                        "thread_id": reply.thread_id,
                        "from": reply.from,
                        "text": reply.text,
                        "delivery": asked.delivery,
                        "elapsed_ms": waiter.elapsed().as_millis() as u64,
                    }));
                } else {
                    outln!(
                        "{}",
                        output::printable(reply.text.trim_end_matches('\n'), true)
                    );
                }
                return Ok(ExitCode::from(exit::SUCCESS));
            }
            Waited::Event(Event::AskFailed(failure)) if failure.ask_id == asked.ask_id => {
                return Err(RelayError::new(failure.code, failure.message)
                    .for_people()
                    .into());
            }
            // Questions and stray events for this command line: nobody here answers them.
            Waited::Event(_) => {}
            Waited::Interrupted => {
                return Err(CliError::interrupted(format!(
                    "interrupted; ask {} to {} is abandoned and a later reply will be refused",
                    asked.ask_id, args.peer
                )));
            }
            Waited::Deadline => {
                return Err(RelayError::new(
                    ErrorCode::HubUnreachable,
                    format!(
                        "the hub neither delivered a reply nor failed ask {} within {} s of its deadline",
                        asked.ask_id,
                        DEADLINE_GRACE.as_secs()
                    ),
                )
                .into());
            }
            Waited::Closed => {
                return Err(RelayError::hub_unreachable(format!(
                    "the connection to the hub closed before ask {} was answered",
                    asked.ask_id
                ))
                .into());
            }
        }
    }
}

/// The question from the command line, or from stdin for `-`. Never empty.
pub(crate) async fn question_text(arg: &str) -> Result<String, CliError> {
    let text = if arg == "-" {
        // On the blocking pool, so that a signal can end the wait for stdin.
        let read = tokio::task::spawn_blocking(|| {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        });
        let cannot_read = |e: &dyn std::fmt::Display| {
            CliError::failure(format!("cannot read the question from stdin: {e}"))
        };
        read.await
            .map_err(|e| cannot_read(&e))?
            .map_err(|e| cannot_read(&e))?
    } else {
        arg.to_owned()
    };
    if text.trim().is_empty() {
        return Err(RelayError::bad_args("the question is empty; nothing was sent").into());
    }
    Ok(text)
}

/// Says so when the question waits in the peer's inbox rather than reaching it now.
pub(crate) fn queued_note(delivery: DeliveryMode, peer: &str) -> String {
    match delivery {
        DeliveryMode::Live => String::new(),
        DeliveryMode::Woken => {
            format!("; {peer} shows no pushes, and is being woken to see the question now")
        }
        DeliveryMode::Queued => format!(
            "; {peer} shows no pushes and has no waiter armed, so it sees the question at its next prompt"
        ),
    }
}
