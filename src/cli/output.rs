//! How `relay` prints: aligned tables and durations for people, JSON for scripts, errors on
//! stderr (and as JSON on stdout under `--json`).

use std::{
    fmt,
    io::{ErrorKind, Write},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use serde::Serialize;
use serde_json::json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::cli::CliError;

/// Set once a write to stdout failed for another reason than its reader leaving.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout without ever panicking (as `print!` does on a closed pipe), so that a command
/// still cleans up and exits normally. A reader that left (`relay demo | head -1`) is no error:
/// there is no one left to tell. Any other failure is said once on stderr, and [`stdout_failed`]
/// makes the command exit 1 at its end.
pub(crate) fn write_stdout(text: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(text).and_then(|()| stdout.flush());
    if let Err(e) = written
        && e.kind() != ErrorKind::BrokenPipe
        && !STDOUT_FAILED.swap(true, Ordering::Relaxed)
    {
        errln!("relay: cannot write to stdout: {e}");
    }
}

/// Writes to stderr without ever panicking (as `eprint!` does on a closed pipe, `relay … 2>&1 |
/// head`). A failure there is not reported: stderr is where it would be reported.
pub(crate) fn write_stderr(text: fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(text).and_then(|()| stderr.flush());
}

/// Whether some output was lost for another reason than a reader that left.
pub(crate) fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// Prints `value` as one line of JSON on stdout.
pub(crate) fn print_json<T: Serialize>(value: &T) {
    let line = serde_json::to_string(value).expect("output values always serialize");
    out!("{line}\n");
}

/// Says why a command failed: a line on stderr, and under `--json` an `error` object on stdout
/// so that a script reading stdout sees it too.
pub(crate) fn report_error(e: &CliError, json: bool) {
    if json {
        print_json(&json!({
            "error": { "code": e.code.map(|code| code.as_str()), "message": e.message }
        }));
    }
    match e.code {
        Some(code) => errln!("relay: {code}: {}", e.message),
        None => errln!("relay: {}", e.message),
    }
}

/// Lays `rows` out in columns under `headers`, two spaces apart, without trailing blanks.
/// `text` safe to print on a terminal: every control character (an escape sequence from a
/// peer's `cwd`, say) written as `\u{..}`, except newlines and tabs when `keep_lines` (a reply's
/// text keeps its lines).
pub(crate) fn printable(text: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !(keep_lines && matches!(c, '\n' | '\t')) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Aligned columns under `headers`; every cell is made [`printable`] on one line.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell, false)).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// How long before `now` the RFC 3339 time `at` was (as the hub writes its times); `None` if it
/// cannot be read or lies ahead.
pub(crate) fn elapsed_since(at: &str, now: OffsetDateTime) -> Option<Duration> {
    let at = OffsetDateTime::parse(at, &Rfc3339).ok()?;
    (now - at).try_into().ok()
}

/// A duration for people: `42s`, `3m 12s`, `2h 5m`, `3d 4h`.
pub(crate) fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\x1b[31mred", false), "a\\u{1b}[31mred");
        assert_eq!(
            printable("two\nlines\tand\r", true),
            "two\nlines\tand\\u{d}"
        );
        assert_eq!(printable("two\nlines", false), "two\\u{a}lines");
        let rows = vec![vec!["/tmp/\x07bell".to_owned()]];
        assert_eq!(table(&["CWD"], &rows), "CWD\n/tmp/\\u{7}bell\n");
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["backend-api".to_owned(), "channel".to_owned()],
            vec!["me".to_owned(), "cli".to_owned()],
        ];
        assert_eq!(
            table(&["NAME", "KIND"], &rows),
            "NAME         KIND\nbackend-api  channel\nme           cli\n"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m 12s");
        assert_eq!(human_duration(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(human_duration(Duration::from_secs(273_600)), "3d 4h");
    }
}
