//! Processes: a guard that kills a child by its pid when dropped, bounded waits, signals by pid,
//! and creating executables a test can run at once.
//!
//! Nothing here finds a process by name: a test machine runs many tests (and maybe a real relay)
//! at once, and only the pids a test started, or verified as its own, are its to stop.

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::PROMPTLY;

/// How often a test looks again at state that has no event to wait on.
pub const POLL: Duration = Duration::from_millis(10);

/// A child process that is killed and reaped when dropped, also when a test panics.
/// `Child::kill` signals the child's pid, which cannot have been reused: the child is not reaped
/// before the drop, so its pid stays its own.
#[derive(Debug)]
pub struct KillOnDrop(Child);

impl KillOnDrop {
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(child)
    }

    /// Starts `command`, guarded. `what` names it in the panic should it not start.
    pub fn spawn(command: &mut Command, what: &str) -> KillOnDrop {
        KillOnDrop(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {what}: {e}")),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The child, e.g. to take its pipes.
    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }

    /// Waits until the child exits, looking every `poll`; `None` after `within`. The child is
    /// reaped, and still killed when the guard drops if it has not exited.
    ///
    /// std offers no wait with a timeout, hence the polling. A caller that times the exit (the
    /// bench) passes a fine `poll`; a test waiting for an outcome passes [`POLL`].
    pub fn wait_within(&mut self, within: Duration, poll: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("child status") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(poll);
        }
    }

    /// Kills the child (if it still runs) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` (`KILL`, `TERM`, `INT`, ...) to `pid` with kill(1); std has no kill(2) for an
/// arbitrary pid, and the kit adds no crate for it.
pub fn kill(pid: u32, signal: &str) {
    send_signal(&pid.to_string(), signal);
}

/// Sends `signal` to every process of the process group `pgid`.
pub fn kill_group(pgid: u32, signal: &str) {
    send_signal(&format!("-{pgid}"), signal);
}

fn send_signal(target: &str, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` has exited: no `/proc` entry, or only a zombie waiting for its parent to reap
/// it (which also keeps its pid from being reused).
pub fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name, which may itself hold a `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// A memory figure of process `pid` from `/proc/PID/status`, in KiB: `VmRSS` (resident now),
/// `VmHWM` (the most resident since start, or since [`reset_peak_rss`]), `RssAnon`, ....
/// `None` when the process or the field is not there.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resets the peak resident size of `pid` (`VmHWM`) to what is resident now, so that a later
/// `VmHWM` is the peak since this call (writing 5 to `/proc/PID/clear_refs`, allowed for one's
/// own processes since Linux 4.0).
pub fn reset_peak_rss(pid: u32) {
    fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .unwrap_or_else(|e| panic!("reset the peak RSS of {pid}: {e}"));
}

/// Looks at `condition` every [`POLL`] until it holds (true) or `within` has passed (false).
/// Only for state that has no event to wait on: another process's files or existence.
pub fn poll_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Waits until `condition` holds, failing the test after [`PROMPTLY`]. Only for state that has
/// no event to wait on (another process's files or existence).
pub fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(PROMPTLY, condition),
        "timed out waiting for {what}"
    );
}

/// Creates `path` as an executable (mode 755) holding `contents`, for a test that then runs it.
///
/// Why not `fs::write` and `set_permissions`: while a file is open for writing, exec of it fails
/// with ETXTBSY ("Text file busy"), and the test process is not the only holder of the fds it
/// opens. Every other test runs in a thread of the same process and starts processes of its own;
/// a child forked at the moment this thread holds the file open for writing gets a copy of that
/// fd, and keeps it from fork until its own exec (when O_CLOEXEC closes it). If this thread
/// execs the file in that window, the exec fails. So the file is written by a short-lived
/// `sh` child instead: the only writable fd on it ever lives in that child, which has exited
/// before this returns, and no later fork can copy it.
pub fn write_executable(path: impl AsRef<Path>, contents: &str) {
    let path = path.as_ref();
    let mut child = Command::new("sh")
        .args(["-c", r#"cat > "$1" && chmod 755 "$1""#, "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start sh");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(contents.as_bytes()).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "writing {}: {status}", path.display());
}

/// Copies `from` to `to` as an executable (mode 755) with cp(1), for a test that then runs the
/// copy. `fs::copy` would hold `to` open for writing in this process: see [`write_executable`]
/// for why that makes running it fail now and then with ETXTBSY.
pub fn copy_executable(from: impl AsRef<Path>, to: impl AsRef<Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let status = Command::new("sh")
        .args(["-c", r#"cp -- "$1" "$2" && chmod 755 "$2""#, "sh"])
        .args([from, to])
        .stdin(Stdio::null())
        .status()
        .expect("start sh");
    assert!(
        status.success(),
        "copying {} to {}: {status}",
        from.display(),
        to.display()
    );
}

/// Reads `source` (a child's stdout or stderr) line by line on a thread of its own and hands
/// each line over, until its end or a line that is not UTF-8, or until the receiver is dropped.
pub fn lines_of(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Runs `command` (named `what` in failures) with `input` on its stdin, as Claude Code runs a
/// hook: its status, stdout and stderr. One that has not ended within [`PROMPTLY`] fails the
/// test (and is killed). Its output is read once it has ended, so it must fit the pipes.
pub fn run_with_input(
    command: &mut Command,
    input: &str,
    what: &str,
) -> (ExitStatus, String, String) {
    let mut child = KillOnDrop::spawn(
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        what,
    );
    let mut stdin = child.child().stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("write the input");
    drop(stdin);
    let status = child
        .wait_within(PROMPTLY, POLL)
        .unwrap_or_else(|| panic!("{what} did not end within {PROMPTLY:?}"));
    let read = |pipe: &mut dyn Read| {
        let mut text = String::new();
        pipe.read_to_string(&mut text).expect("read its output");
        text
    };
    let stdout = read(&mut child.child().stdout.take().expect("piped stdout"));
    let stderr = read(&mut child.child().stderr.take().expect("piped stderr"));
    (status, stdout, stderr)
}
