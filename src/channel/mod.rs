//! The channel: the MCP stdio server Claude Code starts once per session.
//!
//! It serves the relay tools ([`tools`]), keeps a link to the hub ([`link`]), turns the hub's
//! events into `notifications/claude/channel` pushes ([`notify`]), and follows the session's
//! name ([`identity`], [`follow`]). Nothing but JSON-RPC is ever written to stdout.

pub(crate) mod follow;
pub(crate) mod hook;
pub(crate) mod identity;
pub(crate) mod inbox;
pub(crate) mod link;
pub(crate) mod notify;
pub(crate) mod pushes;
pub(crate) mod tools;
pub(crate) mod wait;

use std::{io, path::PathBuf, process::ExitCode};

use rmcp::{Peer, RoleServer, ServiceExt};
use tokio::sync::mpsc;

use crate::{
    channel::{
        inbox::LocalInbox,
        link::{Link, LinkConfig},
        pushes::PushState,
        tools::RelayServer,
    },
    client::Event,
    logging::{self, Component, PeerName},
    paths::DataDir,
    protocol::{Pushes, validate_timeout},
    signals::Termination,
};

/// The ask timeout when neither the tool call nor `RELAY_ASK_TIMEOUT_SECS` gives one.
pub const DEFAULT_ASK_TIMEOUT_SECS: u64 = 600;

/// Everything the channel reads from its environment.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub link: LinkConfig,
    pub default_timeout_secs: u64,
    /// Claude Code's file for the parent session, watched to follow `/rename`.
    pub session_file: Option<PathBuf>,
    /// Whether Claude Code shows pushes, as far as the environment tells before the handshake.
    pub pushes: PushState,
    /// Problems with the environment, logged once logging is up.
    pub warnings: Vec<String>,
}

impl ChannelConfig {
    pub fn from_env() -> io::Result<ChannelConfig> {
        let data = DataDir::from_env()?;
        let cwd = std::env::current_dir()?;
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        let session_file =
            home.map(|home| identity::session_file(&home, std::os::unix::process::parent_id()));
        let env_name = std::env::var("RELAY_SESSION_NAME").ok();
        let name = identity::initial_name(env_name.as_deref(), session_file.as_deref(), &cwd);
        let mut warnings = Vec::new();
        if let Some(raw) = env_name.as_deref().filter(|raw| raw.trim() != name) {
            warnings.push(format!(
                "RELAY_SESSION_NAME={raw:?} is not a valid session name; using {name:?}"
            ));
        }
        let default_timeout_secs = match std::env::var("RELAY_ASK_TIMEOUT_SECS") {
            Err(_) => DEFAULT_ASK_TIMEOUT_SECS,
            Ok(raw) => match raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| validate_timeout(*secs).is_ok())
            {
                Some(secs) => secs,
                None => {
                    warnings.push(format!(
                        "RELAY_ASK_TIMEOUT_SECS={raw:?} is not a whole number from 1 to 3600; using \
                         {DEFAULT_ASK_TIMEOUT_SECS}"
                    ));
                    DEFAULT_ASK_TIMEOUT_SECS
                }
            },
        };
        // Under Claude Code (which sets CLAUDECODE=1) the session file may not be written yet.
        let under_claude_code = std::env::var("CLAUDECODE").is_ok_and(|v| v == "1");
        let await_session_file = session_file
            .clone()
            .filter(|file| env_name.is_none() && under_claude_code && !file.exists());
        let link = LinkConfig {
            await_session_file,
            data,
            hub_exe: std::env::current_exe()?.with_file_name("relay-hub"),
            name,
            git_branch: identity::git_branch(&cwd),
            session_id: std::env::var("CLAUDE_CODE_SESSION_ID")
                .ok()
                .filter(|id| !id.is_empty()),
            cwd: cwd.to_string_lossy().into_owned(),
        };
        Ok(ChannelConfig {
            link,
            default_timeout_secs,
            session_file,
            pushes: PushState::from_env(),
            warnings,
        })
    }
}

/// Runs the channel until stdin closes or SIGINT/SIGTERM arrives.
pub async fn run(config: ChannelConfig) -> ExitCode {
    // Caught once for the whole run, so that a signal between its two phases is not lost.
    let mut stop = Termination::catch();
    if let Err(e) = config.link.data.ensure() {
        eprintln!(
            "relay-channel: cannot use the data directory {}: {e}",
            config.link.data.root().display()
        );
        return ExitCode::FAILURE;
    }
    let label = PeerName::default();
    logging::init(Component::Channel, &config.link.data.logs(), label.clone());
    for warning in &config.warnings {
        tracing::warn!(detail = %warning, "bad_environment");
    }
    tracing::info!(
        cwd = %config.link.cwd,
        git_branch = %config.link.git_branch,
        "channel_started"
    );

    let link = Link::new(config.link.clone(), label);
    let local = LocalInbox::default();
    let server = RelayServer::new(link.clone(), config.default_timeout_secs, local.clone());
    // Claude Code gives its servers pipes: serving them on the reactor, not tokio's blocking
    // stdin/stdout threads, saves a thread hand-off per message and the threads themselves.
    let service = tokio::select! {
        served = server.serve(rmcp::transport::stdio_pipes()) => match served {
            Ok(service) => service,
            Err(e) => {
                tracing::info!(error = %e, "mcp_initialize_failed");
                return ExitCode::SUCCESS;
            }
        },
        () = stop.recv() => return ExitCode::SUCCESS,
    };
    let negotiated = service
        .peer()
        .peer_info()
        .map(|client| client.protocol_version.clone());
    let pushes = config.pushes.after_handshake(negotiated.as_ref());
    tracing::info!(
        pushes = pushes.pushes.as_str(),
        reason = %pushes.reason,
        mcp_revision = negotiated.as_ref().map(|revision| revision.as_str()),
        "pushes_decided"
    );
    let (events_tx, events) = mpsc::channel(256);
    link.start(pushes.clone(), events_tx, local.clone());
    if let Some(session_file) = config.session_file.clone() {
        tokio::spawn(follow::follow_renames(link.clone(), session_file));
    }
    tokio::spawn(push_events(
        events,
        service.peer().clone(),
        pushes.pushes,
        local,
    ));
    tokio::select! {
        _ = service.waiting() => tracing::info!("channel_stdin_closed"),
        () = stop.recv() => tracing::info!("channel_signalled"),
    }
    ExitCode::SUCCESS
}

/// Pushes every hub event into the session's transcript, in order.
/// With pushes off (or unknown), the hub keeps messages in its inbox and sends nothing; what
/// still arrives here was made by this channel, and waits in `local` for `relay_inbox`.
async fn push_events(
    mut events: mpsc::Receiver<Event>,
    peer: Peer<RoleServer>,
    pushes: Pushes,
    local: LocalInbox,
) {
    while let Some(event) = events.recv().await {
        let (ask_id, kind) = match &event {
            Event::Ask(ask) => (ask.ask_id.clone(), "ask"),
            Event::Reply(reply) => (reply.ask_id.clone(), "reply"),
            Event::AskFailed(failure) => (failure.ask_id.clone(), "error"),
            Event::Undelivered(undelivered) => (undelivered.ask_id.clone(), "undelivered"),
        };
        if pushes != Pushes::On {
            tracing::info!(ask_id = %ask_id, kind, "kept_for_inbox");
            local.keep(event);
            continue;
        }
        if let Err(e) = peer
            .send_notification(notify::notification_for(&event))
            .await
        {
            tracing::error!(ask_id = %ask_id, kind, error = %e, "push_failed");
            return;
        }
        tracing::info!(ask_id = %ask_id, kind, "pushed");
    }
}
