//! An interactive `claude` in a terminal, driven as a person drives it: keys go in with tmux's
//! `send-keys`, and what the terminal shows comes out with `capture-pane`.
//!
//! Each [`TmuxPane`] runs its own tmux server on a private socket in the test's temp dir
//! (`tmux -S <dir>/tmux.sock`), so it never touches a user's tmux nor another test's. Its one pane
//! runs the command given, with exactly that command's environment (the tmux client is started with
//! a clean environment, and the server passes its own to the pane).
//!
//! Cleanup never goes by process name: the pane's process (the `claude`, its own process group, as
//! tmux makes every pane a session leader) is signalled by its group id after checking that it
//! still is the server's child, then the server is stopped with `kill-server` and, should it
//! linger, killed by the pid it reported, after checking its command line names this socket.
//! Hooks that Claude Code starts run detached, in their own groups: they are the caller's to
//! check (the relay's waiter ends by itself once its `claude` is gone).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{kill, kill_group, poll_until, process_gone};

/// The name of the tmux session (and so the target of every command).
const SESSION: &str = "relay";

/// The screen's size: wide enough that Claude Code's lines are not wrapped much.
const COLUMNS: u16 = 160;
const ROWS: u16 = 50;

/// The tmux server's settings: keep the pane (and its last screen) when its command exits, keep a
/// long history, no status line.
const CONFIG: &str = "set -g remain-on-exit on\nset -g history-limit 50000\nset -g status off\n";

/// The `tmux` executable, or why there is none.
pub fn find_tmux() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("tmux"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| "no tmux on the PATH".to_owned())
}

/// One tmux server with one pane running a command.
pub struct TmuxPane {
    tmux: PathBuf,
    socket: PathBuf,
    server_pid: Option<u32>,
    pane_pid: Option<u32>,
}

impl TmuxPane {
    /// Starts a tmux server on `<dir>/tmux.sock` whose one pane runs `command`: its program, its
    /// arguments, its working directory and exactly the variables set on it.
    pub fn start(tmux: &Path, dir: &Path, command: &Command) -> TmuxPane {
        let socket = dir.join("tmux.sock");
        let config = dir.join("tmux.conf");
        fs::write(&config, CONFIG).expect("write tmux.conf");
        let mut new_session = Command::new(tmux);
        new_session.env_clear();
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                new_session.env(key, value);
            }
        }
        new_session
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&config)
            .args(["new-session", "-d", "-s", SESSION])
            .args(["-x", &COLUMNS.to_string(), "-y", &ROWS.to_string()]);
        if let Some(cwd) = command.get_current_dir() {
            new_session.arg("-c").arg(cwd);
        }
        // Given as several arguments, the command is executed directly, not through a shell.
        new_session
            .arg("--")
            .arg(command.get_program())
            .args(command.get_args());
        let mut pane = TmuxPane {
            tmux: tmux.to_owned(),
            socket,
            server_pid: None,
            pane_pid: None,
        };
        let started = new_session
            .stdin(Stdio::null())
            .output()
            .expect("run tmux new-session");
        assert!(
            started.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        let pids =
            pane.tmux_output(&["display-message", "-p", "-t", SESSION, "#{pid} #{pane_pid}"]);
        let mut pids = pids.split_whitespace().map(|pid| pid.parse::<u32>().ok());
        pane.server_pid = pids.next().flatten();
        pane.pane_pid = pids.next().flatten();
        assert!(
            pane.server_pid.is_some() && pane.pane_pid.is_some(),
            "tmux did not say its pids"
        );
        pane
    }

    /// The pid of the pane's process (the program started), also its process group.
    pub fn pane_pid(&self) -> u32 {
        self.pane_pid.expect("the pane's pid")
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new(&self.tmux);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("-S")
            .arg(&self.socket)
            .stdin(Stdio::null());
        command
    }

    /// Runs a tmux command against this server; its stdout ("" when it failed).
    fn tmux_output(&self, args: &[&str]) -> String {
        self.tmux()
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Types `text` into the pane, character by character as keys (not a paste).
    pub fn type_text(&self, text: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", SESSION, "-l", "--", text])
            .status()
            .expect("run tmux send-keys");
        assert!(status.success(), "tmux send-keys failed");
    }

    /// Presses a key by its tmux name: `Enter`, `Escape`, `C-c`, ...
    pub fn press(&self, key: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", SESSION, key])
            .status()
            .expect("run tmux send-keys");
        assert!(status.success(), "tmux send-keys failed");
    }

    /// What the terminal shows, its scrolled-off history included, wrapped lines joined.
    pub fn screen(&self) -> String {
        self.tmux_output(&["capture-pane", "-p", "-J", "-S", "-", "-t", SESSION])
    }

    /// Looks at the screen every 100 ms until `pred` holds of it (returning that screen) or
    /// `within` has passed. A terminal has no event to wait on.
    pub fn wait_for_screen(&self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        poll_until(within, || {
            let screen = self.screen();
            if pred(&screen) {
                found = Some(screen);
                return true;
            }
            std::thread::sleep(Duration::from_millis(90));
            false
        });
        found
    }

    /// Whether the pane's process has exited.
    pub fn has_exited(&self) -> bool {
        self.pane_pid.is_none_or(process_gone)
    }

    /// Whether `pid` is still the child of this pane's server (and so still the pane's process,
    /// not a reused pid).
    fn is_pane_process(&self, pid: u32) -> bool {
        let (Some(server), Ok(stat)) = (
            self.server_pid,
            fs::read_to_string(format!("/proc/{pid}/stat")),
        ) else {
            return false;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        parent == Some(server) && !process_gone(pid)
    }

    /// Whether `pid` is still this tmux server (its command line names this socket).
    fn is_server(&self, pid: u32) -> bool {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        !process_gone(pid)
            && String::from_utf8_lossy(&cmdline).contains(&*self.socket.to_string_lossy())
    }
}

/// The live processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if group_of(pid) == Some(pgid) && !process_gone(pid) {
            members.push(pid);
        }
    }
    members
}

/// The process group of `pid`: the fifth field of `/proc/<pid>/stat`.
fn group_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

impl Drop for TmuxPane {
    fn drop(&mut self) {
        if let Some(pane) = self.pane_pid
            && self.is_pane_process(pane)
        {
            // The group's members while its leader is known to be the pane's: whatever of them
            // outlives the leader is still ours if it is still in that group.
            let members = group_members(pane);
            // Claude Code ends cleanly on SIGTERM (and stops its MCP servers).
            kill_group(pane, "TERM");
            if !poll_until(Duration::from_secs(5), || !self.is_pane_process(pane)) {
                kill_group(pane, "KILL");
            }
            for pid in members {
                if group_of(pid) == Some(pane) && !process_gone(pid) {
                    kill(pid, "KILL");
                }
            }
        }
        let _ = self.tmux().arg("kill-server").output();
        if let Some(server) = self.server_pid
            && !poll_until(Duration::from_secs(3), || !self.is_server(server))
        {
            kill(server, "KILL");
        }
    }
}
