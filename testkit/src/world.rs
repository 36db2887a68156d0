//! A temporary world for one test (or one bench phase): its own data directory, HOME and working
//! directories, so that it never meets the real relay or another test's hub, and the hub that
//! comes to live there, which is killed by pid when the world drops.

use std::{
    ffi::OsStr,
    fs,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    Bins, PROMPTLY,
    process::{kill, poll_until, process_gone, wait_for},
};

/// A temporary data directory (`CLAUDE_PLUGIN_DATA`), HOME and working directories, the
/// environment of every process started in them, and the hub that serves them.
pub struct World {
    /// Removed when the world drops, after its hub is gone.
    pub dir: tempfile::TempDir,
    /// The data directory, canonical, so that it compares equal to the hub's `/proc/PID/cwd`.
    pub data: PathBuf,
    pub home: PathBuf,
    bins: Bins,
    env: Vec<(String, String)>,
    hub_pids: Vec<u32>,
}

impl World {
    /// A new world whose processes log at `debug` and take their pushes as shown
    /// (`RELAY_CHANNELS=on`): the test process is no `claude`, so a channel could not tell
    /// whether its pushes are shown, and the tests drive a client that reads every push.
    pub fn new(bins: Bins) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let home = root.join("home");
        fs::create_dir_all(&home).expect("create HOME");
        World {
            data: root.join("data"),
            home,
            dir,
            bins,
            env: vec![
                ("RELAY_LOG".into(), "debug".into()),
                ("RELAY_CHANNELS".into(), "on".into()),
            ],
            hub_pids: Vec::new(),
        }
    }

    /// Sets an environment variable for every process started from now on with
    /// [`World::command`] (replacing an earlier value of it).
    pub fn with_env(mut self, key: &str, value: &str) -> World {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    /// Leaves `key` out of the environment of every process started from now on with
    /// [`World::command`].
    pub fn without_env(mut self, key: &str) -> World {
        self.env.retain(|(k, _)| k != key);
        self
    }

    pub fn bins(&self) -> Bins {
        self.bins
    }

    pub fn socket(&self) -> PathBuf {
        self.data.join("hub.sock")
    }

    pub fn logs(&self) -> PathBuf {
        self.data.join("logs")
    }

    /// A command for `exe` in `cwd` that knows only this world's HOME and data directory (and
    /// `PATH`): no variable of the test's own environment, and none of [`World::with_env`].
    pub fn base_command(&self, exe: impl AsRef<OsStr>, cwd: &Path) -> Command {
        let mut command = Command::new(exe);
        command
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_PLUGIN_DATA", &self.data);
        command
    }

    /// [`World::base_command`] with this world's environment (see [`World::new`] and
    /// [`World::with_env`]).
    pub fn command(&self, exe: impl AsRef<OsStr>, cwd: &Path) -> Command {
        let mut command = self.base_command(exe, cwd);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// A working directory named `name` under the temp dir: not in a git work tree, so a channel
    /// started there reads no git branch.
    pub fn workdir(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("work").join(name);
        fs::create_dir_all(&dir).expect("create work dir");
        dir
    }

    /// Runs `relay-hub` the way a channel does and waits until it accepts connections.
    pub fn start_hub(&mut self) -> u32 {
        let status = self
            .command(self.bins.hub, self.dir.path())
            .stdin(Stdio::null())
            .status()
            .expect("run relay-hub");
        assert!(status.success(), "relay-hub exited with {status}");
        wait_for("the hub socket to accept", || {
            UnixStream::connect(self.socket()).is_ok()
        });
        self.note_hub();
        self.hub_pid().expect("hub pid")
    }

    /// The pid of the live hub of this data directory, from its lock file.
    pub fn hub_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data.join("hub.lock")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        self.is_our_hub(pid).then_some(pid)
    }

    /// A process is this world's hub when it is alive and runs in this data directory (the hub
    /// makes its data directory its working directory). This guards against a stale lock file
    /// and a reused pid.
    fn is_our_hub(&self, pid: u32) -> bool {
        fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == self.data)
            && !process_gone(pid)
    }

    /// Every live relay-hub process serving this data directory.
    pub fn hubs_running(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let exe = fs::read_link(entry.path().join("exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "relay-hub") && self.is_our_hub(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Remembers the current hub so that it is killed when the world drops, even should it no
    /// longer be found by [`World::hubs_running`] then (its binary rebuilt meanwhile, say).
    pub fn note_hub(&mut self) {
        if let Some(pid) = self.hub_pid()
            && !self.hub_pids.contains(&pid)
        {
            self.hub_pids.push(pid);
        }
    }

    /// Waits until the hub `pid` has exited, failing after `within`.
    pub fn wait_hub_gone(&self, pid: u32, within: Duration) {
        assert!(
            poll_until(within, || !self.is_our_hub(pid)),
            "hub {pid} still running after {within:?}"
        );
    }

    /// Whether some log line has `event` and satisfies `also`.
    pub fn logged(&self, event: &str, also: impl Fn(&Value) -> bool) -> bool {
        self.log_lines()
            .iter()
            .any(|line| line["event"] == event && also(line))
    }

    /// Every complete line of the log files, parsed.
    ///
    /// A last line without its newline is left out: a process is writing it at this moment. Each
    /// line is one `write` with `O_APPEND`, which keeps lines of different processes apart but is
    /// not atomic for a reader: Linux copies a write into the file page by page and makes each
    /// page's part visible as it goes, so a line that crosses a 4 KiB boundary can be read cut at
    /// that boundary (as `relay logs` knows, holding such a line back). It is whole at the next
    /// look, and callers that wait for a line look again.
    pub fn log_lines(&self) -> Vec<Value> {
        let mut lines = Vec::new();
        let Ok(files) = fs::read_dir(self.logs()) else {
            return lines;
        };
        for entry in files.flatten() {
            let mut bytes = fs::read(entry.path()).expect("read a log file");
            bytes.truncate(
                bytes
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |end| end + 1),
            );
            let text = String::from_utf8(bytes).expect("log files are UTF-8");
            for line in text.lines() {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
                lines.push(value);
            }
        }
        lines
    }
}

impl Drop for World {
    /// Kills every hub of this world by its pid, once verified as this world's, and waits
    /// (bounded, without panicking in a drop) until they are gone, before the temporary
    /// directory is removed.
    fn drop(&mut self) {
        self.note_hub();
        let mut pids = self.hubs_running();
        pids.extend(self.hub_pids.iter().copied());
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|&pid| self.is_our_hub(pid));
        for &pid in &pids {
            kill(pid, "KILL");
        }
        poll_until(PROMPTLY, || pids.iter().all(|&pid| !self.is_our_hub(pid)));
    }
}
