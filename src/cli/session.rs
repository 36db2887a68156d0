//! The command line as a peer: joins the running hub as kind `cli`, so that sessions see in
//! `relay_peers` that a person or a script is asking. It never starts a hub: with no hub there
//! is no session to talk to.

use tokio::sync::mpsc;

use crate::{
    cli::CliError,
    client::{Event, HubClient},
    errors::{ErrorCode, RelayError},
    paths::DataDir,
    protocol::{Hello, Op, PROTOCOL_VERSION, PeerKind, Pushes, VERSION, Welcome},
};

/// The name the command line asks for when `--as` does not give one.
pub const DEFAULT_NAME: &str = "cli";

/// How many hub events may wait unread.
const EVENT_QUEUE: usize = 256;

/// A registered command-line peer and the events the hub sends it.
pub struct CliSession {
    pub client: HubClient,
    pub welcome: Welcome,
    pub events: mpsc::Receiver<Event>,
}

/// Joins the hub of `data` as `name`. Replies reach the command line over its connection, so it
/// says its pushes are on.
pub async fn join(data: &DataDir, name: &str) -> Result<CliSession, CliError> {
    let (sender, events) = mpsc::channel(EVENT_QUEUE);
    let client = HubClient::connect_running(data, sender)
        .await
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
        session_id: None,
    };
    let welcome = client.request(Op::Hello(hello)).await?;
    Ok(CliSession {
        client,
        welcome,
        events,
    })
}

/// The error for a command that needs a hub when none runs.
pub fn no_hub(data: &DataDir) -> CliError {
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
