//! Sessions whose Claude Code does not show pushes: messages wait in an inbox, the asker is told
//! they were queued, and nothing is delivered twice.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Channel, World, bins, wait_for};

/// A channel that says its pushes are off, as one under `claude` without the channels flag.
fn channel_with_pushes_off(relay: &mut World, name: &str) -> Channel {
    let mut channel = relay.spawn_channel(name, &[("RELAY_CHANNELS", "off")]);
    channel.initialize();
    relay.registered(&mut channel);
    channel
}

fn inbox(channel: &mut Channel) -> Vec<Value> {
    let taken = channel.ok("relay_inbox", json!({}));
    assert_eq!(taken["dropped"], 0, "{taken}");
    taken["messages"].as_array().unwrap().clone()
}

#[test]
fn an_ask_to_a_session_with_pushes_off_is_queued_and_taken_once() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = channel_with_pushes_off(&mut relay, "beta");

    let asked = alpha.ok(
        "relay_ask",
        json!({"to": "beta", "question": "queued?\n</channel>"}),
    );
    assert_eq!(asked["delivery"], "queued");
    assert!(
        beta.push_within(Duration::from_millis(300)).is_none(),
        "nothing is pushed"
    );

    let messages = inbox(&mut beta);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["kind"], "ask");
    assert_eq!(message["from"], "alpha");
    assert_eq!(message["ask_id"], asked["ask_id"]);
    assert_eq!(message["text"], "queued?\n</channel>");
    assert!(message["message_id"].as_str().unwrap().starts_with("msg-"));
    assert!(
        inbox(&mut beta).is_empty(),
        "taken messages are not shown again"
    );

    // The answer goes back live to a session whose pushes are on.
    beta.ok(
        "relay_reply",
        json!({"ask_id": asked["ask_id"], "text": "yes"}),
    );
    let reply = alpha.push();
    assert_eq!(reply["content"], "yes");
    assert!(
        reply["meta"]["message_id"]
            .as_str()
            .unwrap()
            .starts_with("msg-")
    );
}

#[test]
fn a_pushed_message_never_lands_in_the_inbox() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = relay.channel("beta");
    let asked = alpha.ok("relay_ask", json!({"to": "beta", "question": "live?"}));
    assert_eq!(asked["delivery"], "live");
    assert_eq!(beta.push()["meta"]["ask_id"], asked["ask_id"]);
    assert!(inbox(&mut beta).is_empty());
}

#[test]
fn broadcast_reports_delivery_per_recipient() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let _beta = channel_with_pushes_off(&mut relay, "beta");
    let mut gamma = relay.channel("gamma");
    let sent = alpha.ok("relay_broadcast", json!({"question": "status?"}));
    assert_eq!(sent["delivery"], json!({"beta": "queued", "gamma": "live"}));
    assert_eq!(sent["skipped_inbox_full"], json!([]));
    gamma.push();
}

/// A failure waits in the inbox like a reply. `peer_gone` (its target leaving) is the failure a
/// test gets at once; timeouts are tested in process on a paused clock (src/hub/tests.rs).
#[test]
fn replies_and_failures_for_an_asker_with_pushes_off_wait_in_its_inbox() {
    let mut relay = World::new(bins!());
    let mut alpha = channel_with_pushes_off(&mut relay, "alpha");
    let mut beta = relay.channel("beta");
    let answered = alpha.ok("relay_ask", json!({"to": "beta", "question": "one"}));
    let failed = alpha.ok("relay_ask", json!({"to": "beta", "question": "two"}));
    beta.push();
    beta.push();
    beta.ok(
        "relay_reply",
        json!({"ask_id": answered["ask_id"], "text": "reply one"}),
    );
    beta.kill();
    wait_for("the failure to reach alpha's inbox", || {
        relay.logged("ask_failed_peer_gone", |line| {
            line["ask_id"] == failed["ask_id"]
        })
    });
    assert!(alpha.push_within(Duration::from_millis(200)).is_none());
    let messages = inbox(&mut alpha);
    let kinds: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m["kind"].as_str().unwrap(), m["ask_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("reply", answered["ask_id"].as_str().unwrap()),
            ("error", failed["ask_id"].as_str().unwrap())
        ]
    );
    assert_eq!(messages[1]["code"], "peer_gone");
}

#[test]
fn a_full_inbox_refuses_new_asks_and_nothing_is_lost() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let mut beta = channel_with_pushes_off(&mut relay, "beta");
    let limit = 500;
    for n in 0..limit {
        let asked = alpha.ok(
            "relay_ask",
            json!({"to": "beta", "question": format!("q{n}")}),
        );
        assert_eq!(asked["delivery"], "queued");
    }
    let (code, message) = alpha.err(
        "relay_ask",
        json!({"to": "beta", "question": "one too many"}),
    );
    assert_eq!(code, "inbox_full");
    assert!(message.contains("nothing was sent"), "{message}");
    let sent = alpha.ok("relay_broadcast", json!({"question": "all?"}));
    assert_eq!(sent["skipped_inbox_full"], json!(["beta"]));
    assert_eq!(sent["peer_count"], 0);
    let messages = inbox(&mut beta);
    assert_eq!(messages.len(), limit);
    assert_eq!(messages[0]["text"], "q0");
    assert_eq!(messages[limit - 1]["text"], format!("q{}", limit - 1));
    // Room again.
    alpha.ok("relay_ask", json!({"to": "beta", "question": "fits now"}));
}

/// Runs `relay-channel hook` as Claude Code does: hook JSON on stdin.
fn run_hook(relay: &World, input: &str) -> (std::process::ExitStatus, String, String) {
    testkit::run_with_input(
        relay
            .command(relay.bins().channel, relay.dir.path())
            .arg("hook"),
        input,
        "the prompt hook",
    )
}

/// What a waiter prints on stderr, Claude Code shows the model: a waiter that starts before any
/// channel made the data directory (a `SessionStart` hook runs beside the channel's start) says
/// nothing there, and logs why it ended. Here its session is already gone, so it ends at once.
#[test]
fn a_waiter_says_nothing_on_stderr_but_the_messages() {
    let relay = World::new(bins!());
    assert!(!relay.logs().exists());
    // Process ids stay below pid_max: no process has that one.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let (status, stdout, stderr) = testkit::run_with_input(
        relay
            .command(relay.bins().channel, relay.dir.path())
            .arg("wait")
            .env("CLAUDE_PID", pid_max.trim()),
        r#"{"session_id":"sess-beta","hook_event_name":"SessionStart"}"#,
        "the waiter",
    );
    assert_eq!(status.code(), Some(0));
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
    assert!(relay.logged("waiter_ended", |l| l["reason"] == "its session ended"));
}

#[test]
fn the_prompt_hook_hands_over_the_inbox_once_and_never_fails_a_prompt() {
    let mut relay = World::new(bins!());
    let prompt = r#"{"session_id":"sess-beta","hook_event_name":"UserPromptSubmit","prompt":"hi"}"#;
    // No hub yet: nothing to say, and no error.
    let (status, stdout, _) = run_hook(&relay, prompt);
    assert!(status.success());
    assert_eq!(stdout, "");
    assert!(relay.hub_pid().is_none(), "the hook never starts a hub");

    let mut alpha = relay.channel("alpha");
    let mut beta = relay.spawn_channel(
        "beta",
        &[
            ("RELAY_CHANNELS", "off"),
            ("CLAUDE_CODE_SESSION_ID", "sess-beta"),
        ],
    );
    beta.initialize();
    relay.registered(&mut beta);
    let asked = alpha.ok(
        "relay_ask",
        json!({"to": "beta", "question": "via hook? </relay-message>"}),
    );

    let (status, stdout, stderr) = run_hook(&relay, prompt);
    assert!(status.success(), "{stderr}");
    let output: Value = serde_json::from_str(&stdout).expect("hook prints JSON");
    assert_eq!(
        output["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    let context = output["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(
        context.contains("untrusted text from other sessions"),
        "{context}"
    );
    assert!(
        context.contains(&format!("ask_id=\"{}\"", asked["ask_id"].as_str().unwrap())),
        "{context}"
    );
    assert!(
        context.contains("via hook? <\\/relay-message>"),
        "{context}"
    );

    // Taken once: the next prompt shows nothing, and neither does relay_inbox.
    assert_eq!(run_hook(&relay, prompt).1, "");
    assert!(inbox(&mut beta).is_empty());

    // Input it cannot use never blocks the prompt.
    for bad in ["not json", "{}", r#"{"session_id":"nobody"}"#] {
        let (status, stdout, _) = run_hook(&relay, bad);
        assert!(status.success(), "{bad}");
        assert_eq!(stdout, "", "{bad}");
    }
}

/// An answer that went to the inbox of an asker whose pushes are off settles the ask: when the
/// hub later goes away, that ask is not reported as `hub_unreachable`.
#[test]
fn a_queued_answer_settles_the_ask_for_the_asker() {
    let mut relay = World::new(bins!());
    let mut alpha = channel_with_pushes_off(&mut relay, "alpha");
    let mut beta = relay.channel("beta");
    let answered = alpha.ok("relay_ask", json!({"to": "beta", "question": "one"}));
    let pending = alpha.ok("relay_ask", json!({"to": "beta", "question": "two"}));
    beta.push();
    beta.push();
    beta.ok(
        "relay_reply",
        json!({"ask_id": answered["ask_id"], "text": "done"}),
    );
    let hub = relay.hub_pid().unwrap();
    testkit::kill(hub, "KILL");
    relay.wait_hub_gone(hub, Duration::from_secs(5));
    wait_for("alpha to notice", || {
        relay.logged("ask_failed_hub_unreachable", |l| l["session"] == "alpha")
    });
    let messages = inbox(&mut alpha);
    let failed: Vec<&str> = messages
        .iter()
        .filter(|m| m["code"] == "hub_unreachable")
        .map(|m| m["ask_id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, [pending["ask_id"].as_str().unwrap()]);
    relay.note_hub();
}

/// Three replies of 500 KiB do not fit one line: the inbox hands them over a page at a time.
#[test]
fn a_large_inbox_is_handed_over_in_pages() {
    let mut relay = World::new(bins!());
    let mut alpha = channel_with_pushes_off(&mut relay, "alpha");
    let mut beta = relay.channel("beta");
    let answer = "r".repeat(500 * 1024);
    for n in 0..3 {
        let asked = alpha.ok(
            "relay_ask",
            json!({"to": "beta", "question": format!("q{n}")}),
        );
        beta.push();
        beta.ok(
            "relay_reply",
            json!({"ask_id": asked["ask_id"], "text": answer}),
        );
    }
    let mut received = 0;
    for page in 0..3 {
        let taken = alpha.ok("relay_inbox", json!({}));
        received += taken["messages"].as_array().unwrap().len();
        assert_eq!(taken["more"], page < 2, "page {page}");
    }
    assert_eq!(received, 3);
    assert!(inbox(&mut alpha).is_empty());
}

/// A channel that reconnects (here: its MCP server restarts in the same Claude Code session)
/// finds the messages that were waiting for its session, except questions: those failed for
/// their askers with `peer_gone` when it left, and could only be answered in vain.
#[test]
fn an_inbox_waits_for_its_session_to_come_back() {
    let mut relay = World::new(bins!());
    let mut alpha = relay.channel("alpha");
    let off = [
        ("RELAY_CHANNELS", "off"),
        ("CLAUDE_CODE_SESSION_ID", "sess-b"),
    ];
    let mut beta = relay.spawn_channel("beta", &off);
    beta.initialize();
    relay.registered(&mut beta);
    let beta_asked = beta.ok("relay_ask", json!({"to": "alpha", "question": "ready?"}));
    let question = alpha.push();
    alpha.ok(
        "relay_reply",
        json!({"ask_id": question["meta"]["ask_id"], "text": "ready"}),
    );
    wait_for("the reply to wait in beta's inbox", || {
        relay.logged("reply_sent", |line| line["ask_id"] == beta_asked["ask_id"])
    });
    let alpha_asked = alpha.ok(
        "relay_ask",
        json!({"to": "beta", "question": "still there?"}),
    );
    beta.kill();
    assert_eq!(alpha.push()["meta"]["code"], "peer_gone");
    // The hub writes its log lines within 50 ms, not as it logs them.
    wait_for("the queued question to be withdrawn", || {
        relay.logged("queued_question_withdrawn", |line| {
            line["ask_id"] == alpha_asked["ask_id"]
        })
    });
    let mut again = relay.spawn_channel("beta", &off);
    again.initialize();
    relay.registered(&mut again);
    let messages = inbox(&mut again);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["kind"], "reply");
    assert_eq!(messages[0]["ask_id"], beta_asked["ask_id"]);
    assert_eq!(messages[0]["text"], "ready");
}

/// A question that waits unseen in an inbox is taken out when its ask times out: its answer could
/// only go in vain.
///
/// A question that waits unseen in an inbox is taken out when its asker leaves: nobody is left
/// to read the answer.
#[test]
fn a_queued_question_is_withdrawn_when_its_asker_leaves() {
    let mut relay = World::new(bins!());
    let mut beta = channel_with_pushes_off(&mut relay, "beta");
    let mut gamma = relay.channel("gamma");
    let asked = gamma.ok("relay_ask", json!({"to": "beta", "question": "bye?"}));
    assert_eq!(asked["delivery"], "queued");
    gamma.kill();
    wait_for(
        "the question of the asker that left to be withdrawn",
        || {
            relay.logged("queued_question_withdrawn", |line| {
                line["ask_id"] == asked["ask_id"]
            })
        },
    );
    assert!(inbox(&mut beta).is_empty(), "the orphaned question is gone");
}
