//! Inspecting and stopping a running hub from outside: `relay status`, `relay hub stop` and
//! `relay-hub --status` / `--stop`, which `install.sh` uses to replace a hub of an older version
//! on upgrade.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    client::HubClient,
    errors::RelayError,
    paths::DataDir,
    protocol::{HubStatus, Op, ShuttingDown},
};

/// How long `stop` waits for the hub to remove its socket.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The status of the hub of `data`, or `None` when no hub is running.
pub async fn status(data: &DataDir) -> Result<Option<HubStatus>, RelayError> {
    let (events, _unused) = mpsc::channel(1);
    let Some(client) = HubClient::connect_running(data, events).await? else {
        return Ok(None);
    };
    client.request(Op::Status).await.map(Some)
}

/// What [`stop`] stopped. A hub of another version may answer `status` in another shape: it is
/// stopped all the same, and only what could be read of it is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// Its status, when it has this version's shape.
    pub status: Option<HubStatus>,
    pub hub_pid: Option<u32>,
}

/// The one field every hub's status is read for, whatever else it carries.
#[derive(Deserialize)]
struct AnyStatus {
    hub_pid: Option<u32>,
}

/// Stops the hub of `data` gracefully and waits until it no longer serves the socket. Returns what
/// it was, or `None` when no hub was running.
pub async fn stop(data: &DataDir) -> Result<Option<Stopped>, RelayError> {
    let (events, _unused) = mpsc::channel(1);
    let Some(client) = HubClient::connect_running(data, events).await? else {
        return Ok(None);
    };
    let answer: Value = client.request(Op::Status).await?;
    let stopped = Stopped {
        hub_pid: serde_json::from_value::<AnyStatus>(answer.clone())
            .ok()
            .and_then(|any| any.hub_pid),
        status: serde_json::from_value(answer).ok(),
    };
    let ShuttingDown {} = client.request(Op::Shutdown).await?;
    drop(client);
    // Gone once the socket answers no more, or answers with another hub: sessions that are still
    // running start a new one at once.
    let gone = tokio::time::timeout(STOP_TIMEOUT, async {
        loop {
            match (self::status(data).await, stopped.hub_pid) {
                (Ok(None), _) => return,
                (Ok(Some(now)), Some(old)) if now.hub_pid == old => {}
                // Another hub, or one of this version where the old one's status was unreadable.
                (Ok(Some(_)), _) => return,
                (Err(_), _) => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    match gone {
        Ok(()) => Ok(Some(stopped)),
        Err(_) => {
            let kill = match stopped.hub_pid {
                Some(pid) => format!("kill {pid}"),
                None => format!("kill \"$(cat {})\"", data.lock().display()),
            };
            Err(RelayError::hub_unreachable(format!(
                "the hub accepted the shutdown but still serves {} after {} s; stop it with `{kill}`",
                data.socket().display(),
                STOP_TIMEOUT.as_secs(),
            )))
        }
    }
}
