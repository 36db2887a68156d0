//! `relay logs`: the daily files merged in time order, malformed lines reported, the filters,
//! one ask followed across the hub and both channels of a real run, and `-f`.

use std::{fs, io::Write};

use serde_json::{Value, json};
use testkit::{World, bins};
use time::{Date, Duration, OffsetDateTime, format_description::well_known::Rfc3339};

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn stamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

fn file_for(relay: &World, day: Date) -> std::path::PathBuf {
    relay.logs().join(format!("relay-{day}.log"))
}

/// The file of `day` as tracing-appender names it (`file_for` has the name releases before it
/// wrote).
fn appender_file_for(relay: &World, day: Date) -> std::path::PathBuf {
    relay.logs().join(format!("relay.{day}.log"))
}

/// Appends `text` (lines, each with its newline) to the log file of `day`.
fn append(relay: &World, day: Date, text: &str) {
    append_to(relay, &file_for(relay, day), text);
}

fn append_to(relay: &World, file: &std::path::Path, text: &str) {
    fs::create_dir_all(relay.logs()).unwrap();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A log line as the logger writes it (keys in order), stamped `at`.
fn line(at: OffsetDateTime, mut fields: Value) -> String {
    fields["timestamp"] = json!(stamp(at));
    format!("{fields}\n")
}

/// Writes each event to the file of its own day, as the logger does.
fn write_events(relay: &World, events: &[(OffsetDateTime, Value)]) {
    for (at, fields) in events {
        append(relay, at.date(), &line(*at, fields.clone()));
    }
}

fn events_of(run: &testkit::RelayRun) -> Vec<String> {
    run.json_lines()
        .iter()
        .map(|line| line["event"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_days_merge_in_time_order_and_malformed_lines_are_reported() {
    let relay = World::new(bins!());
    let yesterday = today().previous_day().unwrap();
    let at = |day: Date, h, m, s| day.with_hms(h, m, s).unwrap().assume_utc();
    let hub = json!({"level": "info", "component": "hub", "pid": 4242});
    let web = json!({"level": "info", "component": "channel", "pid": 77, "session": "web"});
    let with = |base: &Value, event: &str| {
        let mut fields = base.clone();
        fields["event"] = json!(event);
        fields
    };
    let old_text = [
        line(at(yesterday, 10, 0, 0), with(&hub, "hub_listening")),
        // Written after the hub's next line but stamped before it: another process was slower.
        line(at(yesterday, 10, 0, 2), with(&hub, "peer_registered")),
        line(at(yesterday, 10, 0, 1), with(&web, "registered")),
        "this is not JSON\n".to_owned(),
    ]
    .concat();
    let new_text = [
        // Stamped just before midnight, written just after: it lands in today's file.
        line(at(yesterday, 23, 59, 59), with(&web, "pushed")),
        line(at(today(), 0, 0, 1), with(&hub, "ask_sent")),
        "{\"level\":\"info\",\"event\":\"no_time\"}\n".to_owned(),
    ]
    .concat();
    append(&relay, yesterday, &old_text);
    append(&relay, today(), &new_text);

    let run = relay.relay(&["logs"]);
    assert_eq!(run.code, 0, "{run:?}");
    let printed: Vec<&str> = run.stdout.lines().collect();
    let order = [
        "hub_listening",
        "registered",
        "peer_registered",
        "pushed",
        "ask_sent",
    ];
    assert_eq!(printed.len(), order.len(), "{run:?}");
    for (printed, event) in printed.iter().zip(order) {
        assert!(
            printed.contains(&format!("  {event}")),
            "{printed:?} is not {event}"
        );
    }
    assert_eq!(
        printed[1],
        format!("{yesterday} 10:00:01.000  INFO   channel[77]       web           registered")
    );
    assert!(printed[0].contains("hub[4242]         -   "), "{printed:?}");
    assert!(
        run.stderr.contains(&format!(
            "relay: relay-{yesterday}.log line 4 is not a JSON log line; skipped"
        )),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "relay: relay-{today}.log line 3 has no \"timestamp\"; skipped",
            today = today()
        )),
        "{run:?}"
    );

    let run = relay.relay(&["logs", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut originals: Vec<&str> = old_text.lines().chain(new_text.lines()).collect();
    originals.retain(|line| line.contains("timestamp"));
    let expected = [
        originals[0],
        originals[2],
        originals[1],
        originals[3],
        originals[4],
    ];
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn level_session_and_since_filter_and_a_bad_since_is_refused() {
    let relay = World::new(bins!());
    let now = OffsetDateTime::now_utc();
    write_events(
        &relay,
        &[
            (
                now - Duration::hours(2),
                json!({"level": "warn", "component": "hub", "pid": 1, "event": "old_warning"}),
            ),
            (
                now - Duration::minutes(30),
                json!({"level": "info", "component": "hub", "pid": 1, "event": "ask_sent", "from": "web", "to": "api"}),
            ),
            (
                now - Duration::minutes(20),
                json!({"level": "debug", "component": "channel", "pid": 2, "session": "api", "event": "tool_ok"}),
            ),
            (
                now - Duration::minutes(10),
                json!({"level": "error", "component": "channel", "pid": 3, "session": "docs", "event": "push_failed"}),
            ),
        ],
    );

    let events = |args: &[&str]| {
        let run = relay.relay(&[&["logs", "--json"], args].concat());
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stderr.is_empty(), "{run:?}");
        events_of(&run)
    };
    assert_eq!(
        events(&[]),
        ["old_warning", "ask_sent", "tool_ok", "push_failed"]
    );
    assert_eq!(events(&["--level", "warn"]), ["old_warning", "push_failed"]);
    assert_eq!(
        events(&["--level", "info"]),
        ["old_warning", "ask_sent", "push_failed"]
    );
    assert_eq!(events(&["--session", "api"]), ["ask_sent", "tool_ok"]);
    assert_eq!(events(&["--session", "web"]), ["ask_sent"]);
    assert_eq!(
        events(&["--since", "1h"]),
        ["ask_sent", "tool_ok", "push_failed"]
    );
    assert_eq!(
        events(&["--since", "15m", "--level", "error"]),
        ["push_failed"]
    );
    assert_eq!(
        events(&["--since", "1h", "--session", "docs"]),
        ["push_failed"]
    );

    // A day that ended before --since is not even opened: a file there that cannot be read
    // (a directory) breaks only the runs that reach back to it.
    let long_ago = today() - Duration::days(3);
    fs::create_dir(file_for(&relay, long_ago)).unwrap();
    assert_eq!(events(&["--since", "1d"]).len(), 4);
    let run = relay.relay(&["logs"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot read the log file")
            && run.stderr.contains(&format!("relay-{long_ago}.log")),
        "{run:?}"
    );

    for bad in ["10", "1h30", "30m1h", "5x", "soon"] {
        let run = relay.relay(&["logs", "--since", bad]);
        assert_eq!(run.code, 2, "{bad}: {run:?}");
        assert!(run.stderr.contains("invalid value"), "{bad}: {run:?}");
        assert!(run.stderr.contains("is not a duration"), "{bad}: {run:?}");
    }
    let run = relay.relay(&["logs", "--level", "loud"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("possible values"), "{run:?}");
}

#[test]
fn ask_shows_one_asks_life_across_the_hub_and_both_channels() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    let asked = alpha.ok("relay_ask", json!({"to": "beta", "question": "schema?"}));
    let ask_id = asked["ask_id"].as_str().unwrap().to_owned();
    let incoming = beta.push();
    assert_eq!(incoming["meta"]["ask_id"], ask_id);
    beta.ok(
        "relay_reply",
        json!({"ask_id": ask_id, "text": "unchanged"}),
    );
    assert_eq!(alpha.push()["meta"]["kind"], "reply");
    // The channel logs a push once it is sent, so the line may land after the test saw it; the
    // hub writes its lines within 50 ms.
    testkit::wait_for(
        "alpha to log the reply's push, and the hub the reply",
        || {
            relay.logged("pushed", |line| {
                line["ask_id"] == ask_id.as_str() && line["session"] == "alpha"
            }) && relay.logged("reply_sent", |line| line["ask_id"] == ask_id.as_str())
        },
    );
    // A second ask, to see it left out.
    alpha.ok("relay_ask", json!({"to": "beta", "question": "other?"}));
    beta.push();

    let run = relay.relay(&["logs", "--ask", &ask_id, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    assert!(
        lines.iter().all(|line| line["ask_id"] == ask_id.as_str()),
        "{run:?}"
    );
    let stamps: Vec<OffsetDateTime> = lines
        .iter()
        .map(|line| OffsetDateTime::parse(line["timestamp"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    assert!(stamps.is_sorted(), "{run:?}");
    let position = |component: &str, session: Option<&str>, event: &str, kind: Option<&str>| {
        lines
            .iter()
            .position(|line| {
                line["component"] == component
                    && session.is_none_or(|session| line["session"] == session)
                    && line["event"] == event
                    && kind.is_none_or(|kind| line["kind"] == kind)
            })
            .unwrap_or_else(|| panic!("no {component} {session:?} {event} {kind:?}: {run:?}"))
    };
    let alpha_asked = position("channel", Some("alpha"), "tool_ok", None);
    let hub_sent = position("hub", None, "ask_sent", None);
    let beta_pushed = position("channel", Some("beta"), "pushed", Some("ask"));
    let beta_replied = position("channel", Some("beta"), "tool_ok", None);
    position("hub", None, "reply_sent", None);
    let alpha_pushed = position("channel", Some("alpha"), "pushed", Some("reply"));
    // A process stamps a line after doing what it logs, so the lines of different processes
    // need not follow cause and effect to the microsecond: only the time order is asserted.
    assert_eq!(lines[alpha_asked]["tool"], "relay_ask");
    assert_eq!(lines[beta_replied]["tool"], "relay_reply");
    let pids = [hub_sent, alpha_pushed, beta_pushed].map(|at| lines[at]["pid"].as_u64().unwrap());
    assert_eq!(pids[1], u64::from(alpha.pid()));
    assert_eq!(pids[2], u64::from(beta.pid()));
    assert!(pids[0] != pids[1] && pids[0] != pids[2], "{run:?}");
}

#[test]
fn follow_prints_appended_lines_and_moves_to_the_next_day() {
    let relay = World::new(bins!());
    let now = OffsetDateTime::now_utc();
    let event = |name: &str| json!({"level": "info", "component": "hub", "pid": 9, "event": name});
    append(&relay, today(), &line(now, event("before")));

    let mut follow = relay.stream_relay(&["logs", "-f", "--json"]);
    let first: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(first["event"], "before");

    append(&relay, today(), &line(now, event("appended")));
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "appended");

    let tomorrow = today().next_day().unwrap();
    let midnight = tomorrow.midnight().assume_utc();
    append(&relay, today(), &line(now, event("last_of_today")));
    append(
        &relay,
        tomorrow,
        &line(midnight, event("first_of_tomorrow")),
    );
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "last_of_today");
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "first_of_tomorrow");

    // What is appended to the new day's file is followed too.
    append(&relay, tomorrow, &line(midnight, event("later_tomorrow")));
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "later_tomorrow");

    // A line that lands in the old day's file after the switch (stamped before midnight by a
    // process that had it open) is not lost.
    append(&relay, today(), &line(now, event("late_for_today")));
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "late_for_today");

    testkit::kill(follow.pid(), "TERM");
    let run = follow.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
}

/// The hub and channels of a release before tracing-appender write `relay-DAY.log`, the new ones
/// `relay.DAY.log`: both are read, merged in time order, and followed.
#[test]
fn old_and_new_file_names_are_merged_and_followed() {
    let relay = World::new(bins!());
    let now = OffsetDateTime::now_utc();
    let yesterday = today().previous_day().unwrap();
    let at = |day: Date, h, m, s| day.with_hms(h, m, s).unwrap().assume_utc();
    let event = |name: &str| json!({"level": "info", "component": "hub", "pid": 9, "event": name});
    append(
        &relay,
        yesterday,
        &line(at(yesterday, 9, 0, 0), event("old_yesterday")),
    );
    append_to(
        &relay,
        &appender_file_for(&relay, yesterday),
        &line(at(yesterday, 8, 0, 0), event("new_yesterday")),
    );
    append(
        &relay,
        today(),
        &line(now - Duration::seconds(2), event("old_today")),
    );
    append_to(
        &relay,
        &appender_file_for(&relay, today()),
        &line(now - Duration::seconds(3), event("new_today")),
    );

    let run = relay.relay(&["logs", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        events_of(&run),
        ["new_yesterday", "old_yesterday", "new_today", "old_today"]
    );

    let mut follow = relay.stream_relay(&["logs", "-f", "--json"]);
    let seen: Vec<Value> = (0..4)
        .map(|_| serde_json::from_str::<Value>(&follow.next_line()).unwrap()["event"].clone())
        .collect();
    assert_eq!(
        seen,
        ["new_yesterday", "old_yesterday", "new_today", "old_today"]
    );
    // Both of today's files are followed.
    append_to(
        &relay,
        &appender_file_for(&relay, today()),
        &line(now, event("new_appended")),
    );
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "new_appended");
    append(&relay, today(), &line(now, event("old_appended")));
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "old_appended");
    testkit::kill(follow.pid(), "TERM");
    let run = follow.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
}

/// A day file of the new name appearing beside the old one is followed from its first line.
#[test]
fn follow_picks_up_a_new_file_of_the_same_day() {
    let relay = World::new(bins!());
    let now = OffsetDateTime::now_utc();
    let event = |name: &str| json!({"level": "info", "component": "hub", "pid": 9, "event": name});
    append(&relay, today(), &line(now, event("old_hub")));
    let mut follow = relay.stream_relay(&["logs", "-f", "--json"]);
    let first: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(first["event"], "old_hub");
    append_to(
        &relay,
        &appender_file_for(&relay, today()),
        &line(now, event("new_channel")),
    );
    let next: Value = serde_json::from_str(&follow.next_line()).unwrap();
    assert_eq!(next["event"], "new_channel");
    testkit::kill(follow.pid(), "TERM");
    assert_eq!(follow.finish().code, 0);
}

#[test]
fn without_logs_it_exits_1_with_a_clear_line() {
    let relay = World::new(bins!());
    let run = relay.relay(&["logs"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("there are no log files in"), "{run:?}");
    assert!(
        run.stderr.contains(&relay.logs().display().to_string()),
        "{run:?}"
    );

    fs::create_dir_all(relay.logs()).unwrap();
    let run = relay.relay(&["logs", "-f"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("there are no log files in"), "{run:?}");
}
