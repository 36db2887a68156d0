//! Asks: one question to one peer or to everyone, the reply, and the failures (timeout, target
//! gone) that end an ask which will never be answered. Every ask ends exactly once, and its
//! caller is told how.
//!
//! An ask for a session of another host, a broadcast's share for other hosts, and a reply to a
//! session of another host are recorded here and [`Routed::Afar`]: `super::afar` sends them and
//! answers the client when the other hub has.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    ask::{ConnId, PendingAsk},
    errors::{ErrorCode, RelayError},
    hub::{
        afar::{AskAfar, BroadcastAfar, ReplyAfar, Share},
        federation::{
            Federation,
            wire::{AskBatch, RemoteAsk, RemoteReply},
        },
        handle::{Held, Hub, State},
        inbox::Owner,
        outbox::{HUB_UNREAD_BYTES, PEER_BUSY_BYTES},
        remote::address,
        texts,
    },
    protocol::{
        AskFailure, AskRequest, Asked, BroadcastAsk, BroadcastRequest, Broadcasted, Delivery,
        DeliveryMode, FromHub, PeerKind, Replied, ReplyRequest,
    },
};

/// Where an operation was carried out: here, whole; or partly on other hosts, which `afar`
/// holds what to send for.
pub(crate) enum Routed<T, A> {
    Here(T),
    Afar(A),
}

/// The session an ask is for.
enum Target {
    Here(ConnId),
    /// Session `name` of `host`.
    Afar {
        host: String,
        name: String,
    },
}

/// The most asks one peer may have pending: past it, `too_many_asks` (a burst of asks from one
/// session cannot flood another, or the hub).
pub(super) const MAX_PENDING_PER_PEER: usize = 4096;

/// The most asks the hub holds pending from the sessions of one other host together.
pub(super) const MAX_PENDING_PER_HOST: usize = 16_384;

/// The most asks the hub holds pending from everyone together.
pub(super) const MAX_PENDING: usize = 65_536;

impl State {
    /// Refuses `count` more asks from `caller` when it, or the hub, has too many pending.
    fn room_for_asks(&self, caller: ConnId, count: usize) -> Result<(), RelayError> {
        let from_caller = self.asks.pending_from(caller);
        if from_caller + count > MAX_PENDING_PER_PEER {
            return Err(texts::too_many_asks(from_caller, MAX_PENDING_PER_PEER));
        }
        if self.asks.len() + count > MAX_PENDING {
            return Err(texts::hub_too_many_asks(MAX_PENDING));
        }
        Ok(())
    }

    /// The session `to` (a name, or `name@host`) means: a session here if one has that name,
    /// else the one session of another host that has it.
    fn resolve(&self, to: &str, federation: Option<&Federation>) -> Result<Target, RelayError> {
        let (name, host) = match to.split_once('@') {
            Some((name, host)) => (name, Some(host)),
            None => (to, None),
        };
        let own_host = federation.map(Federation::host);
        if host.is_none() || host == own_host {
            if let Some((conn, _)) = self.peers.by_name(name) {
                return Ok(Target::Here(conn));
            }
            if host.is_some() {
                return Err(texts::peer_not_found(to));
            }
        }
        let Some(federation) = federation else {
            return Err(match host {
                Some(_) => texts::not_federated(to),
                None => texts::peer_not_found(to),
            });
        };
        let peer = match host {
            Some(host) if !self.hosts.knows(host) => {
                return Err(if federation.is_connected() {
                    texts::no_such_host(host, &self.hosts.names())
                } else {
                    texts::host_unreachable(host, "the federation's server cannot be reached")
                });
            }
            Some(host) => self
                .hosts
                .get(host, name)
                .ok_or_else(|| texts::peer_not_found(to))?,
            None => match self.hosts.named(name).as_slice() {
                [] => return Err(texts::peer_not_found(to)),
                [peer] => *peer,
                several => {
                    let candidates: Vec<String> = several
                        .iter()
                        .map(|peer| address(&peer.name, &peer.host))
                        .collect();
                    return Err(texts::ambiguous(name, &candidates));
                }
            },
        };
        if peer.kind == PeerKind::Cli {
            return Err(texts::command_line_cannot_answer(&address(
                &peer.name, &peer.host,
            )));
        }
        Ok(Target::Afar {
            host: peer.host.clone(),
            name: peer.name.clone(),
        })
    }

    /// Tells the caller of `ask_id` (on `caller`) of it: at once, or after the answer that the
    /// ask was made when its host has not given it yet.
    pub(super) fn tell_caller(
        &mut self,
        caller: ConnId,
        ask_id: &str,
        event: FromHub,
        bytes: usize,
        sender: Option<Owner>,
    ) {
        match self.unconfirmed.get_mut(ask_id) {
            Some(held) => held.push(Held {
                event,
                bytes,
                sender,
            }),
            None => {
                self.deliver(caller, &event, bytes, sender);
            }
        }
    }

    /// Whether the peer on `target` reads its messages well enough to be sent more: a peer
    /// with much unread, or a hub holding much unread for everyone, takes no new asks.
    pub(super) fn busy(&self, target: ConnId, unread_everywhere: usize) -> Option<RelayError> {
        let peer = self.peers.get(target)?;
        let unread = peer.outbox.unread();
        if unread > PEER_BUSY_BYTES {
            return Some(texts::peer_busy(&peer.name, unread));
        }
        (unread_everywhere > HUB_UNREAD_BYTES).then(|| texts::hub_busy(unread_everywhere))
    }
}

impl Hub {
    pub(crate) fn ask(
        &self,
        conn: ConnId,
        request: AskRequest,
    ) -> Result<Routed<Asked, AskAfar>, RelayError> {
        let mut state = self.state();
        let caller = state
            .peers
            .get(conn)
            .ok_or_else(texts::not_registered)?
            .name
            .clone();
        state.room_for_asks(conn, 1)?;
        let target = match state.resolve(&request.to, self.federation())? {
            Target::Here(target) => target,
            Target::Afar { host, name } => {
                return Ok(Routed::Afar(
                    self.ask_afar(&mut state, conn, caller, request, host, name),
                ));
            }
        };
        let target_peer = state.peers.get(target).expect("resolved just now");
        if target == conn {
            return Err(texts::asked_itself(&caller));
        }
        if target_peer.kind == PeerKind::Cli {
            return Err(texts::command_line_cannot_answer(&request.to));
        }
        if !state.has_room_for(target, request.question.len()) {
            return Err(texts::inbox_full(&request.to));
        }
        if let Some(busy) = state.busy(target, self.unread().total()) {
            return Err(busy);
        }
        let ask_id = self.new_id("ask");
        let thread_id = request.thread_id.unwrap_or_else(|| ask_id.clone());
        let pending = PendingAsk {
            ask_id: ask_id.clone(),
            caller: conn,
            caller_name: caller,
            target,
            target_name: request.to,
            deadline: Instant::now() + Duration::from_secs(request.timeout_secs),
            timeout_secs: request.timeout_secs,
            thread_id: thread_id.clone(),
            broadcast_id: None,
            asked_from: None,
            target_host: None,
        };
        let delivery = self.start_ask(&mut state, pending, request.question);
        Ok(Routed::Here(Asked {
            ask_id,
            thread_id,
            delivery,
        }))
    }

    /// Records an ask of `caller` (on `conn`) for session `name` of `host`, and what to send.
    fn ask_afar(
        &self,
        state: &mut State,
        conn: ConnId,
        caller: String,
        request: AskRequest,
        host: String,
        name: String,
    ) -> AskAfar {
        let deadline = Instant::now() + Duration::from_secs(request.timeout_secs);
        let mut share = Share {
            host,
            batch: self.batch(caller, request.question, None, request.timeout_secs),
        };
        let ask_id = self.add_afar(state, &mut share, conn, deadline, request.thread_id, name);
        tracing::info!(ask_id = %ask_id, from = %share.batch.from, host = %share.host, "ask_sent_afar");
        AskAfar {
            caller: conn,
            share,
        }
    }

    /// Records an ask of the session on `conn` for session `name` of `share`'s host, in a
    /// thread of its own unless `thread_id` is given, and adds it to `share`. Returns its id.
    fn add_afar(
        &self,
        state: &mut State,
        share: &mut Share,
        conn: ConnId,
        deadline: Instant,
        thread_id: Option<String>,
        name: String,
    ) -> String {
        let ask_id = self.new_id("ask");
        let thread_id = thread_id.unwrap_or_else(|| ask_id.clone());
        state.unconfirmed.insert(ask_id.clone(), Vec::new());
        let pending = PendingAsk {
            ask_id: ask_id.clone(),
            caller: conn,
            caller_name: share.batch.from.clone(),
            target: ConnId::REMOTE,
            target_name: address(&name, &share.host),
            deadline,
            timeout_secs: share.batch.timeout_secs,
            thread_id: thread_id.clone(),
            broadcast_id: share.batch.broadcast_id.clone(),
            asked_from: None,
            target_host: Some(share.host.clone()),
        };
        if state.asks.insert(pending) {
            self.wake_deadline_task();
        }
        share.batch.asks.push(RemoteAsk {
            ask_id: ask_id.clone(),
            to: name,
            thread_id,
        });
        ask_id
    }

    /// An empty batch of asks from session `from` of this hub.
    fn batch(
        &self,
        from: String,
        question: String,
        broadcast_id: Option<String>,
        timeout_secs: u64,
    ) -> AskBatch {
        AskBatch {
            from_host: self
                .federation()
                .expect("only a federated hub asks afar")
                .host()
                .to_owned(),
            from,
            question,
            broadcast_id,
            timeout_secs,
            asks: Vec::new(),
        }
    }

    pub(crate) fn broadcast(
        &self,
        conn: ConnId,
        request: BroadcastRequest,
    ) -> Result<Routed<Broadcasted, BroadcastAfar>, RelayError> {
        let mut state = self.state();
        let caller = state
            .peers
            .get(conn)
            .ok_or_else(texts::not_registered)?
            .name
            .clone();
        let broadcast_id = self.new_id("bc");
        let deadline = Instant::now() + Duration::from_secs(request.timeout_secs);
        let mut targets: Vec<(ConnId, String)> = Vec::new();
        let mut skipped = Vec::new();
        let unread = self.unread().total();
        for (target, peer) in state.peers.iter() {
            // A command line cannot answer, so it is never asked.
            if (request.exclude_self && target == conn) || peer.kind == PeerKind::Cli {
                continue;
            }
            if state.has_room_for(target, request.question.len())
                && state.busy(target, unread).is_none()
            {
                targets.push((target, peer.name.clone()));
            } else {
                skipped.push(peer.name.clone());
            }
        }
        // Every session of every other host, by host: their hubs decide whether they have room.
        let afar: Vec<(String, Vec<String>)> = if self.federation().is_some() {
            state.hosts.askable()
        } else {
            Vec::new()
        };
        let afar_count: usize = afar.iter().map(|(_, names)| names.len()).sum();
        state.room_for_asks(conn, targets.len() + afar_count)?;
        let mut asks = Vec::with_capacity(targets.len());
        for (target, target_name) in targets {
            let ask_id = self.new_id("ask");
            if !afar.is_empty() {
                // The caller is answered once the other hosts have: what comes for this ask
                // before then waits for that answer, as for theirs.
                state.unconfirmed.insert(ask_id.clone(), Vec::new());
            }
            let pending = PendingAsk {
                ask_id: ask_id.clone(),
                caller: conn,
                caller_name: caller.clone(),
                target,
                target_name: target_name.clone(),
                deadline,
                timeout_secs: request.timeout_secs,
                thread_id: broadcast_id.clone(),
                broadcast_id: Some(broadcast_id.clone()),
                asked_from: None,
                target_host: None,
            };
            let delivery = self.start_ask(&mut state, pending, request.question.clone());
            asks.push(BroadcastAsk {
                ask_id,
                to: target_name,
                delivery,
            });
        }
        tracing::info!(
            broadcast_id = %broadcast_id, from = %caller, peer_count = asks.len(),
            afar_count, "broadcast_sent"
        );
        let here = Broadcasted {
            broadcast_id: broadcast_id.clone(),
            asks,
            skipped,
        };
        if afar.is_empty() {
            return Ok(Routed::Here(here));
        }
        let mut shares = Vec::with_capacity(afar.len());
        for (host, names) in afar {
            let mut share = Share {
                host: host.clone(),
                batch: self.batch(
                    caller.clone(),
                    request.question.clone(),
                    Some(broadcast_id.clone()),
                    request.timeout_secs,
                ),
            };
            for name in names {
                let thread_id = Some(broadcast_id.clone());
                self.add_afar(&mut state, &mut share, conn, deadline, thread_id, name);
            }
            shares.push(share);
        }
        Ok(Routed::Afar(BroadcastAfar {
            caller: conn,
            here,
            shares,
        }))
    }

    /// Records `ask` and hands the question to its target, live or into its inbox. The caller
    /// has checked that the target has room.
    pub(super) fn start_ask(
        &self,
        state: &mut State,
        ask: PendingAsk,
        question: String,
    ) -> DeliveryMode {
        let bytes = question.len();
        let event = FromHub::Ask(Delivery {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id.clone(),
            from: ask.caller_name.clone(),
            thread_id: ask.thread_id.clone(),
            broadcast_id: ask.broadcast_id.clone(),
            text: question,
        });
        // If a live target's queue overflows its connection closes, and its disconnect fails
        // this ask with `peer_gone`: the caller is told either way.
        let sender = state
            .peers
            .get(ask.caller)
            .map(|caller| caller.inbox.clone());
        let delivery = state.deliver(ask.target, &event, bytes, sender);
        tracing::info!(
            ask_id = %ask.ask_id, from = %ask.caller_name, to = %ask.target_name, bytes,
            timeout_secs = ask.timeout_secs, delivery = ?delivery, "ask_sent"
        );
        if state.asks.insert(ask) {
            self.wake_deadline_task();
        }
        delivery
    }

    pub(crate) fn reply(
        &self,
        conn: ConnId,
        request: ReplyRequest,
    ) -> Result<Routed<Replied, ReplyAfar>, RelayError> {
        let mut state = self.state();
        let replier = state
            .peers
            .get(conn)
            .ok_or_else(texts::not_registered)?
            .name
            .clone();
        let ask = state
            .asks
            .take_for_reply(&request.ask_id, conn)
            .map_err(|why| texts::not_pending(&request.ask_id, why))?;
        if let Some(from) = &ask.asked_from {
            tracing::info!(ask_id = %ask.ask_id, from = %replier, to = %ask.caller_name, "reply_sent_afar");
            let from_host = self
                .federation()
                .expect("only a federated hub has asks from afar")
                .host()
                .to_owned();
            let reply = RemoteReply {
                from_host,
                ask_id: from.ask_id.clone(),
                from: replier,
                text: request.text,
            };
            return Ok(Routed::Afar(ReplyAfar { ask, reply }));
        }
        let bytes = request.text.len();
        if let Some(caller) = state.peers.get(ask.caller)
            && !state.has_room_for(ask.caller, bytes)
        {
            let error = texts::inbox_full(&caller.name);
            state.asks.restore(ask);
            return Err(error);
        }
        tracing::info!(ask_id = %ask.ask_id, from = %replier, to = %ask.caller_name, bytes, "reply_sent");
        let (caller, ask_id) = (ask.caller, ask.ask_id.clone());
        let sender = state.peers.get(conn).map(|replier| replier.inbox.clone());
        let event = FromHub::Reply(Delivery {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id,
            from: replier,
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            text: request.text,
        });
        state.tell_caller(caller, &ask_id, event, bytes, sender);
        Ok(Routed::Here(Replied {}))
    }

    /// Fails every ask whose deadline is at or before `now` with `timeout`. (An ask from a
    /// session of another host only has its question withdrawn: the caller's hub keeps the
    /// deadline, and tells its caller itself.)
    pub(super) fn expire_asks(&self, state: &mut State, now: Instant) {
        for ask in state.asks.expire(now) {
            tracing::info!(ask_id = %ask.ask_id, to = %ask.target_name, "ask_timed_out");
            state.withdraw_queued_question(&ask);
            let message = texts::timed_out(&ask.target_name, &ask.ask_id, ask.timeout_secs);
            self.fail(state, ask, ErrorCode::Timeout, message);
        }
    }

    /// Tells the caller of `ask` that it failed. A caller of another host is told by its own
    /// hub: this one only says when the target left (the one failure that hub cannot see).
    pub(super) fn fail(
        &self,
        state: &mut State,
        ask: PendingAsk,
        code: ErrorCode,
        message: String,
    ) {
        if ask.asked_from.is_some() {
            if code == ErrorCode::PeerGone {
                self.tell_target_left(&ask);
            }
            return;
        }
        let bytes = message.len();
        let (caller, ask_id) = (ask.caller, ask.ask_id.clone());
        let event = FromHub::AskFailed(AskFailure {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id,
            to: ask.target_name,
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            code,
            message,
        });
        state.tell_caller(caller, &ask_id, event, bytes, None);
    }
}
