//! A thousand sessions on one hub: 1,000 raw peers (the kit's [`RawPeer`], a socket each, as a
//! session's channel holds one) and a few real channels, in a fresh world. A broadcast from a
//! channel to all of them, every one replying; a `relay_peers` that lists them all; the hub's
//! memory with them. Raw peers stand in for most sessions because 1,000 channel processes would
//! measure how fast two CPUs run 1,000 processes, not the hub (see the fan-out figures); the real
//! channels keep the whole path, MCP included, in the figures.

use std::{
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use testkit::{Channel, RawPeer};

use crate::{
    measure::{
        SETTLE, Samples, asks_pushed, last_reply_push, reply_to_each, wait_for_peers, world,
    },
    procfs::{Mem, mem},
};

/// Raw peers, and channels besides the asker, that the broadcasts go to.
pub const THOUSAND_RAW: usize = 1_000;
pub const THOUSAND_CHANNELS: usize = 2;
/// Broadcast rounds, as (warm-up, measured).
pub const THOUSAND_ROUNDS: (usize, usize) = (3, 20);
/// `relay_peers` calls with every session connected, as (warm-up, measured).
pub const THOUSAND_PEERS_CALLS: (usize, usize) = (5, 50);

/// Open files the bench needs beyond the raw peers' sockets: the channels' pipes, the hub's
/// socket for its lock checks, libraries, log files.
const OTHER_FILES: u64 = 128;

pub struct Thousand {
    /// Every recipient of a broadcast: the raw peers and the channels other than the asker.
    pub recipients: usize,
    /// relay_broadcast written to the last ask event (raw peers) or push (channels) read.
    pub delivered: Samples,
    /// First reply written to the last reply push read at the asker.
    pub gathered: Samples,
    /// relay_broadcast written to the last reply push read at the asker.
    pub total: Samples,
    /// relay_peers written to its answer read, at a recipient channel.
    pub peers_call: Samples,
    /// Sessions that answer listed (every one but the caller), and the size of its JSON.
    pub peers_listed: usize,
    pub peers_bytes: usize,
    pub hub_connected: Mem,
    pub hub_after: Mem,
    /// After the relay_peers calls too, whose answers are the hub's largest lines.
    pub hub_end: Mem,
}

impl Thousand {
    pub fn measure() -> Thousand {
        let files = raise_open_file_limit();
        let needed = THOUSAND_RAW as u64 + OTHER_FILES;
        assert!(
            files >= needed,
            "a thousand sessions need {needed} open files, and the hard limit is {files}"
        );
        let mut world = world();
        let mut asker = world.channel("asker");
        let mut raw: Vec<RawPeer> = (0..THOUSAND_RAW)
            .map(|n| {
                // One at a time: the hub closes the oldest of more than 256 connections without
                // a hello, and a hello answered is a peer registered.
                let mut peer = RawPeer::connect(&world);
                let welcome = peer.hello(&format!("raw-{n:04}"));
                assert_eq!(welcome["type"], "ok", "raw peer {n}'s hello: {welcome}");
                peer
            })
            .collect();
        let mut channels: Vec<Channel> = (0..THOUSAND_CHANNELS)
            .map(|n| world.channel(&format!("chan-{n}")))
            .collect();
        let recipients = raw.len() + channels.len();
        wait_for_peers(&mut asker, recipients);
        let hub = world.hub_pid().expect("the hub runs");
        thread::sleep(SETTLE);
        let hub_connected = mem(hub);

        let (warmup, iters) = THOUSAND_ROUNDS;
        for round in 0..warmup {
            broadcast_once(&mut asker, &mut raw, &mut channels, round as u64);
        }
        let rounds: Vec<_> = (warmup..warmup + iters)
            .map(|round| broadcast_once(&mut asker, &mut raw, &mut channels, round as u64))
            .collect();
        thread::sleep(SETTLE);
        let hub_after = mem(hub);

        let lister = &mut channels[0];
        let (mut peers_listed, mut peers_bytes) = (0, 0);
        let (warmup, iters) = THOUSAND_PEERS_CALLS;
        let peers_call = Samples::collect(warmup, iters, || {
            let start = Instant::now();
            let call = lister.send_call("relay_peers", json!({}));
            let (answered, response) = lister.response(call);
            (peers_listed, peers_bytes) = listed(&response);
            answered - start
        });
        assert_eq!(peers_listed, recipients, "every other session is listed");
        thread::sleep(SETTLE);
        let hub_end = mem(hub);
        drop((raw, channels, asker, world));
        Thousand {
            recipients,
            delivered: Samples(rounds.iter().map(|r| r.0).collect()),
            gathered: Samples(rounds.iter().map(|r| r.1).collect()),
            total: Samples(rounds.iter().map(|r| r.2).collect()),
            peers_call,
            peers_listed,
            peers_bytes,
            hub_connected,
            hub_after,
            hub_end,
        }
    }
}

/// The number of sessions in a relay_peers answer, and the size of its JSON (in its one text
/// block).
fn listed(response: &Value) -> (usize, usize) {
    let text = response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("relay_peers answered without text: {response}"));
    let peers: Value = serde_json::from_str(text).expect("relay_peers answers JSON");
    (peers["peers"].as_array().map_or(0, Vec::len), text.len())
}

/// Raises this process's soft limit of open files to its hard limit (the hub raises its own the
/// same way), and returns the soft limit then. The channels and the hub inherit it.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the local struct they are given.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit),
            0,
            "getrlimit(RLIMIT_NOFILE)"
        );
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit = wanted;
            }
        }
    }
    limit.rlim_cur
}

/// One broadcast from `asker` to every raw peer and channel, each of which replies at once (the
/// channels first, their replies having the longer way). Returns (delivered, gathered, total)
/// as documented on [`Thousand`].
///
/// The raw peers are read one after another in this thread, each with its event already
/// waiting or about to: so "delivered" includes this thread reading 1,000 lines, a few
/// milliseconds. The channels' pushes are timestamped by their reader threads as they arrive.
fn broadcast_once(
    asker: &mut Channel,
    raw: &mut [RawPeer],
    channels: &mut [Channel],
    round: u64,
) -> (Duration, Duration, Duration) {
    let start = Instant::now();
    let call = asker.send_call(
        "relay_broadcast",
        json!({"question": "status?", "timeout_secs": 60}),
    );
    let raw_asks: Vec<Value> = raw
        .iter_mut()
        .map(|peer| {
            let event = peer.read().expect("the hub sends the ask event");
            assert_eq!(event["type"], "ask", "a raw peer was asked: {event}");
            event["ask_id"].clone()
        })
        .collect();
    let mut last_push = Instant::now();
    let channel_asks = asks_pushed(channels, &mut last_push);

    let replies_start = Instant::now();
    let channel_calls = reply_to_each(channels, &channel_asks);
    let reply_id = round + 2;
    for (peer, ask_id) in raw.iter_mut().zip(&raw_asks) {
        peer.send(&json!({"id": reply_id, "op": "reply", "ask_id": ask_id, "text": "ok"}));
    }
    let last_reply = last_reply_push(asker, raw.len() + channels.len(), replies_start);

    let sent = asker.outcome_ok(call);
    assert_eq!(
        sent["peer_count"],
        raw.len() + channels.len(),
        "every session was asked"
    );
    for peer in raw.iter_mut() {
        let replied = peer.read().expect("the hub answers the reply");
        assert!(
            replied["type"] == "ok" && replied["id"] == reply_id,
            "a raw peer's reply succeeded: {replied}"
        );
    }
    for (channel, id) in channels.iter_mut().zip(channel_calls) {
        channel.outcome_ok(id);
    }
    (
        last_push - start,
        last_reply - replies_start,
        last_reply - start,
    )
}
