//! The daily log files: which days there are, and a day's lines as they are appended, with a
//! partial last line held back until its newline arrives.

use std::{
    fmt,
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use time::{Date, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{cli::CliError, logging};

/// One event of the log: a JSON object with a readable `timestamp`.
#[derive(Debug, Clone)]
pub(crate) struct LogEvent {
    pub timestamp: OffsetDateTime,
    pub fields: Map<String, Value>,
    /// The line as written, printed unchanged under `--json`.
    pub line: String,
}

impl LogEvent {
    /// Reads one line; the error says what is wrong with it.
    pub(crate) fn parse(line: &str) -> Result<LogEvent, &'static str> {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
            return Err("is not a JSON log line");
        };
        let Some(Value::String(stamp)) = fields.get("timestamp") else {
            return Err("has no \"timestamp\"");
        };
        let timestamp = OffsetDateTime::parse(stamp, &Rfc3339)
            .map_err(|_| "has a \"timestamp\" that is not RFC 3339")?;
        Ok(LogEvent {
            timestamp,
            line: line.to_owned(),
            fields,
        })
    }

    /// The field `key` when it is a string.
    pub(crate) fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// A line that is not a log event, with where it is, for the message on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub file: String,
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {} {}; skipped",
            self.file, self.line, self.reason
        )
    }
}

/// What reading a file gave: events, and lines that are not events.
pub(crate) type Lines = Vec<Result<LogEvent, Skipped>>;

/// A file of one UTC day. A day has two while processes of a release before tracing-appender
/// still write the old name (`relay-YYYY-MM-DD.log` beside `relay.YYYY-MM-DD.log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogDay {
    pub date: Date,
    pub path: PathBuf,
}

/// The day files in `dir`, oldest first (by name within a day). Other files are not the relay's
/// and are passed over.
pub(crate) fn list_days(dir: &Path) -> io::Result<Vec<LogDay>> {
    let mut days = Vec::new();
    for entry in dir.read_dir()? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(date) = name.to_str().and_then(logging::file_date) {
            days.push(LogDay {
                date,
                path: entry.path(),
            });
        }
    }
    days.sort_by(|a, b| (a.date, &a.path).cmp(&(b.date, &b.path)));
    Ok(days)
}

fn unreadable(path: &Path, e: &io::Error) -> CliError {
    CliError::failure(format!("cannot read the log file {}: {e}", path.display()))
}

/// Reads one day's file from where the last read stopped, so that following it costs only the
/// appended bytes.
pub(crate) struct DayReader {
    date: Date,
    path: PathBuf,
    name: String,
    file: File,
    /// The start of a line whose newline has not been written yet.
    pending: Vec<u8>,
    lines_read: usize,
}

impl DayReader {
    pub(crate) fn open(day: &LogDay) -> Result<DayReader, CliError> {
        let name = day.path.file_name().map_or_else(
            || day.path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        Ok(DayReader {
            date: day.date,
            path: day.path.clone(),
            name,
            file: File::open(&day.path).map_err(|e| unreadable(&day.path, &e))?,
            pending: Vec::new(),
            lines_read: 0,
        })
    }

    pub(crate) fn date(&self) -> Date {
        self.date
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The complete lines appended since the last read.
    pub(crate) fn read_appended(&mut self) -> Result<Lines, CliError> {
        self.file
            .read_to_end(&mut self.pending)
            .map_err(|e| unreadable(&self.path, &e))?;
        let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        Ok(complete[..last_newline]
            .split(|b| *b == b'\n')
            .map(|line| self.take(line))
            .collect())
    }

    /// Ends reading the file: a last line without a newline is read as it is, since nothing
    /// more will be appended to it (the file is complete, or a later day has begun).
    pub(crate) fn finish(mut self) -> Option<Result<LogEvent, Skipped>> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then(|| self.take(&rest))
    }

    fn take(&mut self, line: &[u8]) -> Result<LogEvent, Skipped> {
        self.lines_read += 1;
        let skipped = |reason| Skipped {
            file: self.name.clone(),
            line: self.lines_read,
            reason,
        };
        let text = std::str::from_utf8(line).map_err(|_| skipped("is not UTF-8 text"))?;
        LogEvent::parse(text).map_err(skipped)
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, io::Write};

    use time::macros::date;

    use super::*;

    const LINE: &str = r#"{"timestamp":"2026-12-01T10:00:00Z","level":"info","event":"one"}"#;

    fn names(lines: &Lines) -> Vec<String> {
        lines
            .iter()
            .map(|line| match line {
                Ok(event) => event.str_field("event").unwrap().to_owned(),
                Err(skipped) => skipped.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_partial_line_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let day = LogDay {
            date: date!(2026 - 12 - 01),
            path: dir.path().join("relay-2026-12-01.log"),
        };
        let mut file = fs::File::create(&day.path).unwrap();
        let mut reader = DayReader::open(&day).unwrap();
        write!(file, "{LINE}\n{}", &LINE[..20]).unwrap();
        assert_eq!(names(&reader.read_appended().unwrap()), ["one"]);
        assert!(reader.read_appended().unwrap().is_empty());
        write!(file, "{}\nnot json\n", &LINE[20..]).unwrap();
        assert_eq!(
            names(&reader.read_appended().unwrap()),
            [
                "one",
                "relay-2026-12-01.log line 3 is not a JSON log line; skipped"
            ]
        );
        write!(file, r#"{{"level":"info"}}"#).unwrap();
        assert!(reader.read_appended().unwrap().is_empty());
        let last = reader.finish().unwrap().unwrap_err();
        assert_eq!(
            last.to_string(),
            "relay-2026-12-01.log line 4 has no \"timestamp\"; skipped"
        );
    }

    #[test]
    fn days_are_listed_oldest_first_and_other_files_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "relay.2026-12-01.log",
            "relay-2026-12-01.log",
            "relay.2026-11-30.log",
            "relay-2026-13-01.log",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let days: Vec<(Date, String)> = list_days(dir.path())
            .unwrap()
            .iter()
            .map(|day| {
                let name = day.path.file_name().unwrap().to_str().unwrap();
                (day.date, name.to_owned())
            })
            .collect();
        assert_eq!(
            days,
            [
                (date!(2026 - 11 - 30), "relay.2026-11-30.log".to_owned()),
                (date!(2026 - 12 - 01), "relay-2026-12-01.log".to_owned()),
                (date!(2026 - 12 - 01), "relay.2026-12-01.log".to_owned()),
            ]
        );
    }

    #[test]
    fn lines_need_an_object_with_an_rfc3339_timestamp() {
        assert_eq!(
            LogEvent::parse("[1]").unwrap_err(),
            "is not a JSON log line"
        );
        assert_eq!(
            LogEvent::parse(r#"{"timestamp":"yesterday"}"#).unwrap_err(),
            "has a \"timestamp\" that is not RFC 3339"
        );
        assert!(LogEvent::parse(LINE).is_ok());
    }
}
