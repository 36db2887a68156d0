//! The channel's link to the hub, kept up for the life of the session.
//!
//! A supervisor task connects (starting the hub when none runs), registers under the session's
//! name, and forwards the hub's events. When the connection drops it reconnects with bounded
//! backoff and registers again under the same name; the client has already failed this session's
//! pending asks with `hub_unreachable`. Tools wait a bounded time for a live connection.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use tokio::sync::{mpsc, watch};

use crate::{
    channel::{identity, inbox::LocalInbox, pushes::PushState},
    client::{Event, HubClient, lock},
    errors::RelayError,
    logging::PeerName,
    paths::DataDir,
    protocol::{Hello, Op, PROTOCOL_VERSION, PeerKind, RenameRequest, Renamed, VERSION},
};

/// How long a tool waits for a connection to the hub before it answers `hub_unreachable`.
pub(crate) const TOOL_WAIT: Duration = Duration::from_secs(3);

/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(3);

/// Everything the link needs to (re)register.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub data: DataDir,
    pub hub_exe: PathBuf,
    pub name: String,
    pub cwd: String,
    pub git_branch: String,
    /// `CLAUDE_CODE_SESSION_ID`: the session's hooks find its inbox by it.
    pub session_id: Option<String>,
    /// Claude Code writes its session file a few milliseconds after it starts its MCP servers.
    /// When set, the first registration waits briefly for this file, so that it already carries
    /// the name the user gave the session instead of a fallback that is renamed a second later.
    pub await_session_file: Option<PathBuf>,
}

/// How long the first registration waits for Claude Code's session file.
const SESSION_FILE_GRACE: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub(crate) struct Link {
    inner: Arc<Inner>,
}

struct Inner {
    config: LinkConfig,
    /// `Some` while connected and registered.
    current: watch::Sender<Option<Arc<HubClient>>>,
    /// The registered name (before the first registration: the wanted one).
    name: Mutex<String>,
    /// Why the last connection attempt failed, for tools called while disconnected.
    last_error: Mutex<Option<RelayError>>,
    /// When this session was last renamed, so that an older name in the session file never
    /// undoes a newer rename.
    last_rename: Mutex<Option<SystemTime>>,
    label: PeerName,
}

impl Link {
    /// A link that does not connect until [`Link::start`]: tools called before then wait for it
    /// as for a reconnect.
    pub(crate) fn new(config: LinkConfig, label: PeerName) -> Link {
        label.set(&config.name);
        let inner = Arc::new(Inner {
            name: Mutex::new(config.name.clone()),
            config,
            current: watch::Sender::new(None),
            last_error: Mutex::new(None),
            last_rename: Mutex::new(None),
            label,
        });
        Link { inner }
    }

    /// Starts the supervisor, registering with `pushes` (known once the MCP handshake is done:
    /// the negotiated revision can turn them off). Events from the hub go to `events`; `local`
    /// learns at each registration which asks the hub holds settled.
    pub(crate) fn start(&self, pushes: PushState, events: mpsc::Sender<Event>, local: LocalInbox) {
        tokio::spawn(supervise(self.inner.clone(), pushes, events, local));
    }

    /// This session's name.
    pub(crate) fn name(&self) -> String {
        lock(&self.inner.name).clone()
    }

    /// The live connection, waiting up to [`TOOL_WAIT`] for one.
    pub(crate) async fn client(&self) -> Result<Arc<HubClient>, RelayError> {
        let mut current = self.inner.current.subscribe();
        let connected = tokio::time::timeout(TOOL_WAIT, current.wait_for(Option::is_some)).await;
        if let Ok(Ok(client)) = connected {
            return Ok(client.clone().expect("waited for Some"));
        }
        let why = lock(&self.inner.last_error).clone();
        Err(why.unwrap_or_else(|| {
            RelayError::hub_unreachable(format!(
                "no connection to the hub at {} within {} s; it is retried in the background, try again shortly",
                self.inner.config.data.socket().display(),
                TOOL_WAIT.as_secs()
            ))
        }))
    }

    /// When this session was last renamed, if ever.
    pub(crate) fn last_rename(&self) -> Option<SystemTime> {
        *lock(&self.inner.last_rename)
    }

    /// Renames this session on the hub.
    pub(crate) async fn rename(&self, new_name: &str) -> Result<Renamed, RelayError> {
        let client = self.client().await?;
        let renamed: Renamed = client
            .request(Op::Rename(RenameRequest {
                new_name: new_name.to_owned(),
            }))
            .await?;
        *lock(&self.inner.name) = renamed.name.clone();
        *lock(&self.inner.last_rename) = Some(SystemTime::now());
        self.inner.label.set(&renamed.name);
        tracing::info!("renamed");
        Ok(renamed)
    }
}

async fn supervise(
    inner: Arc<Inner>,
    pushes: PushState,
    events: mpsc::Sender<Event>,
    local: LocalInbox,
) {
    if let Some(file) = &inner.config.await_session_file
        && let Some(name) = identity::await_chosen_name(file, SESSION_FILE_GRACE).await
    {
        inner.label.set(&name);
        *lock(&inner.name) = name;
    }
    let mut backoff = BACKOFF_MIN;
    loop {
        let config = &inner.config;
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            version: VERSION.to_owned(),
            name: lock(&inner.name).clone(),
            kind: PeerKind::Channel,
            cwd: config.cwd.clone(),
            git_branch: config.git_branch.clone(),
            pushes: pushes.pushes,
            pushes_reason: pushes.reason.clone(),
            session_id: config.session_id.clone(),
        };
        let (hub_events_tx, mut hub_events) = mpsc::channel(64);
        match HubClient::connect(&config.data, &config.hub_exe, hello, hub_events_tx).await {
            Ok((client, welcome)) => {
                backoff = BACKOFF_MIN;
                *lock(&inner.name) = welcome.name.clone();
                inner.label.set(&welcome.name);
                *lock(&inner.last_error) = None;
                tracing::info!(hub_pid = welcome.hub_pid, hub_version = %welcome.hub_version, "registered");
                // Before any tool can take the local inbox through this connection.
                local.settled_at_hub(welcome.settled);
                inner.current.send_replace(Some(Arc::new(client)));
                while let Some(event) = hub_events.recv().await {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
                inner.current.send_replace(None);
                tracing::warn!("hub_connection_lost");
                // A hub that accepts and drops at once must not make this a busy loop.
                tokio::time::sleep(BACKOFF_MIN).await;
            }
            Err(e) => {
                tracing::warn!(code = %e.code, detail = %e.message, retry_ms = backoff.as_millis() as u64, "hub_connect_failed");
                *lock(&inner.last_error) = Some(e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
