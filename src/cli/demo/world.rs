//! The demo's private world: a temp directory with its own data directory and HOME, the
//! `relay-channel` processes started in it, and the hub they start. Nothing outside the temp
//! directory is used, so the user's own hub and sessions never notice the demo.

use std::{
    fs::{self, File, TryLockError},
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{process::Command, time::Instant};

use crate::{cli::demo::channel::ChannelClient, control, paths::DataDir};

/// How long a session gets to exit after its stdin closes, before it is killed.
const CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// How long the demo's hub stays after its last session left; the clean-up stops it at once, this
/// is the safety net.
const DEMO_HUB_IDLE_SECS: &str = "5";

/// How long the hub gets to exit once it has stopped serving its socket.
const HUB_EXIT_LIMIT: Duration = Duration::from_secs(5);

pub(super) struct World {
    /// Removed by [`World::clean_up`]; removed on drop too, as a last resort.
    dir: Option<tempfile::TempDir>,
    temp_path: PathBuf,
    pub data: DataDir,
    home: PathBuf,
    channel_exe: PathBuf,
    pub sessions: Vec<ChannelClient>,
    /// The hub's pid once known, to name it if it will not stop.
    pub hub_pid: Option<u32>,
}

impl World {
    /// Creates the temp directory and finds `relay-channel` next to the running `relay`.
    pub(super) fn create() -> Result<World, String> {
        let channel_exe = std::env::current_exe()
            .map_err(|e| format!("cannot tell where relay is installed: {e}"))?
            .with_file_name("relay-channel");
        if !channel_exe.is_file() {
            return Err(format!(
                "relay-channel is not next to relay (looked for {}); install the three binaries together",
                channel_exe.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("relay-demo-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp directory: {e}"))?;
        let temp_path = dir.path().to_path_buf();
        let home = temp_path.join("home");
        fs::create_dir_all(&home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
        Ok(World {
            data: DataDir::new(temp_path.join("data")),
            temp_path,
            home,
            channel_exe,
            dir: Some(dir),
            sessions: Vec::new(),
            hub_pid: None,
        })
    }

    pub(super) fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// Starts a channel named `name`, working in its own directory under the temp dir, with
    /// pushes on (the demo's client reads every push, as Claude Code started with the channels
    /// flag does). The environment is cleared so that nothing of the user's session leaks in.
    pub(super) fn spawn_channel(&mut self, name: &str) -> Result<&mut ChannelClient, String> {
        let cwd = self.temp_path.join("work").join(name);
        fs::create_dir_all(&cwd).map_err(|e| format!("cannot create {}: {e}", cwd.display()))?;
        let mut command = Command::new(&self.channel_exe);
        command
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_PLUGIN_DATA", self.data.root())
            .env("RELAY_SESSION_NAME", name)
            .env("RELAY_CHANNELS", "on")
            // Should the demo die before its clean-up, its hub leaves by itself soon after.
            .env("RELAY_HUB_IDLE_SECS", DEMO_HUB_IDLE_SECS);
        let session = ChannelClient::spawn(command, name, &self.channel_exe)?;
        self.sessions.push(session);
        Ok(self.sessions.last_mut().expect("just pushed"))
    }

    /// Stops everything the demo started and removes the temp directory. Each problem is
    /// returned as one sentence; cleaning up goes on after each.
    pub(super) async fn clean_up(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // The sessions first: a session that still runs would start a new hub at once.
        for session in &mut self.sessions {
            if let Err(problem) = session.close(CLOSE_LIMIT).await {
                problems.push(problem);
            }
        }
        if let Err(e) = control::stop(&self.data).await {
            problems.push(format!("cannot stop the demo's hub: {}", e.message));
        }
        if let Err(problem) = self.hub_exited().await {
            problems.push(problem);
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            problems.push(format!("cannot remove {}: {e}", self.temp_path.display()));
        }
        problems
    }

    /// Waits until no hub holds the data directory's lock: the hub holds it until its process
    /// exits, so once the lock is free nothing will write into the directory any more.
    async fn hub_exited(&self) -> Result<(), String> {
        let lock_path = self.data.lock();
        let Ok(lock) = File::open(&lock_path) else {
            return Ok(()); // no hub ever started here
        };
        let deadline = Instant::now() + HUB_EXIT_LIMIT;
        loop {
            match lock.try_lock() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(TryLockError::WouldBlock) => {
                    // The lock file holds the hub's pid, should the demo not have learnt it.
                    let pid = self
                        .hub_pid
                        .or_else(|| fs::read_to_string(&lock_path).ok()?.trim().parse().ok())
                        .map_or_else(|| "?".to_owned(), |pid: u32| pid.to_string());
                    return Err(format!(
                        "the demo's hub (pid {pid}) still runs {} s after it was told to stop; stop it with `kill {pid}`",
                        HUB_EXIT_LIMIT.as_secs()
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(format!("cannot check {}: {e}", lock_path.display()));
                }
            }
        }
    }
}
