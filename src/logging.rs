//! Daily JSON log files shared by the hub and every channel.
//!
//! Every process appends to `DATA/logs/relay.YYYY-MM-DD.log` (UTC date) through
//! tracing-appender's `RollingFileAppender`, which changes file at UTC midnight and keeps the
//! newest files. One event is one JSON object on one line, written whole (alone, or with other
//! whole lines of the hub's) with a single `write` on a file opened with `O_APPEND`, so lines from
//! different processes never interleave. Each line
//! carries `timestamp`, `level`, `component` (`hub` or `channel`), `pid`, `session` (when known),
//! `event` (the tracing message, a snake_case name) and the event's fields, `ask_id` among them.
//!
//! A channel writes each line as it comes (the appender as a plain writer, not its
//! `non_blocking` one: a background writer thread would cost memory in every channel and lose
//! the last lines on exit). The hub, which logs for every message of every session, holds its
//! lines for up to 50 ms and writes them together, whole lines in one write ([`held`]). The
//! appender creates its files with the process's
//! umask (0644 for a channel under the usual umask 022, 0600 for the daemonized hub); they stay
//! private because the data directory and its `logs/` are 0700, which
//! [`crate::paths::DataDir::ensure`] sets before logging starts. Builds before tracing-appender
//! named the files `relay-YYYY-MM-DD.log`; [`file_date`] reads both.

use std::{
    fmt::Write as _,
    path::Path,
    sync::{Arc, RwLock},
};

use serde::Serialize;
use time::{
    Date, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description,
};
use tracing::{Event, Level, Subscriber, field::Field, level_filters::LevelFilter};
use tracing_appender::rolling::{InitError, RollingFileAppender, Rotation};
use tracing_subscriber::{
    filter::Targets,
    fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
};

mod held;

pub(crate) use held::HeldLog;

/// How many days of log files are kept, today included.
pub(crate) const KEEP_DAYS: usize = 7;

/// The day files are `relay.YYYY-MM-DD.log`: the appender joins prefix, date and suffix with dots.
const FILE_PREFIX: &str = "relay";
const FILE_SUFFIX: &str = "log";

/// The level used when `RELAY_LOG` is unset or unreadable.
pub(crate) const DEFAULT_LEVEL: LevelFilter = LevelFilter::INFO;

/// Which process wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    Hub,
    Channel,
    /// A session's waiter (`relay-channel wait`).
    Waiter,
}

impl Component {
    fn as_str(self) -> &'static str {
        match self {
            Component::Hub => "hub",
            Component::Channel => "channel",
            Component::Waiter => "waiter",
        }
    }
}

/// The name the process goes by on the relay, put on every line as `session`; a channel updates
/// it when its session is renamed. The hub has none.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerName(Arc<RwLock<Option<String>>>);

impl PeerName {
    pub(crate) fn set(&self, name: &str) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(name.to_owned());
    }

    fn get(&self) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads `RELAY_LOG` (`error`, `warn`, `info`, `debug`, `trace` or `off`). An unreadable value
/// falls back to [`DEFAULT_LEVEL`] and is reported in the returned message.
pub(crate) fn level_from_env() -> (LevelFilter, Option<String>) {
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

/// Installs the global subscriber that writes JSON lines to the daily files in `logs_dir`,
/// which must exist (the appender prunes it before creating anything), one `write` per line.
/// Without a log file (`logs_dir` not writable) it says so on stderr once and installs nothing:
/// events go nowhere.
pub(crate) fn init(component: Component, logs_dir: &Path, session: PeerName) {
    if let Some(files) = open_day_files(component, logs_dir) {
        install(component, session, files);
    }
}

/// As [`init`], for the hub: its lines are held and written together ([`held`]). The hub
/// spawns [`HeldLog::write_regularly`] and keeps the handle until it ends.
pub(crate) fn init_held(component: Component, logs_dir: &Path) -> Option<HeldLog> {
    let log = HeldLog::new(open_day_files(component, logs_dir)?);
    install(component, PeerName::default(), log.writer());
    Some(log)
}

fn open_day_files(component: Component, logs_dir: &Path) -> Option<RollingFileAppender> {
    day_files(logs_dir)
        .inspect_err(|e| {
            eprintln!(
                "relay-{}: cannot write the log in {}: {e}; logging nothing",
                component.as_str(),
                logs_dir.display()
            );
        })
        .ok()
}

fn install<W>(component: Component, session: PeerName, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (level, complaint) = level_from_env();
    // rmcp's own chatter (every stream start and stop) is noise at info; keep its warnings.
    let filter = Targets::new()
        .with_default(level)
        .with_target("rmcp", level.min(LevelFilter::WARN));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .event_format(JsonLine {
            component,
            session,
            pid: std::process::id(),
        })
        .with_writer(writer)
        .finish()
        .with(filter);
    let installed = tracing::subscriber::set_global_default(subscriber);
    if installed.is_ok()
        && let Some(complaint) = complaint
    {
        tracing::warn!(detail = %complaint, "bad_log_level");
    }
}

/// The appender of the day files in `logs_dir`, pruning them to a week.
fn day_files(logs_dir: &Path) -> Result<RollingFileAppender, InitError> {
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX)
        // The appender counts files, and prunes to one less than this before it opens today's:
        // once today's exists (every start after the day's first), KEEP_DAYS + 1 leaves today's
        // and the six days before it, as many days as KEEP_DAYS says.
        .max_log_files(KEEP_DAYS + 1)
        .build(logs_dir)
}

/// Formats one event as one JSON object.
struct JsonLine {
    component: Component,
    session: PeerName,
    /// Read once: the logging starts after the hub daemonized, and `getpid` per line was a
    /// system call per line.
    pid: u32,
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
        let mut line = JsonObject::new();
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        line.put("timestamp", &now);
        line.put("level", level_name(*event.metadata().level()));
        line.put("component", self.component.as_str());
        line.put("pid", &self.pid);
        // A line names one session: the event's own `session` field when it has one.
        if event.metadata().fields().field("session").is_none()
            && let Some(session) = self.session.get()
        {
            line.put("session", &session);
        }
        event.record(&mut FieldCollector(&mut line));
        writer.write_str(&line.finish()?)
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

/// One line's JSON object, written key by key as the event is read: building a map first (and
/// sorting its keys) cost the hub more than anything else in logging a message.
struct JsonObject(Vec<u8>);

impl JsonObject {
    fn new() -> JsonObject {
        let mut bytes = Vec::with_capacity(256);
        bytes.push(b'{');
        JsonObject(bytes)
    }

    fn put(&mut self, key: &str, value: &(impl Serialize + ?Sized)) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        let _ = serde_json::to_writer(&mut self.0, key);
        self.0.push(b':');
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    /// The object, closed, with its newline.
    fn finish(mut self) -> Result<String, std::fmt::Error> {
        self.0.extend_from_slice(b"}\n");
        String::from_utf8(self.0).map_err(|_| std::fmt::Error)
    }
}

/// Collects an event's fields; the message becomes `event`.
struct FieldCollector<'a>(&'a mut JsonObject);

impl FieldCollector<'_> {
    fn put(&mut self, field: &Field, value: &(impl Serialize + ?Sized)) {
        match field.name() {
            "message" => self.0.put("event", value),
            // The line's own keys say who wrote it; a field of the same name must not replace them.
            reserved @ ("timestamp" | "level" | "component" | "pid" | "event") => {
                self.0.put(&format!("field_{reserved}"), value);
            }
            name => self.0.put(name, value),
        }
    }
}

impl tracing::field::Visit for FieldCollector<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, &value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.put(field, text.as_str());
    }
}

/// The date of a day file: `relay.YYYY-MM-DD.log` as the appender names it, or
/// `relay-YYYY-MM-DD.log` as releases before it did; `None` for any other name.
pub(crate) fn file_date(name: &str) -> Option<Date> {
    let day = name
        .strip_prefix(FILE_PREFIX)?
        .strip_prefix(['.', '-'])?
        .strip_suffix(FILE_SUFFIX)?
        .strip_suffix('.')?;
    Date::parse(day, format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests {
    use std::{fs, io::Write};

    use time::macros::date;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// What a subscriber with [`JsonLine`] writes, for the test below.
    #[derive(Clone, Default)]
    struct Written(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Each event is one JSON object on one line: the line's own keys, the session (the event's
    /// own `session` field over the process's), the message as `event`, every field escaped as
    /// JSON, and a field named like one of the line's keys kept apart.
    #[test]
    fn an_event_is_one_json_object_on_one_line() {
        let written = Written::default();
        let session = PeerName::default();
        session.set("alpha");
        let into = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine {
                component: Component::Hub,
                session,
                pid: 7,
            })
            .with_writer(move || into.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                session = "beta",
                pid = 3u64,
                event = "x",
                detail = "a \"b\"\nc",
                "peer_renamed"
            );
            tracing::warn!(n = 5u64, ok = true, "plain");
        });
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["event"], "peer_renamed");
        assert_eq!(lines[0]["session"], "beta");
        assert_eq!(lines[0]["pid"], 7);
        assert_eq!(lines[0]["field_pid"], 3);
        assert_eq!(lines[0]["field_event"], "x");
        assert_eq!(text.lines().next().unwrap().matches("\"event\"").count(), 1);
        assert_eq!(lines[0]["detail"], "a \"b\"\nc");
        assert_eq!(lines[0]["component"], "hub");
        assert_eq!(lines[1]["session"], "alpha");
        assert_eq!(lines[1]["level"], "warn");
        assert_eq!(
            (lines[1]["n"].as_u64(), lines[1]["ok"].as_bool()),
            (Some(5), Some(true))
        );
        assert!(
            text.matches("\"session\"").count() == 2,
            "one session key per line: {text}"
        );
    }

    #[test]
    fn reads_the_date_of_both_file_names() {
        assert_eq!(
            file_date("relay.2026-11-02.log"),
            Some(date!(2026 - 11 - 02))
        );
        assert_eq!(
            file_date("relay-2026-11-02.log"),
            Some(date!(2026 - 11 - 02))
        );
        assert_eq!(file_date("relay.2026-13-02.log"), None);
        assert_eq!(file_date("relay_2026-11-02.log"), None);
        assert_eq!(file_date("relay.2026-11-02.log.1"), None);
        assert_eq!(file_date("other.txt"), None);
    }

    /// The appender names today's file so that [`file_date`] reads it back, writes each line
    /// whole, and keeps a week of files: today's and the six days before.
    #[test]
    fn the_appender_writes_the_day_file_and_keeps_a_week() {
        let dir = tempfile::tempdir().unwrap();
        let today = OffsetDateTime::now_utc().date();
        let mut names = Vec::new();
        for back in (1..=9).rev() {
            let day = today - time::Duration::days(back);
            let name = if back % 2 == 0 {
                format!("relay-{day}.log")
            } else {
                format!("relay.{day}.log")
            };
            fs::write(dir.path().join(&name), "{}\n").unwrap();
            // The appender prunes the oldest by creation time.
            std::thread::sleep(std::time::Duration::from_millis(10));
            names.push(name);
        }
        fs::write(dir.path().join("other.txt"), "").unwrap();
        for _ in 0..2 {
            let files = day_files(dir.path()).unwrap();
            files
                .make_writer()
                .write_all(b"{\"event\":\"x\"}\n")
                .unwrap();
        }
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort_by_key(|name| file_date(name));
        let today_file = format!("relay.{today}.log");
        assert_eq!(file_date(&today_file), Some(today));
        let mut kept: Vec<String> = names[names.len() - 6..].to_vec();
        kept.insert(0, "other.txt".to_owned());
        kept.push(today_file.clone());
        assert_eq!(left, kept);
        assert_eq!(
            fs::read_to_string(dir.path().join(today_file)).unwrap(),
            "{\"event\":\"x\"}\n{\"event\":\"x\"}\n"
        );
    }
}
