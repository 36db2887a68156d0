//! `relay peers`: who is connected to the hub. Lists without joining, so the command line does
//! not show up in its own list.

use std::process::ExitCode;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::{
    cli::{CliError, Global, Outcome, exit, output, status::not_running},
    client::HubClient,
    errors::ErrorCode,
    protocol::{DeliveryMode, Op, PeerInfo, PeerKind, PeerList, Pushes},
};

pub(crate) async fn run(global: &Global) -> Outcome {
    let data = global.data()?;
    let (events, _unused) = mpsc::channel(1);
    let client = HubClient::connect_running(&data, events)
        .await?
        .ok_or_else(|| not_running(&data))?;
    let list: PeerList = client.request(Op::Peers).await.map_err(|e| {
        if e.code == ErrorCode::NotRegistered {
            // Hubs before the command line listed peers only to a registered session.
            CliError::failure(format!(
                "the running hub is older than `relay peers` and will not list peers to it; `relay hub restart` \
                 replaces it (sessions reconnect by themselves): {}",
                e.message
            ))
        } else {
            e.into()
        }
    })?;
    if global.json {
        output::print_json(&list);
    } else if list.peers.is_empty() {
        outln!("no sessions are connected");
    } else {
        out!("{}", table(&list.peers, OffsetDateTime::now_utc()));
        out!("{}", why_not_live(&list.peers));
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

/// One row per session; a HOST column when the hub is federated (a session of another host is
/// asked as `name@host`).
fn table(peers: &[PeerInfo], now: OffsetDateTime) -> String {
    let hosts = peers.iter().any(|peer| !peer.host.is_empty());
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|peer| {
            let mut row = vec![peer.name.clone()];
            if hosts {
                row.push(or_dash(&peer.host));
            }
            row.extend([
                peer.kind.as_str().to_owned(),
                peer.cwd.clone(),
                or_dash(&peer.git_branch),
                peer.pid.to_string(),
                delivery(peer),
                ago(&peer.last_seen, now),
            ]);
            row
        })
        .collect();
    let mut headers = vec!["NAME"];
    if hosts {
        headers.push("HOST");
    }
    headers.extend(["KIND", "CWD", "BRANCH", "PID", "DELIVERY", "LAST SEEN"]);
    output::table(&headers, &rows)
}

/// How a message reaches the peer now: `live` (pushed), `woken` (its waiter wakes it; `waiter
/// armed` while one waits) or `queued` (at its next prompt).
fn delivery(peer: &PeerInfo) -> String {
    match (peer.delivery, peer.waiter) {
        (DeliveryMode::Live, _) => "live".to_owned(),
        (DeliveryMode::Woken, true) => "woken (waiter armed)".to_owned(),
        (DeliveryMode::Woken, false) => "woken (turn running)".to_owned(),
        (DeliveryMode::Queued, _) => "queued".to_owned(),
    }
}

/// One line per session whose pushes are not on, saying why its channel decided so: those
/// sessions see messages when their waiter wakes them, or at their next prompt.
fn why_not_live(peers: &[PeerInfo]) -> String {
    let mut notes = String::new();
    for peer in peers {
        if peer.kind == PeerKind::Channel && peer.pushes != Pushes::On {
            let reason = or_dash(&peer.pushes_reason);
            notes.push_str(&format!(
                "{}: pushes {}: {}\n",
                peer.name,
                peer.pushes.as_str(),
                output::printable(&reason, false)
            ));
        }
    }
    if !notes.is_empty() {
        notes.insert(0, '\n');
    }
    notes
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// `12s ago` for an RFC 3339 time, or the time itself if it cannot be read.
fn ago(at: &str, now: OffsetDateTime) -> String {
    match output::elapsed_since(at, now) {
        Some(elapsed) => format!("{} ago", output::human_duration(elapsed)),
        None => at.to_owned(),
    }
}
