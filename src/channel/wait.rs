//! `relay-channel wait`: a session's waiter.
//!
//! Claude Code runs it as the plugin's `Stop` and `SessionStart` hook with `asyncRewake`: in the
//! background, so it never blocks Claude Code, and when it exits 2 what it printed on stderr
//! starts a new turn in the idle session (seen with Claude Code 2.1.197 and 2.1.332; stdout is
//! not shown). It tells the hub it waits for its session's messages; when the hub says `wake`, it
//! takes a page of the session's inbox, prints it framed as the prompt hook frames it, and only
//! then acknowledges it and exits 2: a waiter that dies before printing leaves the page to the
//! next reader. It exits 0 without printing when the hub says it is not needed (the session's
//! pushes are on, a newer waiter took its place, or the session's channel left: the session is
//! ending), when its session's `claude` process is gone, after [`LIFETIME`], or at once with
//! `RELAY_WAKE=off` (for a user who wants messages only at the next prompt) and under a
//! `claude -p` that would wait for it in the foreground ([`waits_for_its_hooks`]). It never
//! starts a hub; it waits for one, and comes back to a hub that restarted.

use std::{
    io::{Read, Write},
    os::fd::{AsFd, AsRawFd},
    process::ExitCode,
    time::Duration,
};

use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    channel::{hook::context, pushes::process_args},
    client::{Event, HubClient, Signal},
    errors::RelayError,
    logging::{self, Component, PeerName},
    paths::DataDir,
    protocol::{Acked, InboxAck, InboxContents, InboxTake, Op, WaitRequest, Waiting},
};

/// The longest a waiter waits. A session idle for longer is no longer woken: its messages are
/// `queued` for its next prompt, and its next turn arms a waiter again. The plugin's hook
/// `timeout` is set to it (hooks/hooks.json).
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// How often the waiter checks that its session's `claude` process is still there, and the
/// longest it waits between attempts to reach a hub.
const POLL: Duration = Duration::from_secs(1);

/// The first wait between attempts to reach a hub, doubled up to [`POLL`]. A `SessionStart`
/// waiter usually starts just before its session's channel starts the hub: it arms a few
/// milliseconds after the hub listens rather than up to a second later, when a turn may
/// already run.
const FIRST_RETRY: Duration = Duration::from_millis(25);

/// The exit status that makes Claude Code start a turn with what the hook printed.
const WAKE: u8 = 2;

#[derive(Debug, Deserialize)]
struct HookInput {
    session_id: Option<String>,
}

/// How one wait ended.
enum Ended {
    /// Messages were printed: wake the session.
    Delivered,
    /// Nothing to do any more, and why (for the log).
    Quietly(String),
}

/// Where the waiter writes what Claude Code is to show: the stderr it was started with.
///
/// Claude Code shows the model all of a waking hook's stderr, so nothing else may go there: fd 2
/// is pointed at `/dev/null` for the rest of the run (a library's complaint, such as the log
/// appender's about its directory, goes nowhere) and the waiter writes through a copy of the
/// original.
struct ForClaude(std::fs::File);

impl ForClaude {
    fn take() -> std::io::Result<ForClaude> {
        let original = std::io::stderr().as_fd().try_clone_to_owned()?;
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        // SAFETY: dup2 replaces fd 2 with a copy of a descriptor this process owns; std's stderr
        // writes to fd 2 and keeps nothing that depends on what it refers to.
        if unsafe { libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ForClaude(std::fs::File::from(original)))
    }

    /// Writes `text` and a newline in one write.
    fn say(&self, text: &str) -> std::io::Result<()> {
        (&self.0).write_all(format!("{text}\n").as_bytes())
    }
}

/// Runs the waiter: 2 after printing messages, else 0.
pub fn run() -> ExitCode {
    let for_claude = match ForClaude::take() {
        Ok(for_claude) => for_claude,
        Err(e) => {
            eprintln!("relay wait: cannot set its stderr aside: {e}");
            return ExitCode::SUCCESS;
        }
    };
    let ended = (|| {
        let mut input = String::new();
        std::io::stdin()
            .take(1024 * 1024)
            .read_to_string(&mut input)
            .map_err(|e| format!("cannot read the hook input: {e}"))?;
        let input: HookInput = serde_json::from_str(&input)
            .map_err(|e| format!("the hook input is not the expected JSON: {e}"))?;
        let session_id = input.session_id.ok_or("the hook input has no session_id")?;
        let data = DataDir::from_env().map_err(|e| e.to_string())?;
        // A waiter can start before any channel made the directory.
        data.ensure().map_err(|e| {
            format!(
                "cannot use the data directory {}: {e}",
                data.root().display()
            )
        })?;
        logging::init(Component::Waiter, &data.logs(), PeerName::default());
        if std::env::var("RELAY_WAKE").is_ok_and(|wake| wake == "off") {
            return Ok(Ended::Quietly("RELAY_WAKE=off".into()));
        }
        let session = Session::of_this_hook();
        tracing::info!(claude_pid = session.pid, "waiter_started");
        if let Some(why) = session
            .pid
            .and_then(process_args)
            .as_deref()
            .and_then(waits_for_its_hooks)
        {
            return Ok(Ended::Quietly(why));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let ended = runtime.block_on(wait(&data, &session_id, &session, &for_claude));
        runtime.shutdown_background();
        Ok::<_, String>(ended)
    })();
    match ended {
        Ok(Ended::Delivered) => {
            tracing::info!("waiter_woke_session");
            ExitCode::from(WAKE)
        }
        Ok(Ended::Quietly(why)) => {
            tracing::info!(reason = %why, "waiter_ended");
            ExitCode::SUCCESS
        }
        Err(why) => {
            // Exit 0: Claude Code shows nothing of it, and a relay problem never wakes a session.
            let _ = for_claude.say(&format!("relay wait: {why}"));
            ExitCode::SUCCESS
        }
    }
}

/// The `claude` process of this hook's session: gone, the waiter has nobody to wake.
struct Session {
    pid: Option<u32>,
}

impl Session {
    /// Claude Code 2.1.332 says its pid in `CLAUDE_PID`; older versions run a hook as
    /// `sh -c COMMAND`, whose parent is `claude`.
    fn of_this_hook() -> Session {
        let from_env = std::env::var("CLAUDE_PID")
            .ok()
            .and_then(|pid| pid.trim().parse().ok());
        let pid = from_env.or_else(|| {
            let parent = std::os::unix::process::parent_id();
            if comm(parent).as_deref() == Some("claude") {
                return Some(parent);
            }
            parent_of(parent).filter(|grandparent| comm(*grandparent).as_deref() == Some("claude"))
        });
        Session { pid }
    }

    /// Whether the session's `claude` still runs: a process that exited but was not reaped yet
    /// (a zombie) is gone.
    fn is_alive(&self) -> bool {
        let Some(pid) = self.pid else {
            return true;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            return stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']));
        }
        // No /proc (macOS): kill(2) with signal 0 only asks whether the process exists.
        // SAFETY: no signal is sent.
        let answer = unsafe { libc::kill(pid as libc::pid_t, 0) };
        answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

/// Why a `claude` started with `args` would run this waiter in the foreground, waiting for it to
/// end, rather than in the background; `None` when it runs it in the background.
///
/// Claude Code (seen on 2.1.197 and 2.1.332) runs an `asyncRewake` hook in the background only in
/// an interactive session or under `-p` with streaming input (`--input-format stream-json`, as
/// the Agent SDK runs it). Under `claude -p "prompt"`, or with the prompt piped in as text, it
/// runs it like any other hook and waits for it: a waiter would hold that session at its start
/// (`SessionStart`) until the waiter's lifetime ran out, and such a session, which ends after its
/// one turn, cannot be woken anyway. So the waiter ends at once there, and messages to that
/// session are reported `queued`. (2.1.100 backgrounded the hook in every mode; then the check
/// costs nothing but a wake-up of a session that ends after its turn anyway.)
fn waits_for_its_hooks(args: &[String]) -> Option<String> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(String::as_str)
        .take_while(|arg| *arg != "--")
        .collect();
    let print = args.iter().any(|arg| *arg == "-p" || *arg == "--print");
    let streaming = args.iter().enumerate().any(|(i, arg)| {
        *arg == "--input-format=stream-json"
            || (*arg == "--input-format" && args.get(i + 1) == Some(&"stream-json"))
    });
    (print && !streaming).then(|| {
        "claude -p without --input-format stream-json runs hooks in the foreground: a waiter \
         would hold the session, which cannot be woken"
            .to_owned()
    })
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim().to_owned())
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command name: state, then the parent's pid.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits for the session's messages until they are printed or there is nothing to wait for.
async fn wait(data: &DataDir, session_id: &str, session: &Session, out: &ForClaude) -> Ended {
    let until = Instant::now() + LIFETIME;
    let mut retry = FIRST_RETRY;
    loop {
        if !session.is_alive() {
            return Ended::Quietly("its session ended".into());
        }
        if Instant::now() >= until {
            return Ended::Quietly("it waited its whole lifetime".into());
        }
        // A hub comes with the session's channel; one that restarted comes back.
        let connected = match HubClient::connect_running_as_waiter(data).await {
            Ok(Some(connected)) => connected,
            Ok(None) | Err(_) => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(POLL);
                continue;
            }
        };
        match serve(connected, session_id, session, until, out).await {
            Some(ended) => return ended,
            None => {
                // The hub went away (it restarts, or was stopped): look again from the start.
                retry = FIRST_RETRY;
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// One connection's worth of waiting; `None` when the connection to the hub was lost.
async fn serve(
    (client, mut signals): (HubClient, tokio::sync::mpsc::UnboundedReceiver<Signal>),
    session_id: &str,
    session: &Session,
    until: Instant,
    out: &ForClaude,
) -> Option<Ended> {
    let armed: Result<Waiting, RelayError> = client
        .request(Op::Wait(WaitRequest {
            session_id: session_id.to_owned(),
        }))
        .await;
    if armed.is_err() {
        return None;
    }
    let mut checks = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(Signal::Wake) => match deliver(&client, session_id, out).await {
                    Ok(true) => return Some(Ended::Delivered),
                    // Another reader has the page; wait for the next wake.
                    Ok(false) => {}
                    Err(_) => return None,
                },
                Some(Signal::StandDown(why)) => return Some(Ended::Quietly(why)),
                None => return None,
            },
            _ = checks.tick() => {
                if !session.is_alive() {
                    return Some(Ended::Quietly("its session ended".into()));
                }
            }
            () = tokio::time::sleep_until(until) => {
                return Some(Ended::Quietly("it waited its whole lifetime".into()));
            }
        }
    }
}

/// Takes a page of the session's inbox, prints it for Claude Code, and acknowledges it.
/// Returns whether anything was printed: once it was, the session is to be woken whatever
/// becomes of the acknowledgement (a page not acknowledged is shown again later rather than
/// lost).
async fn deliver(
    client: &HubClient,
    session_id: &str,
    out: &ForClaude,
) -> Result<bool, RelayError> {
    let contents: InboxContents = client
        .request(Op::InboxTake(InboxTake {
            session_id: Some(session_id.to_owned()),
        }))
        .await?;
    let Some(take_id) = contents.take_id else {
        return Ok(false);
    };
    let events: Vec<Event> = contents
        .messages
        .into_iter()
        .filter_map(Event::from_hub)
        .collect();
    let text = context(&events, contents.dropped, contents.more);
    out.say(&text)
        .map_err(|e| RelayError::hub_unreachable(format!("cannot print the messages: {e}")))?;
    let acked: Result<Acked, RelayError> = client
        .request(Op::InboxAck(InboxAck {
            take_id,
            session_id: Some(session_id.to_owned()),
        }))
        .await;
    if let Err(e) = acked {
        let _ = out.say(&format!(
            "relay wait: the messages above were shown, but not acknowledged ({e})"
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(line: &str) -> bool {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        waits_for_its_hooks(&args).is_some()
    }

    #[test]
    fn only_a_print_run_without_streaming_input_waits_for_its_hooks() {
        for line in [
            "claude -p hello",
            "claude --print hello",
            "/usr/bin/claude --plugin-dir /x -p --output-format stream-json",
            "claude -p --input-format text",
            "claude -p --input-format=text hello",
        ] {
            assert!(waits(line), "{line}");
        }
        for line in [
            "claude",
            "claude --resume",
            "claude --plugin-dir /x -p --input-format stream-json --output-format stream-json",
            "claude --input-format=stream-json --print",
            "claude -- -p",
            "claude --dangerously-load-development-channels plugin:relay@claude-relay",
        ] {
            assert!(!waits(line), "{line}");
        }
    }
}
