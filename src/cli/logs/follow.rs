//! `relay logs -f`: keeps printing what the hub and the channels append, across the midnight
//! change of file, until SIGINT or SIGTERM.

use std::{
    path::Path,
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use time::Date;

use crate::{
    cli::{
        CliError,
        logs::{
            Halt,
            files::{self, DayReader, Lines},
        },
    },
    signals::Termination,
};

/// How often the files are checked for new lines. A log line is a few hundred bytes a few times
/// per message, so polling costs nothing, and needs no file-watching crate.
const POLL: Duration = Duration::from_millis(200);

/// How long the day that ended is still read after the next day's file appeared: a process that
/// stamped a line just before midnight writes it within moments.
const LATE_LINE_GRACE: Duration = Duration::from_secs(10);

/// A receiver that gets one message on SIGINT or SIGTERM. The handlers are installed before this
/// returns, so a signal sent once following has begun ends it cleanly instead of killing the
/// process; a thread with its own small runtime waits for them, since `relay logs` runs outside
/// any runtime.
pub fn on_termination() -> Result<Receiver<()>, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the signal watcher: {e}")))?;
    let mut termination = {
        let _entered = runtime.enter();
        Termination::try_catch()
            .map_err(|e| CliError::failure(format!("cannot watch for SIGINT and SIGTERM: {e}")))?
    };
    let (signalled, stop) = mpsc::channel();
    thread::spawn(move || {
        runtime.block_on(termination.recv());
        let _ = signalled.send(());
    });
    Ok(stop)
}

/// Follows the log from `current` (the file of the latest day read so far, if any) until `stop`
/// says so. When a later day's file appears, the current one is read to its end first, and is
/// still read for [`LATE_LINE_GRACE`]: a process that opened it before midnight may append a last
/// line after the new file appeared.
pub fn follow(
    logs: &Path,
    mut current: Option<DayReader>,
    wants_day: impl Fn(Date) -> bool,
    stop: &Receiver<()>,
    show: &mut impl FnMut(Lines) -> Result<(), Halt>,
) -> Result<(), Halt> {
    let cannot_read =
        |e| CliError::failure(format!("cannot read the logs in {}: {e}", logs.display()));
    let mut previous: Option<(DayReader, Instant)> = None;
    loop {
        match stop.recv_timeout(POLL) {
            Ok(()) => return Ok(()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(CliError::failure("the watcher for SIGINT and SIGTERM stopped").into());
            }
        }
        // Look for a later day before draining: then every line appended to the current file
        // before the later one appeared is read before the switch.
        let after = current.as_ref().map(DayReader::date);
        let next = files::list_days(logs)
            .map_err(cannot_read)?
            .into_iter()
            .find(|day| after.is_none_or(|after| day.date > after) && wants_day(day.date));
        if let Some((older, _)) = &mut previous {
            show(older.read_appended()?)?;
        }
        if let Some(reader) = &mut current {
            show(reader.read_appended()?)?;
        }
        let grace_over = previous
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= LATE_LINE_GRACE);
        if (grace_over || next.is_some())
            && let Some((older, _)) = previous.take()
        {
            show(older.finish().into_iter().collect())?;
        }
        let Some(next) = next else { continue };
        previous = current.take().map(|reader| (reader, Instant::now()));
        let mut reader = DayReader::open(&next)?;
        show(reader.read_appended()?)?;
        current = Some(reader);
    }
}
