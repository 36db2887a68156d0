//! How a message reaches a peer: pushed over its connection when its Claude Code shows pushes,
//! else kept in its inbox until a prompt hook or `relay_inbox` takes it.

use tokio::time::Instant;

use crate::{
    ask::{ConnId, PendingAsk},
    errors::RelayError,
    hub::{
        handle::{Hub, State},
        inbox::{Inbox, Owner},
        texts,
    },
    protocol::{AskFailure, Delivery, DeliveryMode, FromHub, InboxContents},
};

impl State {
    /// Whether a message with `bytes` bytes of text can be delivered to the peer on `conn` now:
    /// always when it is pushed to, else when its inbox has room.
    pub(super) fn has_room_for(&self, conn: ConnId, bytes: usize) -> bool {
        let Some(peer) = self.peers.get(conn) else {
            return false;
        };
        peer.delivery() == DeliveryMode::Live
            || self
                .inboxes
                .get(&peer.inbox)
                .is_none_or(|inbox| inbox.has_room(bytes))
    }

    /// Pushes `message` to the peer on `conn` or keeps it in its inbox, and says which. A message
    /// that finds the inbox full (only a failure notice can: asks and replies are checked for
    /// room first) is dropped, counted and logged.
    pub(super) fn deliver(
        &mut self,
        conn: ConnId,
        message: &FromHub,
        bytes: usize,
    ) -> DeliveryMode {
        let Some(peer) = self.peers.get(conn) else {
            return DeliveryMode::Live;
        };
        let delivery = peer.delivery();
        if delivery == DeliveryMode::Live {
            peer.outbox.send(message);
            return delivery;
        }
        let kept = self
            .inboxes
            .get_mut(&peer.inbox)
            .is_some_and(|inbox| inbox.keep(message.clone(), bytes));
        if !kept {
            tracing::warn!(session = %peer.name, "inbox_full_message_dropped");
            return delivery;
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
}

impl Hub {
    /// Takes the inbox of the peer on `conn`, or of the Claude Code session `session_id` (whose
    /// channel may be connected or reconnecting).
    pub fn take_inbox(
        &self,
        conn: ConnId,
        session_id: Option<&str>,
    ) -> Result<InboxContents, RelayError> {
        let mut state = self.state();
        let owner = match session_id {
            Some(id) => Owner::Session(id.to_owned()),
            None => state
                .peers
                .get(conn)
                .ok_or_else(texts::not_registered)?
                .inbox
                .clone(),
        };
        let inbox = state
            .inboxes
            .get_mut(&owner)
            .ok_or_else(|| texts::no_session_with_id(session_id.unwrap_or_default()))?;
        Ok(take_page(inbox, &owner))
    }
}

/// One page of `inbox`, with whether more is waiting.
fn take_page(inbox: &mut Inbox, owner: &Owner) -> InboxContents {
    let (messages, dropped) = inbox.take();
    let more = !inbox.is_empty();
    if !messages.is_empty() || dropped > 0 {
        tracing::info!(owner = ?owner, count = messages.len(), dropped, more, "inbox_taken");
    }
    InboxContents {
        messages,
        dropped,
        more,
    }
}

/// Drops the inboxes of sessions that did not come back within the grace.
pub(super) fn expire_inboxes(state: &mut State, now: Instant) {
    for (owner, inbox) in state.inboxes.expire(now) {
        tracing::warn!(owner = ?owner, lost = inbox.len(), "orphaned_inbox_expired");
    }
}
