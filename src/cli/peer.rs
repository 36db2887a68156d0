//! The command line as a peer: joins the running hub as kind `cli`, so that sessions see in
//! `relay_peers` that a person or a script is asking. It never starts a hub: with no hub there
//! is no session to talk to. While it waits for answers it shows the elapsed time on a terminal
//! and stops on SIGINT or SIGTERM.

use std::{io::IsTerminal, time::Duration};

use tokio::{sync::mpsc, time::Instant};

use crate::{
    cli::CliError,
    client::{Event, HubClient},
    errors::{ErrorCode, RelayError},
    paths::DataDir,
    protocol::{
        Hello, MAX_TIMEOUT_SECS, MIN_TIMEOUT_SECS, Op, PROTOCOL_VERSION, PeerKind, Pushes, VERSION,
        Welcome, validate_name, validate_timeout,
    },
    signals::Termination,
};

/// The name the command line asks for when `--as` does not give one.
pub(crate) const DEFAULT_NAME: &str = "cli";

/// How many hub events may wait unread.
const EVENT_QUEUE: usize = 256;

/// A registered command-line peer and the events the hub sends it.
pub(crate) struct CliPeer {
    pub client: HubClient,
    pub welcome: Welcome,
    pub events: mpsc::Receiver<Event>,
}

/// What waiting for the next event ended with.
#[derive(Debug)]
pub(crate) enum Waited {
    Event(Event),
    /// SIGINT or SIGTERM arrived.
    Interrupted,
    /// The deadline passed first.
    Deadline,
    /// The connection closed (after its pending asks were failed as events).
    Closed,
}

/// Waits for the hub's events, showing progress on a terminal.
pub(crate) struct Waiter {
    events: mpsc::Receiver<Event>,
    stop: Termination,
    started: Instant,
    /// Whether stderr is a terminal, where a progress line is drawn and redrawn.
    live: bool,
}

impl Waiter {
    /// Waits on `events`; `stop` was caught when the command started, so that a signal from
    /// then on ends the wait.
    pub(crate) fn new(events: mpsc::Receiver<Event>, stop: Termination) -> Self {
        Waiter {
            events,
            stop,
            started: Instant::now(),
            live: std::io::stderr().is_terminal(),
        }
    }

    /// Time since the wait began, right after the question was sent.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The next event, at most until `until`. On a terminal, `progress` (followed by the elapsed
    /// time) is redrawn every second and erased before returning.
    pub(crate) async fn next(&mut self, until: Instant, progress: impl Fn() -> String) -> Waited {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let waited = loop {
            tokio::select! {
                event = self.events.recv() => break event.map_or(Waited::Closed, Waited::Event),
                () = self.stop.recv() => break Waited::Interrupted,
                () = tokio::time::sleep_until(until) => break Waited::Deadline,
                _ = ticks.tick(), if self.live => {
                    let secs = self.started.elapsed().as_secs();
                    err!("\r\x1b[2K{} {secs}s (Ctrl-C to stop)", progress());
                }
            }
        };
        if self.live {
            err!("\r\x1b[2K");
        }
        waited
    }

    /// Whether progress lines go to a terminal (so a person, not a script, is reading stderr).
    pub(crate) fn is_live(&self) -> bool {
        self.live
    }
}

/// Runs `step`, one of those before anything is sent, unless SIGINT or SIGTERM comes first.
pub(crate) async fn before_sending<T>(
    stop: &mut Termination,
    step: impl Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::select! {
        biased;
        () = stop.recv() => Err(CliError::interrupted("interrupted; nothing was sent")),
        done = step => done,
    }
}

/// Joins the hub of `data` as `name`. Replies reach the command line over its connection, so it
/// says its pushes are on.
pub(crate) async fn join(data: &DataDir, name: &str) -> Result<CliPeer, CliError> {
    let (sender, events) = mpsc::channel(EVENT_QUEUE);
    let client = HubClient::connect_running(data, sender)
        .await?
        .ok_or_else(|| no_hub(data))?;
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        version: VERSION.to_owned(),
        name: name.to_owned(),
        kind: PeerKind::Cli,
        cwd: std::env::current_dir()
            .map(|cwd| cwd.to_string_lossy().into_owned())
            .unwrap_or_default(),
        git_branch: String::new(),
        pushes: Pushes::On,
        pushes_reason: "the command line reads its replies from its own connection".to_owned(),
        session_id: None,
    };
    let welcome = client.request(Op::Hello(hello)).await?;
    Ok(CliPeer {
        client,
        welcome,
        events,
    })
}

/// Parses `--as NAME`: a session name, checked before anything is sent.
pub(crate) fn name(raw: &str) -> Result<String, String> {
    validate_name(raw)
        .map(|()| raw.to_owned())
        .map_err(|e| e.message)
}

/// Parses `--timeout SECS` and `--wait SECS`: the bounds of an ask's timeout.
pub(crate) fn seconds(raw: &str) -> Result<u64, String> {
    let secs = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a whole number of seconds"))?;
    validate_timeout(secs).map(|()| secs).map_err(|_| {
        format!("must be {MIN_TIMEOUT_SECS} to {MAX_TIMEOUT_SECS} seconds, not {secs}")
    })
}

/// The error for a command that needs a hub when none runs.
pub(crate) fn no_hub(data: &DataDir) -> CliError {
    RelayError::new(
        ErrorCode::HubUnreachable,
        format!(
            "no hub is running for {} (no answer on {}); the first Claude Code session that uses the relay starts it",
            data.root().display(),
            data.socket().display()
        ),
    )
    .into()
}
