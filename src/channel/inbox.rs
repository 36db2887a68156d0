//! The channel's own small inbox, for a session whose Claude Code does not show pushes.
//!
//! The hub keeps every message for such a session in its inbox at the hub. Only one kind of
//! message is born in the channel itself: the `hub_unreachable` failure of its pending asks when
//! the hub connection drops. Pushing those would lose them, so they wait here for `relay_inbox`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use crate::{
    client::{Event, lock},
    errors::ErrorCode,
};

/// Whether `event` is this channel's report of an ask in `settled` as `hub_unreachable`.
fn is_settled_at_hub(settled: &HashSet<String>, event: &Event) -> bool {
    matches!(event, Event::AskFailed(failure)
        if failure.code == ErrorCode::HubUnreachable && settled.contains(&failure.ask_id))
}

/// The most messages kept; more are counted as dropped and reported with the next take.
pub(crate) const LOCAL_INBOX_MAX: usize = 500;

#[derive(Debug, Clone, Default)]
pub(crate) struct LocalInbox(Arc<Mutex<Kept>>);

#[derive(Debug, Default)]
struct Kept {
    events: Vec<Event>,
    dropped: u64,
    /// Asks the hub said were settled when this channel last registered.
    settled: HashSet<String>,
}

impl LocalInbox {
    pub(crate) fn keep(&self, event: Event) {
        let mut kept = lock(&self.0);
        if is_settled_at_hub(&kept.settled, &event) {
            tracing::info!("local_failure_withdrawn_settled_at_hub");
            return;
        }
        if kept.events.len() < LOCAL_INBOX_MAX {
            kept.events.push(event);
        } else {
            kept.dropped += 1;
            tracing::warn!("local_inbox_full_message_dropped");
        }
    }

    /// The hub says the asks `ask_ids` are settled: their reply or failure waits in this
    /// session's inbox there. It kept them before it crashed, without telling this channel, which
    /// took the asks for ended with it: the `hub_unreachable` failures it made for them are
    /// withdrawn, kept already or still on their way here, so that no ask ends twice.
    pub(crate) fn settled_at_hub(&self, ask_ids: Vec<String>) {
        let mut kept = lock(&self.0);
        kept.settled = ask_ids.into_iter().collect();
        let Kept {
            events, settled, ..
        } = &mut *kept;
        events.retain(|event| !is_settled_at_hub(settled, event));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AskFailure, Delivery};

    fn unreachable(ask_id: &str) -> Event {
        Event::AskFailed(AskFailure {
            message_id: format!("local-{ask_id}"),
            ask_id: ask_id.to_owned(),
            to: "beta".to_owned(),
            thread_id: ask_id.to_owned(),
            broadcast_id: None,
            code: ErrorCode::HubUnreachable,
            message: "the connection to the hub dropped".to_owned(),
        })
    }

    fn ask_ids(events: &[Event]) -> Vec<&str> {
        events
            .iter()
            .map(|event| match event {
                Event::AskFailed(failure) => failure.ask_id.as_str(),
                Event::Reply(Delivery { ask_id, .. }) => ask_id.as_str(),
                _ => "other",
            })
            .collect()
    }

    /// The asks the hub says are settled lose their `hub_unreachable` reports, those kept and
    /// those that arrive after; the others keep theirs.
    #[test]
    fn reports_of_asks_settled_at_the_hub_are_withdrawn() {
        let local = LocalInbox::default();
        local.keep(unreachable("ask-1"));
        local.keep(unreachable("ask-2"));
        local.settled_at_hub(vec!["ask-1".to_owned(), "ask-3".to_owned()]);
        local.keep(unreachable("ask-3"));
        local.keep(unreachable("ask-4"));
        let (events, dropped) = local.take();
        assert_eq!(ask_ids(&events), ["ask-2", "ask-4"]);
        assert_eq!(dropped, 0);
    }
}
