//! Daily JSON log files shared by the hub and every channel.
//!
//! Every process appends to `DATA/logs/relay-YYYY-MM-DD.log` (UTC date). One event is one JSON
//! object on one line, written with a single `write` on a file opened with `O_APPEND`, so lines
//! from different processes never interleave. Each line carries `timestamp`, `level`,
//! `component` (`hub` or `channel`), `pid`, `session` (when known), `event` (the tracing
//! message, a snake_case name) and the event's fields, `ask_id` among them.
//!
//! Writes are synchronous: the volume is a few lines per message, and a background writer thread
//! would cost memory in every channel and lose the last lines on exit.

use std::{
    fmt::Write as _,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use serde_json::{Map, Value};
use time::{
    Date, Duration, OffsetDateTime, format_description::well_known::Rfc3339,
    macros::format_description,
};
use tracing::{Event, Level, Subscriber, field::Field, level_filters::LevelFilter};
use tracing_subscriber::{
    filter::Targets,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
};

/// How many days of log files are kept, today included.
pub const KEEP_DAYS: i64 = 7;

/// The level used when `RELAY_LOG` is unset or unreadable.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::INFO;

/// Which process wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Hub,
    Channel,
}

impl Component {
    fn as_str(self) -> &'static str {
        match self {
            Component::Hub => "hub",
            Component::Channel => "channel",
        }
    }
}

/// The session name that goes on every line; a channel updates it when it is renamed.
#[derive(Debug, Clone, Default)]
pub struct SessionLabel(Arc<RwLock<Option<String>>>);

impl SessionLabel {
    pub fn set(&self, name: &str) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(name.to_owned());
    }

    fn get(&self) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads `RELAY_LOG` (`error`, `warn`, `info`, `debug`, `trace` or `off`). An unreadable value
/// falls back to [`DEFAULT_LEVEL`] and is reported in the returned message.
pub fn level_from_env() -> (LevelFilter, Option<String>) {
    match std::env::var("RELAY_LOG") {
        Err(_) => (DEFAULT_LEVEL, None),
        Ok(value) => match value.trim().parse::<LevelFilter>() {
            Ok(level) => (level, None),
            Err(_) => (
                DEFAULT_LEVEL,
                Some(format!(
                    "RELAY_LOG={value:?} is not a level (error, warn, info, debug, trace, off); using info"
                )),
            ),
        },
    }
}

/// Installs the global subscriber that writes JSON lines to the daily files in `logs_dir`.
pub fn init(component: Component, logs_dir: &Path, session: SessionLabel) {
    let (level, complaint) = level_from_env();
    // rmcp's own chatter (every stream start and stop) is noise at info; keep its warnings.
    let filter = Targets::new()
        .with_default(level)
        .with_target("rmcp", level.min(LevelFilter::WARN));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .event_format(JsonLine { component, session })
        .with_writer(Mutex::new(DailyFile::new(logs_dir)))
        .finish()
        .with(filter);
    let installed = tracing::subscriber::set_global_default(subscriber);
    if installed.is_ok()
        && let Some(complaint) = complaint
    {
        tracing::warn!(detail = %complaint, "bad_log_level");
    }
}

/// Formats one event as one JSON object.
struct JsonLine {
    component: Component,
    session: SessionLabel,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Map::new();
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), level_name(*event.metadata().level()).into());
        line.insert("component".into(), self.component.as_str().into());
        line.insert("pid".into(), std::process::id().into());
        if let Some(session) = self.session.get() {
            line.insert("session".into(), session.into());
        }
        event.record(&mut FieldCollector(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Collects an event's fields; the message becomes `event`.
struct FieldCollector<'a>(&'a mut Map<String, Value>);

impl FieldCollector<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let key = match field.name() {
            "message" => "event",
            // The line's own keys say who wrote it; a field of the same name must not replace them.
            reserved @ ("timestamp" | "level" | "component" | "pid") => {
                self.0.insert(format!("field_{reserved}"), value);
                return;
            }
            name => name,
        };
        self.0.insert(key.to_owned(), value);
    }
}

impl tracing::field::Visit for FieldCollector<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.put(field, text.into());
    }
}

/// `relay-YYYY-MM-DD.log` for `date`.
pub fn file_name(date: Date) -> String {
    let day = date
        .format(format_description!("[year]-[month]-[day]"))
        .expect("a calendar date always formats");
    format!("relay-{day}.log")
}

/// The date of a file named by [`file_name`]; `None` for any other name.
pub fn file_date(name: &str) -> Option<Date> {
    let day = name.strip_prefix("relay-")?.strip_suffix(".log")?;
    Date::parse(day, format_description!("[year]-[month]-[day]")).ok()
}

/// Appends to the file of the current UTC day, switching at midnight and pruning old days.
struct DailyFile {
    dir: PathBuf,
    current: Option<(Date, File)>,
}

impl DailyFile {
    fn new(dir: &Path) -> Self {
        DailyFile {
            dir: dir.to_owned(),
            current: None,
        }
    }

    fn file_for_today(&mut self) -> io::Result<&mut File> {
        let today = OffsetDateTime::now_utc().date();
        if self.current.as_ref().map(|(day, _)| *day) != Some(today) {
            fs::create_dir_all(&self.dir)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(self.dir.join(file_name(today)))?;
            prune(&self.dir, today);
            self.current = Some((today, file));
        }
        Ok(&mut self.current.as_mut().expect("just opened").1)
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file_for_today()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Removes log files older than [`KEEP_DAYS`]. Failures are ignored: another process may be
/// pruning the same files, and a log file left behind is harmless.
fn prune(dir: &Path, today: Date) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let oldest_kept = file_name(today - Duration::days(KEEP_DAYS - 1));
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let dated =
            name.len() == oldest_kept.len() && name.starts_with("relay-") && name.ends_with(".log");
        if dated && name < oldest_kept.as_str() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn names_files_by_utc_day() {
        assert_eq!(file_name(date!(2026 - 11 - 02)), "relay-2026-11-02.log");
        assert_eq!(
            file_date("relay-2026-11-02.log"),
            Some(date!(2026 - 11 - 02))
        );
        assert_eq!(file_date("relay-2026-13-02.log"), None);
        assert_eq!(file_date("other.txt"), None);
    }

    #[test]
    fn prunes_files_older_than_a_week() {
        let dir = tempfile::tempdir().unwrap();
        let today = date!(2026 - 11 - 22);
        for day in [date!(2026 - 11 - 15), date!(2026 - 11 - 16), today] {
            fs::write(dir.path().join(file_name(day)), "{}\n").unwrap();
        }
        fs::write(dir.path().join("other.txt"), "").unwrap();
        prune(dir.path(), today);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["other.txt", "relay-2026-11-16.log", "relay-2026-11-22.log"]
        );
    }
}
