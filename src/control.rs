//! Inspecting and stopping a running hub from outside: `relay-hub --status` and `--stop`, which
//! `install.sh` uses to replace a hub of an older version on upgrade.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::{
    client::HubClient,
    errors::RelayError,
    paths::DataDir,
    protocol::{HubStatus, Op, ShuttingDown},
};

/// How long `stop` waits for the hub to remove its socket.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The status of the hub of `data`, or `None` when no hub is running.
pub async fn status(data: &DataDir) -> Result<Option<HubStatus>, RelayError> {
    let (events, _unused) = mpsc::channel(1);
    let Some(client) = HubClient::connect_running(data, events).await? else {
        return Ok(None);
    };
    client.request(Op::Status).await.map(Some)
}

/// Stops the hub of `data` gracefully and waits until it no longer serves the socket. Returns what it was, or
/// `None` when no hub was running.
pub async fn stop(data: &DataDir) -> Result<Option<HubStatus>, RelayError> {
    let (events, _unused) = mpsc::channel(1);
    let Some(client) = HubClient::connect_running(data, events).await? else {
        return Ok(None);
    };
    let status: HubStatus = client.request(Op::Status).await?;
    let ShuttingDown {} = client.request(Op::Shutdown).await?;
    drop(client);
    // Gone once the socket answers no more, or answers with another hub: sessions that are still
    // running start a new one at once.
    let gone = tokio::time::timeout(STOP_TIMEOUT, async {
        loop {
            match self::status(data).await {
                Ok(Some(now)) if now.hub_pid == status.hub_pid => {}
                Err(_) => {}
                Ok(_) => return,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    match gone {
        Ok(()) => Ok(Some(status)),
        Err(_) => Err(RelayError::hub_unreachable(format!(
            "the hub (pid {}) accepted the shutdown but still serves {} after {} s; stop it with `kill {}`",
            status.hub_pid,
            data.socket().display(),
            STOP_TIMEOUT.as_secs(),
            status.hub_pid
        ))),
    }
}
