//! `relay demo`: see the relay work without Claude Code. Two real `relay-channel` processes,
//! `backend-api` and `frontend`, run in a temp directory with their own hub; the demo plays
//! Claude Code for both ([`session`]), runs a short conversation ([`script`]) and shows what each
//! session calls and what lands in its transcript ([`render`], [`narrate`]). Then it stops
//! everything it started and removes the directory ([`world`]): after the script, after a failed
//! step, and on SIGINT or SIGTERM.

mod channel;
mod narrate;
mod render;
mod script;
mod world;

use std::{pin::pin, process::ExitCode};

use clap::Args;

use crate::{
    cli::{CliError, Global, Outcome, exit},
    signals,
};

/// The demo takes no arguments of its own; `--json` chooses the output.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "The demo never uses your hub or data directory: --data-dir and \
                        CLAUDE_PLUGIN_DATA are ignored. Everything it starts is stopped and its temp \
                        directory removed at the end, also when a step fails or on Ctrl-C.",
    after_long_help = "The demo never uses your hub or data directory: --data-dir and \
                        CLAUDE_PLUGIN_DATA are ignored.\n\n\
                        Two relay-channel processes, backend-api and frontend, run in a temp directory \
                        with their own hub. The demo drives both as Claude Code would: peers, ask, \
                        reply, broadcast and rename, and shows each channel push as Claude Code puts \
                        it into the transcript. Everything it starts is stopped and the directory \
                        removed at the end, also when a step fails or on Ctrl-C.\n\n\
                        With --json it prints one JSON object per line, of type started, step, call, \
                        push or done.\n\n\
                        Exit status: 0 when every step worked and everything was cleaned up; 1 when a \
                        step or the clean-up failed (the message names the step); 130 when interrupted \
                        by SIGINT or SIGTERM."
)]
pub struct DemoArgs {}

/// How the script ended, when it did not run to its end.
enum Ending {
    Failed(script::StepFailed),
    Interrupted,
}

pub(crate) async fn run(_args: &DemoArgs, global: &Global) -> Outcome {
    // Caught before anything is started, so that an interruption at any point still reaches the
    // clean-up below; a signal between the two phases is kept for the second.
    let mut stop = signals::Termination::catch();
    let out = narrate::Narrator::new(global.json);
    let mut world = world::World::create().map_err(CliError::failure)?;
    let mut ending = tokio::select! {
        biased;
        () = stop.recv() => Err(Ending::Interrupted),
        played = script::play(&mut world, &out) => played.map_err(Ending::Failed),
    };
    // A signal during the clean-up does not cut it short (it is bounded); it only changes
    // how the demo ends.
    let problems = if matches!(ending, Err(Ending::Interrupted)) {
        world.clean_up().await
    } else {
        let mut clean_up = pin!(world.clean_up());
        tokio::select! {
            biased;
            problems = &mut clean_up => problems,
            () = stop.recv() => {
                if ending.is_ok() {
                    ending = Err(Ending::Interrupted);
                }
                clean_up.await
            }
        }
    };
    for problem in &problems {
        errln!("relay: demo clean-up: {problem}");
    }
    match ending {
        Ok(()) if problems.is_empty() => {
            out.done(world.temp_path());
            Ok(ExitCode::from(exit::SUCCESS))
        }
        Ok(()) => Err(CliError::failure(format!(
            "every demo step worked, but cleaning up did not: {}",
            problems.join("; ")
        ))),
        Err(Ending::Failed(failed)) => Err(CliError::failure(format!(
            "{failed}{}",
            if problems.is_empty() {
                "; everything the demo started is stopped and its temp directory removed"
            } else {
                "; cleaning up had problems too (above)"
            }
        ))),
        Err(Ending::Interrupted) => Err(CliError::interrupted(if problems.is_empty() {
            "demo interrupted; everything it started is stopped and its temp directory removed"
        } else {
            "demo interrupted; cleaning up had problems (above)"
        })),
    }
}
