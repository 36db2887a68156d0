//! The `relay` command line against a real hub: status, peers, hub stop and restart, exit codes
//! and `--json` shapes.

mod common;

use common::Relay;

#[test]
fn status_without_a_hub_exits_1_with_a_clear_line() {
    let relay = Relay::new();
    let run = relay.relay(&["status"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no hub is running"), "{run:?}");
    let run = relay.relay(&["status", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["running"], false);
}
