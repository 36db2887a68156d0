//! The hub's log lines, held for a moment and written together.
//!
//! A hub at the default level logs a line or two per message; written one by one, that was a
//! system call per line, as many as the message itself needed. Held lines go out in one
//! `write` (whole lines, to the `O_APPEND` day file, so they never interleave with another
//! process's) within [`WRITE_WITHIN`] of the first of them, or at once when [`HOLD_AT_MOST`]
//! bytes wait (a little later while the hub's one thread is busy). A crash loses the lines of
//! about the last [`WRITE_WITHIN`]; a hub that exits, fails or panics writes what it holds first.

use std::{
    io::{self, Write},
    sync::{Arc, Mutex, TryLockError},
    time::Duration,
};

use tokio::sync::Notify;
use tracing_appender::rolling::RollingFileAppender;
use tracing_subscriber::fmt::MakeWriter;

use crate::client::lock;

/// How long a line may wait before it is written.
pub(crate) const WRITE_WITHIN: Duration = Duration::from_millis(50);

/// What may wait at once; a burst past it is written at once.
const HOLD_AT_MOST: usize = 64 * 1024;

/// The lines not written yet, and where they go.
struct HeldLines {
    held: Mutex<Hold>,
    files: RollingFileAppender,
    /// Told when a line comes to an empty hold.
    first_held: Notify,
}

/// What waits, and whether anything may wait still; one lock for both, so no line can slip into
/// the hold after the last write of it.
#[derive(Default)]
struct Hold {
    lines: Vec<u8>,
    /// Set once the hub is done: lines are then written as they come.
    through: bool,
}

impl HeldLines {
    fn new(files: RollingFileAppender) -> Arc<HeldLines> {
        Arc::new(HeldLines {
            held: Mutex::new(Hold::default()),
            files,
            first_held: Notify::new(),
        })
    }

    fn hold(&self, line: &[u8]) -> io::Result<()> {
        let mut held = lock(&self.held);
        if held.through {
            return self.files.make_writer().write_all(line);
        }
        if held.lines.is_empty() {
            self.first_held.notify_one();
        }
        held.lines.extend_from_slice(line);
        if held.lines.len() >= HOLD_AT_MOST {
            self.write_out(&mut held.lines)?;
        }
        Ok(())
    }

    /// Writes what is held, in one write. The hold stays locked meanwhile, so that lines reach
    /// the file in the order they were logged.
    fn write_out(&self, held: &mut Vec<u8>) -> io::Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        let written = self.files.make_writer().write_all(held);
        held.clear();
        if held.capacity() > HOLD_AT_MOST {
            held.shrink_to(HOLD_AT_MOST);
        }
        written
    }

    fn flush(&self) {
        let _ = self.write_out(&mut lock(&self.held).lines);
    }

    async fn write_regularly(self: Arc<Self>) {
        loop {
            self.first_held.notified().await;
            tokio::time::sleep(WRITE_WITHIN).await;
            self.flush();
        }
    }

    /// Writes what is held, and every later line as it comes: the hub is ending.
    fn write_through(&self) {
        let mut held = lock(&self.held);
        held.through = true;
        let _ = self.write_out(&mut held.lines);
    }

    /// Writes what is held before a panic's message: the lines that led to it matter most. A
    /// panic while the hold is locked leaves it as it is rather than wait for itself.
    fn write_before_panics(self: &Arc<Self>) {
        let held = Arc::downgrade(self);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(lines) = held.upgrade() {
                let locked = match lines.held.try_lock() {
                    Ok(held) => Some(held),
                    Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    Err(TryLockError::WouldBlock) => None,
                };
                if let Some(mut held) = locked {
                    let _ = lines.write_out(&mut held.lines);
                }
            }
            previous(info);
        }));
    }
}

/// One event's line, written whole by the subscriber, goes into the hold (tracing-subscriber
/// makes a writer of an `Arc` of any type that `&` writes).
impl Write for &HeldLines {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.hold(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The hub's hold on its log lines: [`HeldLog::write_regularly`] runs on the hub's runtime, and
/// dropping the handle writes what is held and every later line directly.
pub(crate) struct HeldLog(Arc<HeldLines>);

impl HeldLog {
    /// Holds the lines bound for `files`; [`HeldLog::writer`] is what the subscriber writes to.
    pub(crate) fn new(files: RollingFileAppender) -> HeldLog {
        let lines = HeldLines::new(files);
        lines.write_before_panics();
        HeldLog(lines)
    }

    pub(crate) fn writer(&self) -> impl for<'a> MakeWriter<'a> + Send + Sync + 'static {
        self.0.clone()
    }

    /// The task that writes held lines within [`WRITE_WITHIN`]; spawn it on the hub's runtime.
    pub(crate) fn write_regularly(&self) -> impl Future<Output = ()> + 'static {
        self.0.clone().write_regularly()
    }
}

impl Drop for HeldLog {
    fn drop(&mut self) {
        self.0.write_through();
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn day_file(dir: &tempfile::TempDir) -> String {
        fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect()
    }

    fn log_line(log: &HeldLog, line: &str) {
        log.writer()
            .make_writer()
            .write_all(line.as_bytes())
            .unwrap();
    }

    /// Lines wait for the first of them to be [`WRITE_WITHIN`] old, then go out together, in
    /// order; a hub that ends writes what it holds, and later lines directly.
    #[tokio::test(start_paused = true)]
    async fn held_lines_are_written_within_the_bound_and_when_the_hub_ends() {
        let dir = tempfile::tempdir().unwrap();
        let log = HeldLog::new(super::super::day_files(dir.path()).unwrap());
        tokio::spawn(log.write_regularly());
        log_line(&log, "{\"n\":1}\n");
        tokio::time::sleep(WRITE_WITHIN / 2).await;
        log_line(&log, "{\"n\":2}\n");
        assert_eq!(day_file(&dir), "", "held, not written yet");
        tokio::time::sleep(WRITE_WITHIN / 2 + Duration::from_millis(1)).await;
        assert_eq!(day_file(&dir), "{\"n\":1}\n{\"n\":2}\n");

        log_line(&log, "{\"n\":3}\n");
        let writer = log.writer();
        drop(log);
        assert_eq!(day_file(&dir), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
        writer.make_writer().write_all(b"{\"n\":4}\n").unwrap();
        assert!(
            day_file(&dir).ends_with("{\"n\":3}\n{\"n\":4}\n"),
            "written through"
        );
    }

    /// A burst is written as soon as [`HOLD_AT_MOST`] bytes wait, not held past it.
    #[tokio::test(start_paused = true)]
    async fn a_burst_is_written_once_the_hold_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let log = HeldLog::new(super::super::day_files(dir.path()).unwrap());
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(990));
        for _ in 0..HOLD_AT_MOST / line.len() {
            log_line(&log, &line);
        }
        assert_eq!(day_file(&dir), "");
        log_line(&log, &line);
        let written = day_file(&dir);
        assert_eq!(written.len(), (HOLD_AT_MOST / line.len() + 1) * line.len());
        assert!(
            written.lines().all(|l| l.len() == line.len() - 1),
            "whole lines"
        );
    }
}
