//! `relay logs`: the daily JSON logs of the hub and the channels, merged in time order, filtered
//! and printed readably; with `-f`, followed as they grow.
//!
//! [`files`] reads the day files, [`filter`] picks the events, [`format`] prints them and
//! [`follow`] keeps reading.

pub(crate) mod files;
pub(crate) mod filter;
pub(crate) mod follow;
pub(crate) mod format;

use std::{
    io::{self, ErrorKind},
    process::ExitCode,
    time::Duration,
};

use clap::Args;
use time::OffsetDateTime;

use crate::{
    cli::{CliError, Global, Outcome, exit},
    signals::Termination,
};
use files::{DayReader, Lines, LogEvent};
use filter::{Filter, Severity};
use format::Printer;

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new events as they are written, until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Only events of the last DURATION: 30s, 10m, 2h, 1d, or combined as in 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = filter::parse_since)]
    pub since: Option<Duration>,
    /// Only the events of one ask, from the hub and both channels.
    #[arg(long = "ask", value_name = "ASK_ID")]
    pub ask: Option<String>,
    /// Only events at least this severe.
    #[arg(long, value_name = "LEVEL", value_enum)]
    pub level: Option<Severity>,
    /// Only events of one session: written by it, or sent from or to it.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
}

/// Why printing stopped before the end.
#[derive(Debug)]
pub(crate) enum Halt {
    /// Whoever read stdout is gone (`relay logs | head`): there is no one left to print for.
    StdoutClosed,
    Failed(CliError),
}

impl From<CliError> for Halt {
    fn from(e: CliError) -> Self {
        Halt::Failed(e)
    }
}

pub(crate) async fn run(args: &LogsArgs, global: &Global) -> Outcome {
    match show_logs(args, global).await {
        Ok(()) | Err(Halt::StdoutClosed) => Ok(ExitCode::from(exit::SUCCESS)),
        Err(Halt::Failed(e)) => Err(e),
    }
}

async fn show_logs(args: &LogsArgs, global: &Global) -> Result<(), Halt> {
    let logs = global.data()?.logs();
    let filter = Filter {
        // A duration too long to subtract from now reaches back before any log.
        since: args
            .since
            .and_then(|since| OffsetDateTime::now_utc().checked_sub(since.try_into().ok()?)),
        level: args.level,
        session: args.session.clone(),
        ask: args.ask.clone(),
    };
    let printer = Printer::for_stdout(global.json);
    // Armed before anything is read, so that a signal during the first pass ends `-f` cleanly
    // instead of killing the process.
    let stop = args
        .follow
        .then(Termination::try_catch)
        .transpose()
        .map_err(|e| CliError::failure(format!("cannot watch for SIGINT and SIGTERM: {e}")))?;

    let cannot_read =
        |e: io::Error| CliError::failure(format!("cannot read {}: {e}", logs.display()));
    let days = match files::list_days(&logs) {
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        days => days.map_err(cannot_read)?,
    };
    if days.is_empty() {
        return Err(CliError::failure(format!(
            "there are no log files in {} (relay.YYYY-MM-DD.log); the hub and the channels write them once a session uses the relay",
            logs.display()
        ))
        .into());
    }

    let mut events = Vec::new();
    // The files of the latest day read so far; a day has two while processes of a build before
    // tracing-appender still write the old name.
    let mut latest: Vec<DayReader> = Vec::new();
    for day in days.iter().filter(|day| filter.wants_day(day.date)) {
        let mut reader = DayReader::open(day)?;
        events.extend(keep_events(reader.read_appended()?));
        if latest
            .first()
            .is_some_and(|earlier| earlier.date() < day.date)
        {
            for earlier in latest.drain(..) {
                events.extend(keep_events(earlier.finish().into_iter().collect()));
            }
        }
        latest.push(reader);
    }
    // Without -f the latest files are complete as they are; with -f their unfinished lines are
    // followed.
    if stop.is_none() {
        for reader in latest.drain(..) {
            events.extend(keep_events(reader.finish().into_iter().collect()));
        }
    }
    print(events, &filter, printer)?;

    match stop {
        Some(stop) => {
            follow::follow(
                &logs,
                latest,
                |date| filter.wants_day(date),
                stop,
                &mut |lines| print(keep_events(lines), &filter, printer),
            )
            .await
        }
        None => Ok(()),
    }
}

/// The events among `lines`; each line that is not one is reported on stderr.
fn keep_events(lines: Lines) -> Vec<LogEvent> {
    lines
        .into_iter()
        .filter_map(|line| line.map_err(|skipped| errln!("relay: {skipped}")).ok())
        .collect()
}

/// Prints the events `filter` admits in time order. The sort is stable, so lines of one process
/// with the same timestamp keep their order in the file.
fn print(mut events: Vec<LogEvent>, filter: &Filter, printer: Printer) -> Result<(), Halt> {
    events.retain(|event| filter.admits(event));
    if events.is_empty() {
        return Ok(());
    }
    events.sort_by_key(|event| event.timestamp);
    printer
        .print(&mut io::stdout().lock(), &events)
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => Halt::StdoutClosed,
            _ => Halt::Failed(CliError::failure(format!("cannot write to stdout: {e}"))),
        })
}
