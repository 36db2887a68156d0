//! The hub's wire protocol spoken by hand over its real socket: registration rules, malformed
//! and oversized lines, version mismatch, and a peer that stops reading.

use serde_json::json;
use testkit::{RawPeer, World, bins};

#[test]
fn hello_registers_once_and_other_requests_need_it() {
    let mut relay = World::new(bins!());
    relay.start_hub();
    let mut peer = RawPeer::connect(&relay);
    peer.send(&json!({"id": 7, "op": "rename", "new_name": "x"}));
    let answer = peer.read().unwrap();
    assert_eq!(answer["type"], "err");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["code"], "not_registered");
    // `relay peers` lists without joining.
    peer.send(&json!({"id": 6, "op": "peers"}));
    assert_eq!(peer.read().unwrap()["result"], json!({"peers": []}));

    let welcome = peer.hello("raw");
    assert_eq!(welcome["type"], "ok");
    assert_eq!(welcome["result"]["name"], "raw");
    assert_eq!(welcome["result"]["protocol"], 2);
    assert_eq!(welcome["result"]["hub_pid"], relay.hub_pid().unwrap());

    let again = peer.hello("raw");
    assert_eq!(again["code"], "already_registered");
    peer.send(&json!({"id": 8, "op": "peers"}));
    assert_eq!(
        peer.read().unwrap()["result"],
        json!({"peers": []}),
        "a registered peer is not shown itself"
    );
}

#[test]
fn a_hello_of_another_protocol_is_protocol_mismatch_naming_both_versions() {
    let mut relay = World::new(bins!());
    let hub = relay.start_hub();
    let mut peer = RawPeer::connect(&relay);
    peer.send(
        &json!({"id": 1, "op": "hello", "protocol": 99, "version": "9.9.9", "name": "future"}),
    );
    let answer = peer.read().unwrap();
    assert_eq!(answer["code"], "protocol_mismatch");
    let message = answer["message"].as_str().unwrap();
    for part in [
        "protocol 2",
        "protocol 99",
        "9.9.9",
        env!("CARGO_PKG_VERSION"),
        &format!("kill {hub}"),
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn malformed_lines_are_bad_msg_and_the_connection_stays() {
    let mut relay = World::new(bins!());
    relay.start_hub();
    let mut peer = RawPeer::connect(&relay);
    peer.hello("raw");
    for line in [
        &b"{not json\n"[..],
        b"[1,2,3]\n",
        b"{\"id\": 3, \"op\": \"fly\"}\n",
        b"{\"id\": 4, \"op\": \"ask\", \"to\": 5}\n",
        b"\xff\xfe\n",
    ] {
        peer.send_raw(line);
        let answer = peer
            .read()
            .expect("the hub answers and keeps the connection");
        assert_eq!(answer["type"], "err", "{}", String::from_utf8_lossy(line));
        assert_eq!(
            answer["code"],
            "bad_msg",
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let answer = {
        peer.send_raw(b"{\"id\": 4, \"op\": \"fly\"}\n");
        peer.read().unwrap()
    };
    assert_eq!(answer["id"], 4, "the id is echoed when it can be read");
    peer.send(&json!({"id": 5, "op": "peers"}));
    assert_eq!(peer.read().unwrap()["type"], "ok");
}

#[test]
fn a_line_over_one_mib_is_bad_msg_and_closes_the_connection() {
    let mut relay = World::new(bins!());
    relay.start_hub();
    let mut peer = RawPeer::connect(&relay);
    peer.hello("raw");
    let mut line = format!(
        "{{\"id\": 2, \"op\": \"ask\", \"to\": \"x\", \"question\": \"{}",
        "a".repeat(1024 * 1024)
    );
    line.push_str("\", \"timeout_secs\": 5}\n");
    peer.send_raw(line.as_bytes());
    let answer = peer.read().unwrap();
    assert_eq!(answer["code"], "bad_msg");
    assert!(answer["message"].as_str().unwrap().contains("1 MiB"));
    assert!(peer.closed_by_hub());
    // The hub itself is fine.
    let mut other = RawPeer::connect(&relay);
    assert_eq!(other.hello("other")["type"], "ok");
}

#[test]
fn the_hub_checks_ask_arguments_too() {
    let mut relay = World::new(bins!());
    relay.start_hub();
    let mut asker = RawPeer::connect(&relay);
    asker.hello("asker");
    let mut target = RawPeer::connect(&relay);
    target.hello("target");
    for (request, code) in [
        (
            json!({"id": 2, "op": "ask", "to": "target", "question": "q", "timeout_secs": 0}),
            "bad_args",
        ),
        (
            json!({"id": 3, "op": "ask", "to": "target", "question": "x".repeat(512 * 1024 + 1), "timeout_secs": 5}),
            "bad_args",
        ),
        (
            json!({"id": 4, "op": "rename", "new_name": "no spaces"}),
            "bad_args",
        ),
        (
            json!({"id": 5, "op": "reply", "ask_id": "nope", "text": "t"}),
            "unknown_ask",
        ),
    ] {
        asker.send(&request);
        let answer = asker.read().unwrap();
        assert_eq!(answer["code"], code, "{answer}");
    }
}

#[test]
fn status_is_answered_before_hello() {
    let mut relay = World::new(bins!());
    let hub = relay.start_hub();
    let mut peer = RawPeer::connect(&relay);
    let status = peer.request(json!({"op": "status"}));
    assert_eq!(status["type"], "ok");
    let result = &status["result"];
    assert_eq!(result["hub_pid"], hub);
    assert_eq!(result["protocol"], 2);
    assert_eq!(result["peers"], 0);
    assert_eq!(result["pending_asks"], 0);
    assert!(result["started_at"].as_str().unwrap().ends_with('Z'));
}
