//! The accept loop: one task per connection, idle exit, graceful shutdown, and the background
//! task that runs the hub's deadlines (asks that time out, inboxes that expire).

use std::{future::Future, io, sync::Arc, time::Duration};

use interprocess::local_socket::GenericFilePath;
use interprocess::local_socket::{
    ListenerOptions,
    tokio::{Listener, Stream, prelude::*},
};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use std::os::unix::fs::MetadataExt;
use tokio::sync::watch;

use crate::{
    ask::ConnId,
    hub::{
        connection::{self, Unregistered},
        federation,
        handle::Hub,
    },
    paths::DataDir,
};

/// How long the hub waits for its connections to close on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The most connections that have not said hello yet: past it the oldest of them is closed for
/// each new one, so that clients which never say hello can neither take every file descriptor
/// nor keep out a session that says hello.
pub(super) const MAX_UNREGISTERED: usize = 256;

#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerConfig {
    /// Exit this long after the last connection closes.
    pub idle_exit: Duration,
}

/// How often the hub checks that its socket file is still the one it bound.
const SOCKET_CHECK: Duration = Duration::from_secs(1);

/// The hub's bound socket, the uid that peers must have to be let in, and the data directory
/// it serves.
pub(crate) struct Bound {
    listener: Listener,
    /// The socket file as bound: (device, inode).
    file: (u64, u64),
    uid: u32,
    data: DataDir,
}

/// Binds the hub's socket (mode 0600). The caller must hold the hub lock: any socket file
/// already there belongs to a dead hub and is removed.
pub(crate) fn bind(data: &DataDir) -> io::Result<Bound> {
    let (listener, file, uid) = listen(data)?;
    Ok(Bound {
        listener,
        file,
        uid,
        data: data.clone(),
    })
}

/// Removes whatever is at the socket's path and binds it anew, returning the listener, the
/// file's identity and its owner (the uid peers must match).
fn listen(data: &DataDir) -> io::Result<(Listener, (u64, u64), u32)> {
    let socket = data.socket();
    match std::fs::remove_file(&socket) {
        Ok(()) => tracing::warn!(path = %socket.display(), "removed_stale_socket"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = ListenerOptions::new()
        .name(socket.as_path().to_fs_name::<GenericFilePath>()?)
        .mode(0o600)
        .create_tokio()?;
    let meta = std::fs::metadata(&socket)?;
    Ok((listener, (meta.dev(), meta.ino()), meta.uid()))
}

/// Binds the socket again when its file was removed or replaced (a user's `rm hub.sock`, a
/// clean-up script): new sessions could never reach this hub otherwise, and no other hub can
/// start while it holds the lock. Returns whether it did.
fn rebind_if_gone(listener: &mut Listener, file: &mut (u64, u64), data: &DataDir) -> bool {
    let now = std::fs::symlink_metadata(data.socket())
        .ok()
        .map(|meta| (meta.dev(), meta.ino()));
    if now == Some(*file) {
        return false;
    }
    match listen(data) {
        Ok((fresh, fresh_file, _)) => {
            // The old listener must not remove the path, which is the new socket's now.
            let mut old = std::mem::replace(listener, fresh);
            old.do_not_reclaim_name_on_drop();
            *file = fresh_file;
            tracing::warn!(path = %data.socket().display(), "socket_rebound");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "socket_rebind_failed");
            false
        }
    }
}

/// Serves a new hub on `bound` until `shutdown` resolves, a client asks it to stop, or it has
/// been idle for `config.idle_exit`. Fails only if the hub's journal cannot be opened.
pub(crate) async fn serve(
    bound: Bound,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let Bound {
        mut listener,
        mut file,
        uid,
        data,
    } = bound;
    let hub = Hub::open(&data)?;
    federation::join(&hub, &data).await;
    let live = Arc::new(watch::Sender::new(0usize));
    let mut live_rx = live.subscribe();
    let deadlines = tokio::spawn(run_deadlines(hub.clone()));
    tokio::pin!(shutdown);
    let mut next_conn = 0u64;
    let unregistered = Arc::new(Unregistered::default());
    tracing::info!(idle_exit_secs = config.idle_exit.as_secs(), "hub_listening");
    let mut socket_check = tokio::time::interval(SOCKET_CHECK);
    socket_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the hub exits for want of connections; kept across iterations of the loop, which
    // wakes for other reasons (the socket check) without resetting it.
    let mut idle_until = None;
    loop {
        let idle = *live_rx.borrow_and_update() == 0;
        idle_until = match (idle, idle_until) {
            (false, _) => None,
            (true, None) => Some(tokio::time::Instant::now() + config.idle_exit),
            (true, until) => until,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    next_conn += 1;
                    let Some(pid) = admit(&stream, uid) else { continue };
                    live.send_modify(|n| *n += 1);
                    let guard = LiveGuard(live.clone());
                    let waiting = unregistered.admit(ConnId(next_conn), MAX_UNREGISTERED);
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        connection::serve(stream, ConnId(next_conn), pid, hub, waiting).await;
                        drop(guard);
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, "accept_failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = live_rx.changed() => {}
            _ = socket_check.tick() => {
                rebind_if_gone(&mut listener, &mut file, &data);
            }
            _ = tokio::time::sleep_until(idle_until.unwrap_or_else(tokio::time::Instant::now)), if idle_until.is_some() => {
                tracing::info!("hub_idle_exit");
                break;
            }
            _ = &mut shutdown => {
                tracing::info!(reason = "signal", "hub_shutdown");
                break;
            }
            () = hub.shutdown_token().cancelled() => {
                tracing::info!(reason = "requested", "hub_shutdown");
                break;
            }
        }
    }
    drop(listener);
    hub.request_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, live_rx.wait_for(|n| *n == 0)).await;
    federation::leave(&hub).await;
    deadlines.abort();
    Ok(())
}

/// Checks the connecting process's credentials: only this user's processes may connect.
/// Returns the peer's pid.
fn admit(stream: &Stream, uid: u32) -> Option<u32> {
    match stream.peer_creds() {
        Ok(creds) if creds.euid() == Some(uid) => Some(creds.pid().map_or(0, |pid| pid as u32)),
        Ok(creds) => {
            tracing::warn!(peer_uid = ?creds.euid(), peer_pid = ?creds.pid(), "refused_other_user");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused_no_credentials");
            None
        }
    }
}

/// Counts a connection as live until dropped.
struct LiveGuard(Arc<watch::Sender<usize>>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The one task that runs deadlines (asks that time out, inboxes of departed sessions that
/// expire): it sleeps until the nearest, or until a nearer one is added.
async fn run_deadlines(hub: Hub) {
    loop {
        let next = hub.expire_due();
        let until_next = async {
            match next {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = until_next => {}
            _ = hub.nearer_deadline() => {}
            () = hub.shutdown_token().cancelled() => return,
        }
    }
}
