//! What the hub does with what other hubs of its federation say and ask: keeping their rosters,
//! forgetting a host that is gone, taking asks for its own sessions from their sessions, and
//! delivering the replies and failures of asks its sessions made of theirs.
//!
//! A session of another host is always named `name@host` here, as its hub's host says: a
//! remote hub can never pose as a session of this one.

use tokio::time::{Duration, Instant};

use crate::{
    ask::{AskedFrom, ConnId, PendingAsk},
    errors::{ErrorCode, RelayError},
    hub::{
        asking::{MAX_PENDING, MAX_PENDING_PER_HOST},
        federation::{
            Federation,
            roster::Heard,
            wire::{
                AskAnswer, AskBatch, Change, PartyLeft, PeerChange, Presence, PresenceKind,
                RemoteAsk, RemoteReply, ReplyAnswer, Roster,
            },
        },
        handle::{Hub, State},
        texts,
    },
    protocol::{
        Delivery, DeliveryMode, FromHub, PeerKind, validate_id, validate_name, validate_text,
        validate_timeout,
    },
};

/// `name@host`: how a session of another host is named here.
pub(crate) fn address(name: &str, host: &str) -> String {
    format!("{name}@{host}")
}

impl Hub {
    /// What this hub says of itself to the others.
    pub(crate) fn presence(&self, kind: PresenceKind) -> Presence {
        let federation = self.federation().expect("only a federated hub speaks");
        Presence {
            host: federation.host().to_owned(),
            epoch: federation.epoch().to_owned(),
            kind,
            version: self.state().roster_version,
        }
    }

    /// This hub's sessions, whole, for another hub that asked.
    pub(crate) fn local_roster(&self) -> Roster {
        let federation = self.federation().expect("only a federated hub speaks");
        let state = self.state();
        let peers = state
            .peers
            .iter()
            .filter_map(|(conn, _)| state.info_of(conn))
            .collect();
        Roster {
            host: federation.host().to_owned(),
            epoch: federation.epoch().to_owned(),
            version: state.roster_version,
            peers,
        }
    }

    /// Another hub's presence. A restarted host's asks went with its hub; a host saying bye is
    /// gone at once.
    pub(crate) fn heard(&self, presence: &Presence) -> Heard {
        let mut state = self.state();
        let (heard, restarted) = state.hosts.heard(presence, Instant::now());
        if restarted {
            tracing::info!(host = %presence.host, "federation_host_restarted");
            self.forget_asks_of(&mut state, &presence.host, "restarted");
        }
        if heard == Heard::Gone {
            tracing::info!(host = %presence.host, "federation_host_left");
            state.hosts.remove(&presence.host);
            self.forget_asks_of(&mut state, &presence.host, "left");
        }
        heard
    }

    pub(crate) fn changed(&self, change: PeerChange) -> Heard {
        self.state().hosts.change(change, Instant::now())
    }

    /// Another hub's whole roster, which this hub asked for.
    pub(crate) fn roster(&self, roster: Roster) {
        let host = roster.host.clone();
        let count = roster.peers.len();
        let mut state = self.state();
        if state.hosts.roster(roster, Instant::now()) {
            tracing::info!(host = %host, "federation_host_restarted");
            self.forget_asks_of(&mut state, &host, "restarted");
        }
        tracing::info!(host = %host, sessions = count, "federation_roster");
    }

    /// Forgets the hosts whose heartbeats stopped: their sessions vanish, and the asks pending
    /// on them fail with `peer_gone` at once.
    pub(crate) fn expire_hosts(&self) {
        let mut state = self.state();
        for host in state.hosts.expire(Instant::now()) {
            tracing::warn!(host = %host, "federation_host_gone");
            self.forget_asks_of(&mut state, &host, "stopped answering");
        }
    }

    /// The asks to and from sessions of `host`, whose hub is gone (`why`): those this hub's
    /// sessions made fail with `peer_gone`; those made of this hub's sessions are withdrawn.
    fn forget_asks_of(&self, state: &mut State, host: &str, why: &str) {
        for ask in state.asks.remove_target_host(host) {
            let message = texts::host_gone(&ask.target_name, host, why, &ask.ask_id);
            self.fail(state, ask, ErrorCode::PeerGone, message);
        }
        for ask in state.asks.remove_caller_host(host) {
            state.withdraw_queued_question(&ask);
        }
    }

    /// Asks from a session of another host for sessions of this one: each is checked and made
    /// as a local ask is, its caller being `from@host`.
    pub(crate) fn asked_from_afar(&self, batch: AskBatch) -> Vec<AskAnswer> {
        let mut state = self.state();
        // Never from this host's own name: a session of this host is not `x@here`. (A host not
        // heard from yet is let in: its asks may come before its first heartbeat.)
        let own = self.federation().map(|federation| federation.host());
        let checked = (if Some(batch.from_host.as_str()) == own {
            Err(texts::own_host_afar(&batch.from_host))
        } else {
            Ok(())
        })
        .and_then(|()| validate_name(&batch.from))
        .and_then(|()| validate_text("question", &batch.question))
        .and_then(|()| validate_timeout(batch.timeout_secs));
        let caller_name = address(&batch.from, &batch.from_host);
        batch
            .asks
            .iter()
            .map(|ask| {
                let made = checked.clone().and_then(|()| {
                    self.ask_from_afar(&mut state, &batch, caller_name.clone(), ask)
                });
                match made {
                    Ok(delivery) => AskAnswer::Asked { delivery },
                    Err(e) => AskAnswer::Refused {
                        code: e.code,
                        message: e.message,
                    },
                }
            })
            .collect()
    }

    fn ask_from_afar(
        &self,
        state: &mut State,
        batch: &AskBatch,
        caller_name: String,
        ask: &RemoteAsk,
    ) -> Result<DeliveryMode, RelayError> {
        validate_id("ask_id", &ask.ask_id)?;
        validate_id("thread_id", &ask.thread_id)?;
        if let Some(broadcast_id) = &batch.broadcast_id {
            validate_id("broadcast_id", broadcast_id)?;
        }
        let from_host = state.asks.pending_from_host(&batch.from_host);
        if from_host >= MAX_PENDING_PER_HOST {
            return Err(texts::host_too_many_asks(
                &batch.from_host,
                MAX_PENDING_PER_HOST,
            ));
        }
        let (target, peer) = state
            .peers
            .by_name(&ask.to)
            .ok_or_else(|| texts::peer_not_found(&ask.to))?;
        if peer.kind == PeerKind::Cli {
            return Err(texts::command_line_cannot_answer(&ask.to));
        }
        if !state.has_room_for(target, batch.question.len()) {
            return Err(texts::inbox_full(&ask.to));
        }
        if let Some(busy) = state.busy(target, self.unread().total()) {
            return Err(busy);
        }
        if state.asks.len() >= MAX_PENDING {
            return Err(texts::hub_too_many_asks(MAX_PENDING));
        }
        // The caller's id, so both hosts name the ask alike; one of this hub's own making
        // should that id be taken here, or look like one this hub makes (no other hub may
        // choose this hub's ids).
        let ask_id = if state.asks.is_pending(&ask.ask_id) || self.is_own_id(&ask.ask_id) {
            self.new_id("ask")
        } else {
            ask.ask_id.clone()
        };
        let pending = PendingAsk {
            ask_id,
            caller: ConnId::REMOTE,
            caller_name,
            target,
            target_name: ask.to.clone(),
            // The caller's hub owns the deadline; this copy only withdraws the question.
            deadline: Instant::now() + Duration::from_secs(batch.timeout_secs),
            timeout_secs: batch.timeout_secs,
            thread_id: ask.thread_id.clone(),
            broadcast_id: batch.broadcast_id.clone(),
            asked_from: Some(AskedFrom {
                host: batch.from_host.clone(),
                ask_id: ask.ask_id.clone(),
            }),
            target_host: None,
        };
        Ok(self.start_ask(state, pending, batch.question.clone()))
    }

    /// The reply of a session of another host to an ask a session of this hub made.
    pub(crate) fn replied_from_afar(&self, reply: RemoteReply) -> ReplyAnswer {
        let mut state = self.state();
        let refused = |e: RelayError| ReplyAnswer::Refused {
            code: e.code,
            message: e.message,
        };
        if let Err(e) =
            validate_name(&reply.from).and_then(|()| validate_text("reply", &reply.text))
        {
            return refused(e);
        }
        let ask = match state
            .asks
            .take_for_reply_from(&reply.ask_id, &reply.from_host)
        {
            Ok(ask) => ask,
            Err(why) => return refused(texts::not_pending(&reply.ask_id, why)),
        };
        let bytes = reply.text.len();
        if state.peers.get(ask.caller).is_some() && !state.has_room_for(ask.caller, bytes) {
            let full = texts::inbox_full(&ask.caller_name);
            state.asks.restore(ask);
            return refused(full);
        }
        tracing::info!(ask_id = %ask.ask_id, from_host = %reply.from_host, bytes, "reply_from_afar");
        let event = FromHub::Reply(Delivery {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id.clone(),
            from: address(&reply.from, &reply.from_host),
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            text: reply.text,
        });
        state.tell_caller(ask.caller, &ask.ask_id, event, bytes, None);
        ReplyAnswer::Delivered
    }

    /// Another host's hub says that the target of an ask a session of this hub made, one of its
    /// sessions, left: the ask fails with `peer_gone`, in this hub's words.
    pub(crate) fn target_left_afar(&self, failure: PartyLeft) {
        let mut state = self.state();
        let Some(ask) = state
            .asks
            .take_target_gone(&failure.ask_id, &failure.from_host)
        else {
            return;
        };
        tracing::info!(ask_id = %ask.ask_id, "ask_failed_peer_gone_afar");
        let message = texts::target_gone(&ask.target_name, &ask.ask_id);
        self.fail(&mut state, ask, ErrorCode::PeerGone, message);
    }

    /// Tells the hub of the caller of `ask`, a session of another host, that the target of
    /// `ask` (a session here) left.
    pub(super) fn tell_target_left(&self, ask: &PendingAsk) {
        let (Some(federation), Some(from)) = (self.federation(), &ask.asked_from) else {
            return;
        };
        say_party_left(
            federation,
            federation.subjects().failed(&from.host),
            &from.ask_id,
        );
    }

    /// Another host's hub says that the caller of an ask for one of this hub's sessions left: its
    /// question is withdrawn if it waits unseen, and a reply to it is told its asker left.
    pub(crate) fn caller_left_afar(&self, left: PartyLeft) {
        let mut state = self.state();
        let Some(ask) = state.asks.take_caller_gone(&left.ask_id, &left.from_host) else {
            return;
        };
        tracing::info!(ask_id = %ask.ask_id, from_host = %left.from_host, "ask_caller_left_afar");
        state.withdraw_queued_question(&ask);
    }

    /// Tells the hub of the target of `ask`, a session of another host, that its caller (a
    /// session here) left.
    pub(super) fn tell_caller_left(&self, ask: &PendingAsk) {
        let (Some(federation), Some(host)) = (self.federation(), &ask.target_host) else {
            return;
        };
        say_party_left(
            federation,
            federation.subjects().withdrawn(host),
            &ask.ask_id,
        );
    }

    /// Tells the other hubs of a change of this hub's sessions.
    pub(crate) fn announce(&self, state: &mut State, change: Change) {
        let Some(federation) = self.federation() else {
            return;
        };
        state.roster_version += 1;
        federation.publish(
            federation.subjects().peers(),
            &PeerChange {
                host: federation.host().to_owned(),
                epoch: federation.epoch().to_owned(),
                version: state.roster_version,
                change,
            },
        );
    }
}

/// Says on `subject` that a session of this host, a party of the ask `ask_id` (its id at its
/// caller's hub), left.
fn say_party_left(federation: &Federation, subject: String, ask_id: &str) {
    federation.publish(
        subject,
        &PartyLeft {
            from_host: federation.host().to_owned(),
            ask_id: ask_id.to_owned(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        hub::outbox::{Outbox, OutboxReceiver},
        paths::DataDir,
        protocol::{Hello, PROTOCOL_VERSION, Pushes},
    };

    /// A hub (not federated: no server) with one session, `api`, whose pushes are on.
    fn hub_with_api(dir: &tempfile::TempDir) -> (Hub, OutboxReceiver) {
        let hub = Hub::open(&DataDir::new(dir.path())).unwrap();
        let (outbox, receiver) = Outbox::new(hub.unread());
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            version: "test".into(),
            name: "api".into(),
            kind: PeerKind::Channel,
            cwd: String::new(),
            git_branch: String::new(),
            pushes: Pushes::On,
            pushes_reason: String::new(),
            session_id: None,
        };
        hub.register(ConnId(1), hello, 1, outbox).expect("hello");
        (hub, receiver)
    }

    fn batch(from_host: &str, ask_id: &str) -> AskBatch {
        AskBatch {
            from_host: from_host.into(),
            from: "web".into(),
            question: "?".into(),
            broadcast_id: None,
            timeout_secs: 60,
            asks: vec![RemoteAsk {
                ask_id: ask_id.into(),
                to: "api".into(),
                thread_id: ask_id.into(),
            }],
        }
    }

    #[tokio::test]
    async fn an_ask_from_afar_keeps_the_callers_id_unless_it_would_collide() {
        let dir = tempfile::tempdir().unwrap();
        let (hub, mut api) = hub_with_api(&dir);
        // Another hub's id is kept, but never twice, and never one of this hub's making.
        let own = hub.new_id("ask");
        for answers in [
            hub.asked_from_afar(batch("laptop", "ask-theirs-1")),
            hub.asked_from_afar(batch("laptop", "ask-theirs-1")),
            hub.asked_from_afar(batch("laptop", &own)),
        ] {
            assert!(
                matches!(&answers[..], [AskAnswer::Asked { .. }]),
                "{answers:?}"
            );
        }
        let state = hub.state();
        assert_eq!(state.asks.len(), 3);
        assert_eq!(state.asks.pending_from_host("laptop"), 3);
        drop(state);
        let mut seen = Vec::new();
        while let Ok(line) = api.lines.try_recv() {
            let event: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(event["from"], "web@laptop", "{event}");
            seen.push(event["ask_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], "ask-theirs-1", "the caller's id, when free");
        assert_ne!(seen[1], seen[0]);
        assert!(!seen[1..].contains(&own), "{seen:?}");
    }
}
