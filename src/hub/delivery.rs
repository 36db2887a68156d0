//! How a message reaches a peer: pushed over its connection when its Claude Code shows pushes,
//! else kept in its inbox (and, for a session, its journal) until a prompt hook, a waiter or
//! `relay_inbox` takes and acknowledges it.

use tokio::time::Instant;

use crate::{
    ask::{ConnId, PendingAsk},
    errors::RelayError,
    hub::{
        handle::{Hub, State},
        inbox::{Inbox, Owner, Queued},
        outbox::Outbox,
        texts,
        waiters::Wakes,
    },
    protocol::{
        Acked, AskFailure, Delivery, DeliveryMode, FromHub, InboxContents, PeerInfo, Undelivered,
        Waiting,
    },
};

impl State {
    /// How a message reaches the peer on `conn` now: pushed when its Claude Code shows pushes;
    /// else kept in its inbox, and `woken` when its session's waiter will show it at once.
    pub(super) fn delivery_of(&self, conn: ConnId) -> DeliveryMode {
        let Some(peer) = self.peers.get(conn) else {
            return DeliveryMode::Queued;
        };
        if peer.is_pushed_to() {
            return DeliveryMode::Live;
        }
        match &peer.inbox {
            Owner::Session(session) if self.waiters.wakes(session, Instant::now()) != Wakes::No => {
                DeliveryMode::Woken
            }
            _ => DeliveryMode::Queued,
        }
    }

    /// What `peers` says of the peer on `conn`.
    pub(super) fn info_of(&self, conn: ConnId) -> Option<PeerInfo> {
        let peer = self.peers.get(conn)?;
        let waiter = matches!(&peer.inbox, Owner::Session(session)
            if self.waiters.wakes(session, Instant::now()) == Wakes::Armed);
        Some(peer.info(self.delivery_of(conn), waiter))
    }

    /// Whether a message with `bytes` bytes of text can be delivered to the peer on `conn` now:
    /// always when it is pushed to, else when its inbox has room.
    pub(super) fn has_room_for(&self, conn: ConnId, bytes: usize) -> bool {
        let Some(peer) = self.peers.get(conn) else {
            return false;
        };
        peer.is_pushed_to()
            || self
                .inboxes
                .get(&peer.inbox)
                .is_none_or(|inbox| inbox.has_room(bytes))
    }

    /// Pushes `message` to the peer on `conn` or keeps it in its inbox, and says which. `sender`
    /// is told if a kept message expires unread. A message that finds the inbox full (only a
    /// failure notice can: asks and replies are checked for room first) is dropped, counted and
    /// logged.
    pub(super) fn deliver(
        &mut self,
        conn: ConnId,
        message: &FromHub,
        bytes: usize,
        sender: Option<Owner>,
    ) -> DeliveryMode {
        let delivery = self.delivery_of(conn);
        let Some(peer) = self.peers.get(conn) else {
            return delivery;
        };
        if delivery == DeliveryMode::Live {
            peer.outbox.send(message);
            return delivery;
        }
        let seq = self.inboxes.next_seq();
        let queued = Queued::new(seq, message.clone(), sender, bytes);
        let Some(inbox) = self.inboxes.get_mut(&peer.inbox) else {
            return delivery;
        };
        if let Owner::Session(session) = &peer.inbox
            && inbox.has_room(bytes)
        {
            self.journal.keep(session, &queued);
        }
        if !inbox.keep(queued) {
            tracing::warn!(session = %peer.name, "inbox_full_message_dropped");
            return delivery;
        }
        if let Owner::Session(session) = &peer.inbox {
            self.waiters.wake(session);
        }
        // The connection keeps its own book of pending asks; tell it this one is settled.
        if let FromHub::Reply(Delivery { ask_id, .. })
        | FromHub::AskFailed(AskFailure { ask_id, .. }) = message
        {
            peer.outbox.send(&FromHub::Settled {
                ask_id: ask_id.clone(),
            });
        }
        delivery
    }

    /// Takes the question of `ask`, which can no longer be answered, out of its target's inbox
    /// if it still waits there unseen.
    pub(super) fn withdraw_queued_question(&mut self, ask: &PendingAsk) {
        let Some(target) = self.peers.get(ask.target) else {
            return;
        };
        if let Some(inbox) = self.inboxes.get_mut(&target.inbox)
            && inbox.withdraw_question(&ask.ask_id)
        {
            tracing::info!(ask_id = %ask.ask_id, session = %target.name, "queued_question_withdrawn");
        }
    }

    /// Whose inbox `conn` means: the Claude Code session it names (a hook, a waiter), else its
    /// own.
    fn inbox_of(&self, conn: ConnId, session_id: Option<&str>) -> Result<Owner, RelayError> {
        match session_id {
            Some(id) => Ok(Owner::Session(id.to_owned())),
            None => Ok(self
                .peers
                .get(conn)
                .ok_or_else(texts::not_registered)?
                .inbox
                .clone()),
        }
    }
}

impl Hub {
    /// Arms the waiter on `conn` for the Claude Code session `session`: it is told `wake` as soon
    /// as the session's inbox holds something (at once if it does now), or to stand down when
    /// the session's pushes are on.
    pub(crate) fn arm_waiter(&self, conn: ConnId, session: &str, outbox: Outbox) -> Waiting {
        let mut state = self.state();
        let owner = Owner::Session(session.to_owned());
        let pushed = state
            .peers
            .with_inbox(&owner)
            .and_then(|peer| state.peers.get(peer))
            .is_some_and(|peer| peer.is_pushed_to());
        state.waiters.arm(session, conn, outbox, Instant::now());
        if pushed {
            state
                .waiters
                .not_needed(session, "this session's pushes are on: messages are pushed");
        } else if state
            .inboxes
            .get(&owner)
            .is_some_and(|inbox| !inbox.is_empty())
        {
            state.waiters.wake(session);
        }
        tracing::info!(conn = conn.0, pushed, "waiter_armed");
        Waiting {}
    }

    /// Hands `conn` a page of the inbox of the peer on `conn`, or of the Claude Code session
    /// `session_id` (whose channel may be connected or reconnecting). The page stays in the inbox
    /// until [`Hub::ack_inbox`].
    pub(crate) fn take_inbox(
        &self,
        conn: ConnId,
        session_id: Option<&str>,
    ) -> Result<InboxContents, RelayError> {
        let mut state = self.state();
        let owner = state.inbox_of(conn, session_id)?;
        let take_id = state.inboxes.next_take();
        let inbox = state
            .inboxes
            .get_mut(&owner)
            .ok_or_else(|| texts::no_session_with_id(session_id.unwrap_or_default()))?;
        let page = inbox.take(conn, take_id, Instant::now());
        if let (Owner::Session(session), Some(_)) = (&owner, page.take_id) {
            state.waiters.took(session, conn);
        }
        if !page.messages.is_empty() || page.dropped > 0 {
            tracing::info!(
                take_id,
                count = page.messages.len(),
                dropped = page.dropped,
                more = page.more,
                "inbox_taken"
            );
        }
        Ok(InboxContents {
            messages: page.messages,
            dropped: page.dropped,
            more: page.more,
            take_id: page.take_id,
        })
    }

    /// Acknowledges page `take_id`: its messages were shown, and leave the inbox for good.
    pub(crate) fn ack_inbox(
        &self,
        conn: ConnId,
        session_id: Option<&str>,
        take_id: u64,
    ) -> Result<Acked, RelayError> {
        let mut state = self.state();
        let owner = state.inbox_of(conn, session_id)?;
        let acked = state
            .inboxes
            .get_mut(&owner)
            .ok_or_else(|| texts::no_session_with_id(session_id.unwrap_or_default()))?
            .ack(take_id)
            .map_err(|_| texts::no_such_take(take_id))?;
        tracing::info!(take_id, count = acked.len(), "inbox_acknowledged");
        if let (Owner::Session(session), Some(last)) = (&owner, acked.last()) {
            state.journal.ack(session, last.seq);
            let state = &mut *state;
            state.journal.compact_if_grown(&state.inboxes);
        }
        Ok(Acked {})
    }

    /// Drops the inboxes of sessions that did not come back within the grace. The sender of
    /// each reply that is lost unread is told, if it is still connected.
    pub(super) fn expire_inboxes(&self, state: &mut State, now: Instant) {
        for (owner, inbox) in state.inboxes.expire(now) {
            tracing::warn!(lost = inbox.len(), "orphaned_inbox_expired");
            if let Owner::Session(session) = &owner {
                state.journal.expired(session);
            }
            self.report_unread(state, &inbox);
        }
    }

    /// Tells the sender of each reply in `inbox`, which is gone unread, that it was never read,
    /// if the sender is still connected.
    pub(super) fn report_unread(&self, state: &mut State, inbox: &Inbox) {
        for queued in inbox.queued() {
            let (Some(sender), FromHub::Reply(reply)) = (&queued.sender, &queued.message) else {
                continue;
            };
            let Some(conn) = state.peers.with_inbox(sender) else {
                continue;
            };
            let to = state
                .asks
                .caller_name_of(&reply.ask_id)
                .unwrap_or_else(|| "the session that asked".to_owned());
            let event = FromHub::Undelivered(Undelivered {
                message_id: self.new_id("msg"),
                ask_id: reply.ask_id.clone(),
                message: texts::reply_expired_unread(&to, &reply.ask_id),
                to,
            });
            tracing::info!(ask_id = %reply.ask_id, "reply_expired_unread");
            let bytes = reply.text.len();
            state.deliver(conn, &event, bytes, None);
        }
    }
}
