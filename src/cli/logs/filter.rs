//! Which events `relay logs` shows: `--since`, `--level`, `--session` and `--ask`.

use std::time::Duration;

use clap::ValueEnum;
use time::{Date, OffsetDateTime};

use crate::cli::logs::files::LogEvent;

/// A log level, declared from the most to the least severe so that the derived order is
/// verbosity: an event passes `--level L` when its own level is `<= L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Severity {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Severity {
    /// The level of a log line, as the logger writes it (`error` ... `trace`).
    pub fn of(name: &str) -> Option<Severity> {
        Severity::from_str(name, false).ok()
    }
}

/// The conditions an event must meet; `None` means no condition.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Events at or after this instant (UTC).
    pub since: Option<OffsetDateTime>,
    /// Events at least this severe.
    pub level: Option<Severity>,
    /// Events whose `session`, `from` or `to` is this name: what the session did, and what
    /// was sent to it or by it.
    pub session: Option<String>,
    /// Events whose `ask_id` is this.
    pub ask: Option<String>,
}

impl Filter {
    pub(crate) fn admits(&self, event: &LogEvent) -> bool {
        let recent = self.since.is_none_or(|since| event.timestamp >= since);
        // An unknown level can be neither above nor below a threshold, so a threshold hides it.
        let severe = self.level.is_none_or(|min| {
            event
                .str_field("level")
                .and_then(Severity::of)
                .is_some_and(|level| level <= min)
        });
        let about_session = self.session.as_deref().is_none_or(|name| {
            ["session", "from", "to"]
                .iter()
                .any(|key| event.str_field(key) == Some(name))
        });
        let of_ask = self
            .ask
            .as_deref()
            .is_none_or(|ask| event.str_field("ask_id") == Some(ask));
        recent && severe && about_session && of_ask
    }

    /// Whether the file of `day` can hold an admitted event. A day's file holds only events
    /// stamped before the next midnight (the logger takes the time before it picks the file),
    /// so a day that ended before `since` can be skipped unopened.
    pub(crate) fn wants_day(&self, day: Date) -> bool {
        self.since.is_none_or(|since| day >= since.date())
    }
}

/// Parses `--since`: a number and a unit (`s`, `m`, `h`, `d`), or several, larger units first
/// and each once, as in `1h30m` or `1d12h`.
pub(crate) fn parse_since(text: &str) -> Result<Duration, String> {
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let usage = "use a number and a unit (s, m, h or d), or several larger units first, as in 30s, 10m, 2h, 1d or 1h30m";
    if text.is_empty() {
        return Err(format!("the duration is empty; {usage}"));
    }
    let mut secs: u64 = 0;
    // Units still allowed: only smaller ones than the last, so `30m1h` and `1h1h` are refused.
    let mut allowed: &[(char, u64)] = &UNITS;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration: expected a number at {rest:?}; {usage}"
            ));
        }
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return Err(format!(
                "{text:?} is not a duration: {number} has no unit; {usage}"
            ));
        };
        let Some(position) = allowed.iter().position(|(name, _)| *name == unit) else {
            let problem = if UNITS.iter().any(|(name, _)| *name == unit) {
                format!("the unit {unit:?} comes after a smaller or equal one")
            } else {
                format!("{unit:?} is not a unit")
            };
            return Err(format!("{text:?} is not a duration: {problem}; {usage}"));
        };
        let too_long = || format!("{text:?} is too long a duration");
        let count: u64 = number.parse().map_err(|_| too_long())?;
        let part = count
            .checked_mul(allowed[position].1)
            .ok_or_else(too_long)?;
        secs = secs.checked_add(part).ok_or_else(too_long)?;
        allowed = &allowed[position + 1..];
        rest = &after[unit.len_utf8()..];
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn durations_take_single_and_combined_units() {
        let secs = |text| parse_since(text).map(|d| d.as_secs());
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("10m"), Ok(600));
        assert_eq!(secs("2h"), Ok(7_200));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs("1d2h3m4s"), Ok(93_784));
        assert_eq!(secs("0s"), Ok(0));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        let error = |text| parse_since(text).unwrap_err();
        assert!(error("").contains("empty"));
        assert!(error("10").contains("10 has no unit"));
        assert!(error("5x").contains("'x' is not a unit"));
        assert!(error("m").contains("expected a number"));
        assert!(error("-1h").contains("expected a number"));
        assert!(error("1h 30m").contains("expected a number"));
        assert!(error("30m1h").contains("after a smaller or equal one"));
        assert!(error("1h1h").contains("after a smaller or equal one"));
        assert!(error("99999999999999999999d").contains("too long"));
        assert!(error("999999999999999d").contains("too long"));
    }

    #[test]
    fn levels_order_by_severity() {
        assert_eq!(Severity::of("warn"), Some(Severity::Warn));
        assert_eq!(Severity::of("WARN"), None);
        assert!(Severity::Error < Severity::Warn && Severity::Debug < Severity::Trace);
    }

    fn event(fields: &str) -> LogEvent {
        LogEvent::parse(&format!(
            r#"{{"timestamp":"2026-12-01T10:00:00Z",{fields}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn every_condition_must_hold() {
        let filter = Filter {
            since: Some(datetime!(2026-12-01 09:00 UTC)),
            level: Some(Severity::Info),
            session: Some("web".into()),
            ask: None,
        };
        assert!(filter.admits(&event(r#""level":"warn","session":"web""#)));
        assert!(filter.admits(&event(r#""level":"info","session":"api","to":"web""#)));
        assert!(filter.admits(&event(r#""level":"info","from":"web""#)));
        assert!(!filter.admits(&event(r#""level":"debug","session":"web""#)));
        assert!(!filter.admits(&event(r#""level":"loud","session":"web""#)));
        assert!(!filter.admits(&event(r#""level":"info","session":"api""#)));
        let later = Filter {
            since: Some(datetime!(2026-12-01 10:00:01 UTC)),
            ..Filter::default()
        };
        assert!(!later.admits(&event(r#""level":"info""#)));
        let ask = Filter {
            ask: Some("ask-1".into()),
            ..Filter::default()
        };
        assert!(ask.admits(&event(r#""ask_id":"ask-1""#)));
        assert!(!ask.admits(&event(r#""ask_id":"ask-10""#)));
    }

    #[test]
    fn days_that_ended_before_since_are_not_wanted() {
        let filter = Filter {
            since: Some(datetime!(2026-12-01 00:30 UTC)),
            ..Filter::default()
        };
        assert!(!filter.wants_day(date!(2026 - 11 - 30)));
        assert!(filter.wants_day(date!(2026 - 12 - 01)));
        assert!(Filter::default().wants_day(date!(2000 - 01 - 01)));
    }
}
