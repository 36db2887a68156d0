//! `relay logs -f`: keeps printing what the hub and the channels append, across the midnight
//! change of file, until SIGINT or SIGTERM.

use std::{path::Path, time::Duration};

use time::Date;
use tokio::time::{Instant, sleep};

use crate::{
    cli::{
        CliError,
        logs::{
            Halt,
            files::{self, DayReader, Lines, LogDay},
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

/// Follows the log from `current` (the files of the latest day read so far) until SIGINT or
/// SIGTERM, caught by `stop`. Files that appear for that day or a later one are followed too (a
/// day has two while processes of a build before tracing-appender still write the old name).
/// When a later day begins, the earlier day's files are still read for [`LATE_LINE_GRACE`]: a process that opened
/// one before midnight may append a last line after the new file appeared.
pub(crate) async fn follow(
    logs: &Path,
    current: Vec<DayReader>,
    wants_day: impl Fn(Date) -> bool,
    mut stop: Termination,
    show: &mut impl FnMut(Lines) -> Result<(), Halt>,
) -> Result<(), Halt> {
    let cannot_read =
        |e| CliError::failure(format!("cannot read the logs in {}: {e}", logs.display()));
    // Each file followed, with when a later day began if one has.
    let mut followed: Vec<(DayReader, Option<Instant>)> =
        current.into_iter().map(|reader| (reader, None)).collect();
    loop {
        tokio::select! {
            () = stop.recv() => return Ok(()),
            () = sleep(POLL) => {}
        }
        // Look for new files before draining: then every line appended to a file before a later
        // day's appeared is read before the switch.
        let latest = followed.iter().map(|(reader, _)| reader.date()).max();
        let new: Vec<LogDay> = files::list_days(logs)
            .map_err(cannot_read)?
            .into_iter()
            .filter(|day| {
                latest.is_none_or(|latest| day.date >= latest)
                    && wants_day(day.date)
                    && !followed.iter().any(|(reader, _)| reader.path() == day.path)
            })
            .collect();
        let mut lines = Lines::new();
        for (reader, _) in &mut followed {
            lines.extend(reader.read_appended()?);
        }
        for day in &new {
            let mut reader = DayReader::open(day)?;
            lines.extend(reader.read_appended()?);
            followed.push((reader, None));
        }
        let latest = followed.iter().map(|(reader, _)| reader.date()).max();
        let mut kept = Vec::with_capacity(followed.len());
        for (reader, ended) in followed {
            let ended = ended.or_else(|| (Some(reader.date()) < latest).then(Instant::now));
            match ended {
                Some(since) if since.elapsed() >= LATE_LINE_GRACE => lines.extend(reader.finish()),
                _ => kept.push((reader, ended)),
            }
        }
        followed = kept;
        show(lines)?;
    }
}
