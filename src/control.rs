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

/// How long to wait for a hub that holds its lock but serves no socket to bind it again (it
/// checks every second).
const SOCKET_RETURN: Duration = Duration::from_secs(3);

/// The pid of a hub that holds the lock of `data`, found without its socket; `None` when no
/// process holds the lock. A shared lock is asked for and dropped at once: it is refused while
/// a hub holds its exclusive one.
pub(crate) fn locked_hub(data: &DataDir) -> Option<u32> {
    let lock = std::fs::File::open(data.lock()).ok()?;
    match lock.try_lock_shared() {
        Ok(()) => None,
        Err(_) => std::fs::read_to_string(data.lock())
            .ok()
            .and_then(|pid| pid.trim().parse().ok()),
    }
}

/// Connects to the hub of `data`. With no socket to connect to but a hub holding the lock (its
/// socket file was removed), waits for the hub to bind it again; a hub that does not is an
/// error naming its pid.
async fn connect(data: &DataDir) -> Result<Option<HubClient>, RelayError> {
    let deadline = tokio::time::Instant::now() + SOCKET_RETURN;
    loop {
        let (events, _unused) = mpsc::channel(1);
        if let Some(client) = HubClient::connect_running(data, events).await? {
            return Ok(Some(client));
        }
        let Some(pid) = locked_hub(data) else {
            return Ok(None);
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(RelayError::hub_unreachable(format!(
                "a hub (pid {pid}) holds {} but serves no socket at {}; stop it with `kill {pid}`, and the \
                 next session starts a new one",
                data.lock().display(),
                data.socket().display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of the hub of `data`, or `None` when no hub is running.
pub async fn status(data: &DataDir) -> Result<Option<HubStatus>, RelayError> {
    let Some(client) = connect(data).await? else {
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
    let client = match connect(data).await {
        Ok(Some(client)) => client,
        Ok(None) => return Ok(None),
        // A hub that lost its socket for good can still be stopped by its pid.
        Err(e) => match locked_hub(data) {
            Some(pid) => return terminate(data, pid).await,
            None => return Err(e),
        },
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

/// Stops the hub `pid`, which serves no socket, with SIGTERM, and waits until it released its
/// lock.
async fn terminate(data: &DataDir, pid: u32) -> Result<Option<Stopped>, RelayError> {
    // SAFETY: kill(2) with a pid read from the hub's own lock file, which that hub holds.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } != 0 {
        return Err(RelayError::hub_unreachable(format!(
            "the hub (pid {pid}) serves no socket and cannot be signalled: {}",
            std::io::Error::last_os_error()
        )));
    }
    let released = tokio::time::timeout(STOP_TIMEOUT, async {
        while locked_hub(data).is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    match released {
        Ok(()) => Ok(Some(Stopped {
            status: None,
            hub_pid: Some(pid),
        })),
        Err(_) => Err(RelayError::hub_unreachable(format!(
            "the hub (pid {pid}) serves no socket and is still running {} s after SIGTERM; stop it with `kill -9 {pid}`",
            STOP_TIMEOUT.as_secs()
        ))),
    }
}
