//! The channel's own small inbox, for a session whose Claude Code does not show pushes.
//!
//! The hub keeps every message for such a session in its inbox at the hub. Only one kind of
//! message is born in the channel itself: the `hub_unreachable` failure of its pending asks when
//! the hub connection drops. Pushing those would lose them, so they wait here for `relay_inbox`.

use std::sync::{Arc, Mutex};

use crate::client::{Event, lock};

/// The most messages kept; more are counted as dropped and reported with the next take.
pub(crate) const LOCAL_INBOX_MAX: usize = 500;

#[derive(Debug, Clone, Default)]
pub(crate) struct LocalInbox(Arc<Mutex<Kept>>);

#[derive(Debug, Default)]
struct Kept {
    events: Vec<Event>,
    dropped: u64,
}

impl LocalInbox {
    pub(crate) fn keep(&self, event: Event) {
        let mut kept = lock(&self.0);
        if kept.events.len() < LOCAL_INBOX_MAX {
            kept.events.push(event);
        } else {
            kept.dropped += 1;
            tracing::warn!("local_inbox_full_message_dropped");
        }
    }

    /// Every kept message, oldest first, and how many were dropped since the last take.
    pub(crate) fn take(&self) -> (Vec<Event>, u64) {
        let mut kept = lock(&self.0);
        (
            std::mem::take(&mut kept.events),
            std::mem::take(&mut kept.dropped),
        )
    }
}
