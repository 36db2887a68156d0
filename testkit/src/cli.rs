//! Running the `relay` command line in a world: to its end ([`RelayRun`]), or with its stdout
//! read line by line as it is printed ([`RelayStream`]), for commands that keep running
//! (`relay logs -f`) or must be acted on at a known point (`relay demo`).

use std::{
    io::Read,
    process::{ChildStdin, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError},
    thread,
    time::Instant,
};

use serde_json::Value;

use crate::{
    PROMPTLY, RELAY_RUN_LIMIT,
    process::{KillOnDrop, POLL, lines_of},
    world::World,
};

impl World {
    /// Runs `relay ARGS` in this world (data directory from `CLAUDE_PLUGIN_DATA`) to its end.
    pub fn relay(&self, args: &[&str]) -> RelayRun {
        self.stream_relay(args).finish()
    }

    /// Starts `relay ARGS` in this world with its stdout read line by line.
    pub fn stream_relay(&self, args: &[&str]) -> RelayStream {
        let mut command = self.command(self.bins().relay, self.dir.path());
        command.args(args);
        RelayStream::spawn(command)
    }
}

/// What one run of `relay` printed, and its exit status.
#[derive(Debug)]
pub struct RelayRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RelayRun {
    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// Stdout as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{line:?} is not JSON ({e}): {self:?}"))
            })
            .collect()
    }
}

/// A running `relay` whose stdout lines can be awaited one by one. Killed by pid if dropped.
pub struct RelayStream {
    process: KillOnDrop,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl RelayStream {
    /// Starts `command` with stdin from nowhere.
    pub fn spawn(mut command: Command) -> RelayStream {
        command.stdin(Stdio::null());
        RelayStream::spawn_with_stdin(command)
    }

    /// Starts `command` with whatever stdin it was given (see [`RelayStream::stdin`]).
    pub fn spawn_with_stdin(mut command: Command) -> RelayStream {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut process = KillOnDrop::spawn(&mut command, "relay");
        let stdout = process.child().stdout.take().expect("piped stdout");
        let mut stderr = process.child().stderr.take().expect("piped stderr");
        let lines = lines_of(stdout);
        let stderr = Some(thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        }));
        RelayStream {
            process,
            lines,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process's stdin, when it was started with a piped one.
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.process
            .child()
            .stdin
            .as_mut()
            .expect("started with a piped stdin")
    }

    /// The next line on stdout, waiting at most [`PROMPTLY`].
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(PROMPTLY) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("relay printed no line within {PROMPTLY:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("relay closed stdout"),
        }
    }

    /// Reads JSON lines until one satisfies `condition` and returns it, failing the test after
    /// [`PROMPTLY`] or when stdout ends first.
    pub fn json_line_where(&mut self, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PROMPTLY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!("no {what} line within {PROMPTLY:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("stdout ended before a {what} line"),
            };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{line:?} is not JSON ({e})"));
            if condition(&value) {
                return value;
            }
        }
    }

    /// Waits for the end (at most [`RELAY_RUN_LIMIT`]) and returns the status, the stdout lines
    /// not yet taken and stderr.
    pub fn finish(mut self) -> RelayRun {
        let status = self
            .process
            .wait_within(RELAY_RUN_LIMIT, POLL)
            .unwrap_or_else(|| panic!("relay did not finish within {RELAY_RUN_LIMIT:?}"));
        // Bounded per line: a process it started could still hold its stdout open.
        let mut stdout = String::new();
        while let Ok(line) = self.lines.recv_timeout(PROMPTLY) {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        RelayRun {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}
