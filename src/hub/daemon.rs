//! Turning the `relay-hub` process into the one hub of a data directory.
//!
//! Exactly one hub may serve a data directory, even when many channels start one at the same
//! instant. The order below is what makes that true:
//! 1. take an exclusive `flock` on `DATA/hub.lock`; if another process holds it, a hub is alive
//!    (or starting) and this process exits at once. The kernel releases the lock when its holder
//!    dies, so a dead hub can never leave it behind.
//! 2. daemonize (fork, setsid, fork) while the process is still single-threaded: the lock belongs
//!    to the open file description, which the daemon inherits.
//! 3. only while holding the lock, remove a leftover socket and bind `DATA/hub.sock`.
//!
//! Binding alone cannot serve as the lock: two starters that both find a dead hub's socket can
//! each unlink the other's fresh socket and end up as two hubs.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    process::ExitCode,
    time::Duration,
};

use crate::{
    hub::server::{self, ServerConfig},
    logging::{self, Component},
    paths::DataDir,
    signals::termination,
};

/// How long the hub stays up after its last peer leaves, unless `RELAY_HUB_IDLE_SECS` says.
pub const DEFAULT_IDLE_SECS: u64 = 300;

/// Options of one hub run.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub data: DataDir,
    pub idle_exit: Duration,
    /// Stay in the foreground (for debugging): no fork, stderr stays the terminal's.
    pub foreground: bool,
}

/// Runs the hub: lock, daemonize, bind, serve. Returns when the hub exits.
pub fn run(options: DaemonOptions) -> ExitCode {
    match run_inner(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay-hub: {e}");
            tracing::error!(error = %e, "hub_failed");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(options: DaemonOptions) -> io::Result<()> {
    let data = &options.data;
    data.ensure()?;
    let Some(mut lock) = take_lock(data)? else {
        return Ok(());
    };
    if !options.foreground {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(data.hub_stderr())?;
        daemonize::Daemonize::new()
            .working_directory(data.root())
            .umask(0o077)
            .stderr(stderr)
            .start()
            .map_err(io::Error::other)?;
    }
    lock.set_len(0)?;
    writeln!(lock, "{}", std::process::id())?;
    // Dropped when the hub is done, before the lock: it writes the lines still held.
    let log = logging::init_held(Component::Hub, &data.logs());
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if let Some(log) = &log {
            tokio::spawn(log.write_regularly());
        }
        let bound = server::bind(data)?;
        let config = ServerConfig {
            idle_exit: options.idle_exit,
        };
        server::serve(bound, config, termination()).await
    })?;
    tracing::info!("hub_exited");
    // The held lines are written before another hub can take the lock and log.
    drop(runtime);
    drop(log);
    drop(lock);
    Ok(())
}

/// Raises the soft limit on open files to the hard one: every session is a connection, and the
/// usual soft limit of 1,024 would cap the hub at about a thousand.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a pointer to a local struct.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            limit.rlim_cur == limit.rlim_max || libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
        }
    };
    if raised {
        tracing::info!(open_files = limit.rlim_max, "open_file_limit");
    } else {
        tracing::warn!(open_files = limit.rlim_cur, error = %io::Error::last_os_error(), "open_file_limit_not_raised");
    }
}

/// Takes the hub lock, or returns `None` when another process holds it.
fn take_lock(data: &DataDir) -> io::Result<Option<File>> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(data.lock())?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}
