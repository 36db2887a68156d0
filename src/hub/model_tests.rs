//! A property-based test of the hub's state: random sequences of hellos, asks, broadcasts,
//! replies, renames, departures, inbox takes (acknowledged or not) and waits, applied to the
//! [`Hub`] directly on tokio's paused clock, then checked against what must hold whatever the
//! sequence:
//! - every ask whose caller is still there at the end ended exactly once for it: a reply or a
//!   failure, pushed live or taken (and acknowledged) from its inbox;
//! - no message reaches a session twice once acknowledged, and none is about an ask the session
//!   did not make (or was not asked);
//! - a reply that never reached its asker's session, because that session did not come back for
//!   its inbox, is reported to the replier when it is still connected, and a delivered one never.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use tokio::time::Duration;

use crate::{
    ask::ConnId,
    hub::{
        asking::Routed,
        handle::Hub,
        inbox::ORPHAN_GRACE,
        outbox::{Outbox, OutboxReceiver},
    },
    paths::DataDir,
    protocol::{
        AskRequest, BroadcastRequest, FromHub, Hello, PROTOCOL_VERSION, PeerKind, Pushes,
        ReplyRequest,
    },
};

const SLOTS: u8 = 5;

#[derive(Debug, Clone)]
enum Step {
    Hello {
        slot: u8,
        pushes: bool,
        session: bool,
    },
    Ask {
        from: u8,
        to: u8,
        secs: u64,
    },
    Broadcast {
        from: u8,
        secs: u64,
    },
    Reply {
        from: u8,
        pick: usize,
    },
    Rename {
        slot: u8,
        to: u8,
    },
    Leave {
        slot: u8,
    },
    Take {
        slot: u8,
        ack: bool,
    },
    Wait {
        secs: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => (slot.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(slot, pushes, session)| Step::Hello { slot, pushes, session }),
        4 => (slot.clone(), 0..SLOTS, 1u64..120).prop_map(|(from, to, secs)| Step::Ask { from, to, secs }),
        1 => (slot.clone(), 1u64..120).prop_map(|(from, secs)| Step::Broadcast { from, secs }),
        4 => (slot.clone(), 0usize..8).prop_map(|(from, pick)| Step::Reply { from, pick }),
        1 => (slot.clone(), 0..SLOTS).prop_map(|(slot, to)| Step::Rename { slot, to }),
        1 => slot.clone().prop_map(|slot| Step::Leave { slot }),
        2 => (slot.clone(), any::<bool>()).prop_map(|(slot, ack)| Step::Take { slot, ack }),
        2 => prop_oneof![1u64..30, 100u64..700].prop_map(|secs| Step::Wait { secs }),
    ]
}

/// One connected slot.
struct Live {
    conn: ConnId,
    receiver: OutboxReceiver,
    /// The session its inbox belongs to, when it gave one.
    session: Option<String>,
}

/// Everything seen, by who saw it.
#[derive(Default)]
struct World {
    live: HashMap<u8, Live>,
    next_conn: u64,
    /// Asks made: ask_id → caller connection.
    asks: HashMap<String, ConnId>,
    /// Outcomes (reply or failure) each connection received, by ask_id, counted.
    outcomes: HashMap<ConnId, BTreeMap<String, usize>>,
    /// Message ids delivered for good (pushed, or in an acknowledged page), by owner (the
    /// session, else the connection).
    delivered: HashMap<String, BTreeSet<String>>,
    /// Questions each connection was shown, to reply to.
    questions: HashMap<ConnId, Vec<String>>,
    /// Replies the hub accepted: ask_id → (replier connection, asker's owner).
    replies: HashMap<String, (ConnId, String)>,
    /// Ask ids whose reply reached the asker's owner.
    replies_delivered: BTreeSet<String>,
    /// Ask ids reported undelivered to their replier.
    undelivered: Vec<String>,
    /// Connections that left.
    gone: BTreeSet<ConnId>,
}

fn owner_of(live: &Live) -> String {
    live.session
        .clone()
        .unwrap_or_else(|| format!("conn-{}", live.conn.0))
}

impl World {
    fn name(slot: u8) -> String {
        format!("p{slot}")
    }

    /// Records one message a connection received, live or from an acknowledged page.
    fn receive(&mut self, conn: ConnId, owner: &str, message: FromHub) {
        let (message_id, ask_id, outcome) = match &message {
            FromHub::Ask(ask) => {
                self.questions
                    .entry(conn)
                    .or_default()
                    .push(ask.ask_id.clone());
                (ask.message_id.clone(), ask.ask_id.clone(), false)
            }
            FromHub::Reply(reply) => (reply.message_id.clone(), reply.ask_id.clone(), true),
            FromHub::AskFailed(failure) => {
                (failure.message_id.clone(), failure.ask_id.clone(), true)
            }
            FromHub::Undelivered(undelivered) => {
                self.undelivered.push(undelivered.ask_id.clone());
                return;
            }
            FromHub::Settled { .. }
            | FromHub::Ok { .. }
            | FromHub::Err { .. }
            | FromHub::Wake {}
            | FromHub::StandDown { .. } => return,
        };
        assert!(
            self.delivered
                .entry(owner.to_owned())
                .or_default()
                .insert(message_id.clone()),
            "{owner} got message {message_id} twice"
        );
        if outcome {
            let caller = self.asks.get(&ask_id).copied();
            assert!(
                caller.is_some(),
                "an outcome for ask {ask_id}, which nobody made"
            );
            *self
                .outcomes
                .entry(caller.unwrap())
                .or_default()
                .entry(ask_id.clone())
                .or_default() += 1;
            if matches!(message, FromHub::Reply(_)) {
                self.replies_delivered.insert(ask_id);
            }
        }
    }

    /// Takes every line the hub wrote to each live connection.
    fn drain(&mut self) {
        let slots: Vec<u8> = self.live.keys().copied().collect();
        for slot in slots {
            let live = self.live.get_mut(&slot).unwrap();
            let (conn, owner) = (live.conn, owner_of(live));
            let mut messages = Vec::new();
            while let Ok(line) = live.receiver.lines.try_recv() {
                live.receiver.queued.written(line.len());
                messages.push(serde_json::from_slice::<FromHub>(&line).expect("a wire message"));
            }
            for message in messages {
                self.receive(conn, &owner, message);
            }
        }
    }
}

fn apply(hub: &Hub, world: &mut World, step: &Step) {
    match *step {
        Step::Hello {
            slot,
            pushes,
            session,
        } => {
            if world.live.contains_key(&slot) {
                return;
            }
            world.next_conn += 1;
            let conn = ConnId(world.next_conn);
            let (outbox, receiver) = Outbox::new(hub.unread());
            let session = session.then(|| format!("s{slot}"));
            let hello = Hello {
                protocol: PROTOCOL_VERSION,
                version: "model".into(),
                name: World::name(slot),
                kind: PeerKind::Channel,
                cwd: String::new(),
                git_branch: String::new(),
                pushes: if pushes { Pushes::On } else { Pushes::Off },
                pushes_reason: String::new(),
                session_id: session.clone(),
            };
            hub.register(conn, hello, 1, outbox).expect("hello");
            world.live.insert(
                slot,
                Live {
                    conn,
                    receiver,
                    session,
                },
            );
        }
        Step::Ask { from, to, secs } => {
            let Some(live) = world.live.get(&from) else {
                return;
            };
            let request = AskRequest {
                to: World::name(to),
                question: "q".into(),
                thread_id: None,
                timeout_secs: secs,
            };
            if let Ok(Routed::Here(asked)) = hub.ask(live.conn, request) {
                world.asks.insert(asked.ask_id, live.conn);
            }
        }
        Step::Broadcast { from, secs } => {
            let Some(live) = world.live.get(&from) else {
                return;
            };
            let request = BroadcastRequest {
                question: "all?".into(),
                exclude_self: true,
                timeout_secs: secs,
            };
            if let Ok(Routed::Here(sent)) = hub.broadcast(live.conn, request) {
                for ask in sent.asks {
                    world.asks.insert(ask.ask_id, live.conn);
                }
            }
        }
        Step::Reply { from, pick } => {
            let Some(live) = world.live.get(&from) else {
                return;
            };
            let seen = world.questions.get(&live.conn).cloned().unwrap_or_default();
            let Some(ask_id) = seen.get(pick % seen.len().max(1)).cloned() else {
                return;
            };
            let request = ReplyRequest {
                ask_id: ask_id.clone(),
                text: "a".into(),
            };
            if hub.reply(live.conn, request).is_ok() {
                let caller = world.asks[&ask_id];
                let owner = world
                    .live
                    .values()
                    .find(|live| live.conn == caller)
                    .map(owner_of)
                    .expect("a reply is accepted only while its caller is there");
                world.replies.insert(ask_id, (live.conn, owner));
            }
        }
        Step::Rename { slot, to } => {
            if let Some(live) = world.live.get(&slot) {
                let _ = hub.rename(live.conn, &World::name(to));
            }
        }
        Step::Leave { slot } => {
            if let Some(live) = world.live.remove(&slot) {
                hub.disconnect(live.conn);
                world.gone.insert(live.conn);
            }
        }
        Step::Take { slot, ack } => {
            let Some(live) = world.live.get(&slot) else {
                return;
            };
            let (conn, owner) = (live.conn, owner_of(live));
            let page = hub.take_inbox(conn, None).expect("a peer takes its inbox");
            if let (true, Some(take_id)) = (ack, page.take_id) {
                hub.ack_inbox(conn, None, take_id).expect("acknowledged");
                for message in page.messages {
                    world.receive(conn, &owner, message);
                }
            }
        }
        Step::Wait { .. } => {}
    }
}

/// Runs `steps`, then lets every deadline pass and every live peer take its inbox, and checks
/// the properties of the module docs.
async fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(&DataDir::new(dir.path())).unwrap();
    let mut world = World::default();
    for step in &steps {
        apply(&hub, &mut world, step);
        if let Step::Wait { secs } = step {
            tokio::time::advance(Duration::from_secs(*secs)).await;
            hub.expire_due();
        }
        world.drain();
    }
    // Every ask times out by now, and every departed session's inbox expires.
    tokio::time::advance(ORPHAN_GRACE + Duration::from_secs(3600)).await;
    hub.expire_due();
    world.drain();
    let slots: Vec<u8> = world.live.keys().copied().collect();
    for slot in slots {
        loop {
            apply(&hub, &mut world, &Step::Take { slot, ack: true });
            let live = &world.live[&slot];
            let page = hub.take_inbox(live.conn, None).unwrap();
            if page.take_id.is_none() {
                break;
            }
        }
    }
    world.drain();

    for (ask_id, caller) in &world.asks {
        let got = world
            .outcomes
            .get(caller)
            .and_then(|outcomes| outcomes.get(ask_id))
            .copied()
            .unwrap_or(0);
        if world.gone.contains(caller) {
            assert!(
                got <= 1,
                "ask {ask_id} ended {got} times for its departed caller"
            );
        } else {
            assert_eq!(got, 1, "ask {ask_id} ended {got} times for its caller");
        }
    }
    for ask_id in &world.undelivered {
        assert!(
            !world.replies_delivered.contains(ask_id),
            "the reply to {ask_id} was delivered and reported undelivered"
        );
    }
    for (ask_id, (replier, _)) in &world.replies {
        let delivered = world.replies_delivered.contains(ask_id);
        let reported = world.undelivered.contains(ask_id);
        if !world.gone.contains(replier) {
            assert!(
                delivered || reported,
                "the reply to {ask_id} was neither delivered nor reported to its replier"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_ask_ends_once_and_every_queued_message_is_delivered_once_or_reported(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(run(steps));
    }
}
