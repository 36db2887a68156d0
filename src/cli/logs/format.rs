//! How `relay logs` prints an event: one aligned line for people, coloured on a terminal, or the
//! original JSON line for scripts.

use std::io::{self, IsTerminal, Write};

use serde_json::Value;
use time::macros::format_description;

use crate::cli::{logs::files::LogEvent, output::printable};

/// The fields that have their own column; the others follow the event name as `key=value`.
const COLUMNS: [&str; 6] = ["timestamp", "level", "component", "pid", "session", "event"];

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Prints events to stdout in the form chosen once for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Printer {
    Json,
    Human { colour: bool },
}

impl Printer {
    /// JSON under `--json`; else text, coloured only on a terminal and when `NO_COLOR` is unset
    /// or empty (<https://no-color.org>).
    pub(crate) fn for_stdout(json: bool) -> Printer {
        if json {
            return Printer::Json;
        }
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Printer::Human {
            colour: io::stdout().is_terminal() && !no_color,
        }
    }

    pub(crate) fn print(self, out: &mut impl Write, events: &[LogEvent]) -> io::Result<()> {
        for event in events {
            match self {
                Printer::Json => writeln!(out, "{}", event.line.trim_end())?,
                Printer::Human { colour } => writeln!(out, "{}", human(event, colour))?,
            }
        }
        out.flush()
    }
}

/// `2026-12-01 13:55:57.123  INFO   hub[4242]         -             ask_sent  ask_id=ask-x-1 bytes=12`:
/// UTC time to the millisecond, level, process, session (`-` when unknown), event, other fields.
pub(crate) fn human(event: &LogEvent, colour: bool) -> String {
    let time = event
        .timestamp
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .unwrap_or_else(|_| event.str_field("timestamp").unwrap_or_default().to_owned());
    let level_name = event.str_field("level").unwrap_or("?");
    let level = format!("{:<5}", level_name.to_uppercase());
    let component = event.str_field("component").unwrap_or("?");
    let process = match event.fields.get("pid") {
        Some(pid) => format!("{component}[{pid}]"),
        None => component.to_owned(),
    };
    let session = event.str_field("session").unwrap_or("-");
    let name = event.str_field("event").unwrap_or("-");
    let mut line = if colour {
        format!(
            "{DIM}{time}{RESET}  {}{level}{RESET}  ",
            level_colour(level_name)
        )
    } else {
        format!("{time}  {level}  ")
    };
    let (process, session, name) = (
        printable(&process, false),
        printable(session, false),
        printable(name, false),
    );
    line.push_str(&format!("{process:<16}  {session:<12}  {name}"));
    let mut separator = "  ";
    for (key, value) in &event.fields {
        if !COLUMNS.contains(&key.as_str()) {
            line.push_str(&format!("{separator}{key}={}", field_value(value)));
            separator = " ";
        }
    }
    line
}

fn level_colour(level: &str) -> &'static str {
    match level {
        "error" => "\x1b[31m",
        "warn" => "\x1b[33m",
        "info" => "\x1b[32m",
        "debug" => "\x1b[34m",
        _ => "\x1b[35m",
    }
}

/// A string as it is when that reads unambiguously, else quoted as JSON; other values as JSON.
fn field_value(value: &Value) -> String {
    match value {
        Value::String(text)
            if !text.is_empty()
                && !text
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=') =>
        {
            text.clone()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> LogEvent {
        LogEvent::parse(line).unwrap()
    }

    #[test]
    fn human_lines_align_columns_and_list_the_other_fields() {
        let sent = event(
            r#"{"ask_id":"ask-x-1","bytes":12,"component":"hub","event":"ask_sent","from":"web","level":"info","pid":4242,"timestamp":"2026-12-01T13:55:57.123456789Z","to":"backend-api"}"#,
        );
        assert_eq!(
            human(&sent, false),
            "2026-12-01 13:55:57.123  INFO   hub[4242]         -             ask_sent  ask_id=ask-x-1 bytes=12 from=web to=backend-api"
        );
        let failed = event(
            r#"{"component":"channel","detail":"no session \"x\"","event":"tool_failed","level":"warn","pid":77,"session":"backend-api","timestamp":"2026-12-01T13:55:58Z","tool":"relay_ask"}"#,
        );
        assert_eq!(
            human(&failed, false),
            r#"2026-12-01 13:55:58.000  WARN   channel[77]       backend-api   tool_failed  detail="no session \"x\"" tool=relay_ask"#
        );
    }

    #[test]
    fn colour_dims_the_time_and_colours_the_level() {
        let line = event(
            r#"{"component":"hub","event":"hub_failed","level":"error","pid":1,"timestamp":"2026-12-01T00:00:00Z"}"#,
        );
        assert_eq!(
            human(&line, true),
            "\x1b[2m2026-12-01 00:00:00.000\x1b[0m  \x1b[31mERROR\x1b[0m  hub[1]            -             hub_failed"
        );
    }

    #[test]
    fn json_prints_the_line_as_written() {
        let text = r#"{"timestamp":"2026-12-01T00:00:00+00:00","level":"info","event":"x"}"#;
        let mut out = Vec::new();
        Printer::Json.print(&mut out, &[event(text)]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("{text}\n"));
    }
}
