//! The running hub: does it answer, and does it speak this relay's protocol and version? And a
//! socket file that nothing serves any more.
//!
//! The hub is asked `status`, which every protocol keeps and which needs no hello, and its answer
//! is read field by field: a hub of another version may answer in another shape, and the doctor
//! must still say which version it is.

use std::{io::ErrorKind, time::Duration};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    cli::doctor::CHANNELS_FLAG,
    cli::doctor::Check,
    client::{HubClient, REQUEST_TIMEOUT},
    paths::DataDir,
    protocol::{DeliveryMode, FederationStatus, Op, PROTOCOL_VERSION, PeerKind, PeerList, VERSION},
};

const HUB: &str = "hub";
const STALE_SOCKET: &str = "stale-socket";
const DELIVERY: &str = "delivery";
const FEDERATION: &str = "federation";

/// How long connecting to the socket may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// What the socket said.
enum Answer {
    /// No socket file.
    NoSocket,
    /// A socket file, but connecting to it failed.
    Unreachable(std::io::Error),
    /// A hub accepted the connection but its answer to `status` is not usable.
    Broken(String),
    /// Its status, and its peers when it listed them.
    Status(Value, Option<PeerList>),
}

pub(super) async fn check(data: &DataDir) -> Vec<Check> {
    let answer = ask(data).await;
    vec![
        hub(data, &answer),
        stale_socket(data, &answer),
        delivery(&answer),
        federation(&answer),
    ]
}

async fn ask(data: &DataDir) -> Answer {
    let (events, _unused) = mpsc::channel(1);
    let connected =
        tokio::time::timeout(CONNECT_LIMIT, HubClient::connect_running(data, events)).await;
    let Ok(Ok(Some(client))) = connected else {
        return why_unreachable(data).await;
    };
    // The request is bounded by the client's own timeout; this bound is for the send too.
    match tokio::time::timeout(
        REQUEST_TIMEOUT + Duration::from_secs(1),
        client.request::<Value>(Op::Status),
    )
    .await
    {
        Ok(Ok(status)) => {
            let peers = client.request::<PeerList>(Op::Peers).await.ok();
            Answer::Status(status, peers)
        }
        Ok(Err(e)) => Answer::Broken(format!("{}: {}", e.code, e.message)),
        Err(_) => Answer::Broken(format!(
            "no answer to `status` within {} s",
            REQUEST_TIMEOUT.as_secs()
        )),
    }
}

/// Connects once more, to learn why the client could not: no file, nobody listening, or
/// something else (a permission, a file that is no socket).
async fn why_unreachable(data: &DataDir) -> Answer {
    let socket = data.socket();
    match tokio::time::timeout(CONNECT_LIMIT, tokio::net::UnixStream::connect(&socket)).await {
        Ok(Err(e)) if e.kind() == ErrorKind::NotFound => Answer::NoSocket,
        Ok(Err(e)) => Answer::Unreachable(e),
        Ok(Ok(_)) => Answer::Broken(
            "refused the first connection and accepted the second: a hub may have started meanwhile; run `relay doctor` again".into(),
        ),
        Err(_) => Answer::Broken(format!(
            "connecting to {} took over {} s",
            socket.display(),
            CONNECT_LIMIT.as_secs()
        )),
    }
}

fn hub(data: &DataDir, answer: &Answer) -> Check {
    let kill_fix = || {
        format!(
            "stop it with `kill $(cat {})`; the next session starts a new hub",
            data.lock().display()
        )
    };
    let status = match answer {
        Answer::NoSocket | Answer::Unreachable(_) => {
            return Check::pass(
                HUB,
                "no hub running; the first session that uses the relay starts it",
            );
        }
        Answer::Broken(why) => {
            return Check::fail(
                HUB,
                format!(
                    "a hub accepts connections on {} but {why}",
                    data.socket().display()
                ),
                kill_fix(),
            );
        }
        Answer::Status(status, _) => status,
    };
    let pid = status["hub_pid"].as_u64();
    let version = status["hub_version"].as_str();
    let protocol = status["protocol"].as_u64();
    let (Some(pid), Some(version), Some(protocol)) = (pid, version, protocol) else {
        return Check::fail(
            HUB,
            format!("the hub's answer to `status` lacks its pid, version or protocol: {status}"),
            kill_fix(),
        );
    };
    let running = format!("the hub (pid {pid}) runs claude-relay {version}, protocol {protocol}");
    if protocol != u64::from(PROTOCOL_VERSION) {
        return Check::fail(
            HUB,
            format!(
                "{running}, but this relay speaks protocol {PROTOCOL_VERSION}: its sessions and new ones cannot talk"
            ),
            format!(
                "`relay hub restart` (or `kill {pid}`); sessions reconnect to the new hub by themselves"
            ),
        );
    }
    if version != VERSION {
        return Check::warn(
            HUB,
            format!("{running}; this relay is {VERSION}"),
            Some(
                "`relay hub restart` when no ask is pending, or let it exit by itself 5 minutes after its last session"
                    .to_owned(),
            ),
        );
    }
    let peers = status["peers"].as_u64().unwrap_or(0);
    Check::pass(HUB, format!("{running}, {peers} peer(s)"))
}

fn stale_socket(data: &DataDir, answer: &Answer) -> Check {
    let socket = data.socket();
    match answer {
        Answer::NoSocket => Check::pass(STALE_SOCKET, "no socket left behind"),
        Answer::Status(..) | Answer::Broken(_) => Check::pass(
            STALE_SOCKET,
            format!("a hub accepts connections on {}", socket.display()),
        ),
        // Harmless in itself (the next hub removes it), but a hub died without cleaning up.
        Answer::Unreachable(e) if e.kind() == ErrorKind::ConnectionRefused => Check::warn(
            STALE_SOCKET,
            format!(
                "{} exists but nothing accepts connections on it: a hub ended without removing it",
                socket.display()
            ),
            Some(format!(
                "nothing to do: the next hub removes it when it starts (or `rm {}`); if the hub crashed, {} says why",
                socket.display(),
                data.hub_stderr().display()
            )),
        ),
        Answer::Unreachable(e) => Check::fail(
            STALE_SOCKET,
            format!("cannot connect to {}: {e}", socket.display()),
            format!(
                "make {} and its socket yours (see the data-dir and socket checks), or `rm {}`",
                data.root().display(),
                socket.display()
            ),
        ),
    }
}

/// How the sessions connected to the hub get their messages: pushed, woken by their waiter, or
/// only at their next prompt, which is worth a warning (no waiter is armed for them).
fn delivery(answer: &Answer) -> Check {
    let peers = match answer {
        Answer::Status(_, Some(list)) => &list.peers,
        Answer::Status(_, None) => {
            return Check::warn(DELIVERY, "the hub did not list its sessions", None);
        }
        _ => return Check::pass(DELIVERY, "no hub running, so no session to check"),
    };
    // This host's sessions: a federated hub lists the other hosts' too.
    let own_host = match answer {
        Answer::Status(status, _) => status["federation"]["host"].as_str().unwrap_or(""),
        _ => "",
    };
    let channels: Vec<_> = peers
        .iter()
        .filter(|peer| peer.kind == PeerKind::Channel && peer.host == own_host)
        .collect();
    let count = |mode: DeliveryMode| channels.iter().filter(|p| p.delivery == mode).count();
    let summary = format!(
        "{} session(s) connected: {} pushed to, {} woken by their waiter, {} queued",
        channels.len(),
        count(DeliveryMode::Live),
        count(DeliveryMode::Woken),
        count(DeliveryMode::Queued),
    );
    let queued: Vec<String> = channels
        .iter()
        .filter(|peer| peer.delivery == DeliveryMode::Queued)
        .map(|peer| {
            format!(
                "{} (pushes {}: {})",
                peer.name,
                peer.pushes.as_str(),
                peer.pushes_reason
            )
        })
        .collect();
    if queued.is_empty() {
        return Check::pass(DELIVERY, summary);
    }
    Check::warn(
        DELIVERY,
        format!(
            "{summary}; these get messages only at their next prompt, no waiter being armed for them: {}",
            queued.join("; ")
        ),
        Some(format!(
            "nothing is lost; a waiter is armed at the end of each turn unless RELAY_WAKE=off or the \
             session's hooks do not run (claude --debug-file logs them); for messages mid-turn too, \
             start sessions with `claude {CHANNELS_FLAG}`"
        )),
    )
}

/// The federation of hubs on several hosts: not configured (this host only), refused (and why),
/// or its server reached or not, and the other hosts seen.
fn federation(answer: &Answer) -> Check {
    let Answer::Status(status, _) = answer else {
        return Check::pass(FEDERATION, "no hub running, so no federation to check");
    };
    let configured_here = std::env::var_os("RELAY_NATS_URL").is_some_and(|url| !url.is_empty());
    let federation = match status.get("federation").filter(|value| !value.is_null()) {
        None if configured_here => {
            return Check::warn(
                FEDERATION,
                "RELAY_NATS_URL is set here, but the running hub is not federated: it started without it",
                Some(
                    "`relay hub restart` from a shell where RELAY_NATS_URL is set, or put the server in \
                     federation.json in the data directory (docs/federation.md)"
                        .to_owned(),
                ),
            );
        }
        None => {
            return Check::pass(
                FEDERATION,
                "not federated: this host's sessions only (RELAY_NATS_URL is not set)",
            );
        }
        Some(value) => value,
    };
    let federation: FederationStatus = match serde_json::from_value(federation.clone()) {
        Ok(federation) => federation,
        Err(e) => {
            return Check::warn(
                FEDERATION,
                format!("the hub's federation status is unreadable ({e}): {federation}"),
                None,
            );
        }
    };
    if let Some(error) = &federation.error {
        return Check::fail(
            FEDERATION,
            format!("the hub is configured to federate and refused to: {error}"),
            "fix what it says (docs/federation.md), then `relay hub restart`",
        );
    }
    if !federation.connected {
        return Check::fail(
            FEDERATION,
            format!(
                "host {} cannot reach the federation's server {}{}; sessions of other hosts cannot be asked",
                federation.host,
                federation.url,
                federation
                    .last_error
                    .as_deref()
                    .map(|error| format!(" (last: {error})"))
                    .unwrap_or_default()
            ),
            "check that the NATS server runs and is reachable from here; the hub keeps retrying and \
             rejoins by itself",
        );
    }
    Check::pass(FEDERATION, crate::cli::status::federation_line(&federation))
}
