//! Asks: one question to one peer or to everyone, the reply, and the failures (timeout, target
//! gone) that end an ask which will never be answered. Every ask ends exactly once, and its
//! caller is told how.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    ask::{ConnId, PendingAsk},
    errors::{ErrorCode, RelayError},
    hub::{
        handle::{Hub, State},
        outbox::{HUB_UNREAD_BYTES, PEER_BUSY_BYTES},
        texts,
    },
    protocol::{
        AskFailure, AskRequest, Asked, BroadcastAsk, BroadcastRequest, Broadcasted, Delivery,
        DeliveryMode, FromHub, PeerKind, Replied, ReplyRequest,
    },
};

/// The most asks one peer may have pending: past it, `too_many_asks` (a burst of asks from one
/// session cannot flood another, or the hub).
pub(super) const MAX_PENDING_PER_PEER: usize = 4096;

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

    /// Whether the peer on `target` reads its messages well enough to be sent more: a peer
    /// with much unread, or a hub holding much unread for everyone, takes no new asks.
    fn busy(&self, target: ConnId, unread_everywhere: usize) -> Option<RelayError> {
        let peer = self.peers.get(target)?;
        let unread = peer.outbox.unread();
        if unread > PEER_BUSY_BYTES {
            return Some(texts::peer_busy(&peer.name, unread));
        }
        (unread_everywhere > HUB_UNREAD_BYTES).then(|| texts::hub_busy(unread_everywhere))
    }
}

impl Hub {
    pub(crate) fn ask(&self, conn: ConnId, request: AskRequest) -> Result<Asked, RelayError> {
        let mut state = self.state();
        let caller = state
            .peers
            .get(conn)
            .ok_or_else(texts::not_registered)?
            .name
            .clone();
        state.room_for_asks(conn, 1)?;
        let (target, target_peer) = state
            .peers
            .by_name(&request.to)
            .ok_or_else(|| texts::peer_not_found(&request.to))?;
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
        };
        let delivery = self.start_ask(&mut state, pending, request.question);
        Ok(Asked {
            ask_id,
            thread_id,
            delivery,
        })
    }

    pub(crate) fn broadcast(
        &self,
        conn: ConnId,
        request: BroadcastRequest,
    ) -> Result<Broadcasted, RelayError> {
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
        state.room_for_asks(conn, targets.len())?;
        let mut asks = Vec::with_capacity(targets.len());
        for (target, target_name) in targets {
            let ask_id = self.new_id("ask");
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
            };
            let delivery = self.start_ask(&mut state, pending, request.question.clone());
            asks.push(BroadcastAsk {
                ask_id,
                to: target_name,
                delivery,
            });
        }
        tracing::info!(broadcast_id = %broadcast_id, from = %caller, peer_count = asks.len(), "broadcast_sent");
        Ok(Broadcasted {
            broadcast_id,
            asks,
            skipped,
        })
    }

    /// Records `ask` and hands the question to its target, live or into its inbox. The caller
    /// has checked that the target has room.
    fn start_ask(&self, state: &mut State, ask: PendingAsk, question: String) -> DeliveryMode {
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

    pub(crate) fn reply(&self, conn: ConnId, request: ReplyRequest) -> Result<Replied, RelayError> {
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
        let bytes = request.text.len();
        if let Some(caller) = state.peers.get(ask.caller)
            && !state.has_room_for(ask.caller, bytes)
        {
            let error = texts::inbox_full(&caller.name);
            state.asks.restore(ask);
            return Err(error);
        }
        tracing::info!(ask_id = %ask.ask_id, from = %replier, to = %ask.caller_name, bytes, "reply_sent");
        let caller = ask.caller;
        let sender = state.peers.get(conn).map(|replier| replier.inbox.clone());
        let event = FromHub::Reply(Delivery {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id,
            from: replier,
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            text: request.text,
        });
        state.deliver(caller, &event, bytes, sender);
        Ok(Replied {})
    }

    /// Fails every ask whose deadline is at or before `now` with `timeout`.
    pub(super) fn expire_asks(&self, state: &mut State, now: Instant) {
        for ask in state.asks.expire(now) {
            tracing::info!(ask_id = %ask.ask_id, to = %ask.target_name, "ask_timed_out");
            let message = texts::timed_out(&ask.target_name, &ask.ask_id, ask.timeout_secs);
            state.withdraw_queued_question(&ask);
            self.fail(state, ask, ErrorCode::Timeout, message);
        }
    }

    /// Tells the caller of `ask` that it failed.
    pub(super) fn fail(
        &self,
        state: &mut State,
        ask: PendingAsk,
        code: ErrorCode,
        message: String,
    ) {
        let bytes = message.len();
        let event = FromHub::AskFailed(AskFailure {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id,
            to: ask.target_name,
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            code,
            message,
        });
        state.deliver(ask.caller, &event, bytes, None);
    }
}
