//! A peer's inbox: the messages kept for a session whose Claude Code does not show channel
//! pushes, until its next prompt's hook (or `relay_inbox`) takes them.
//!
//! The inbox is bounded by count and bytes. New asks and replies to a full inbox are refused to
//! their senders (`inbox_full`), so nothing is dropped for them; a failure notice that finds the
//! inbox full is dropped, counted, logged and reported with the next take.

use std::collections::VecDeque;

use crate::protocol::FromHub;

/// The most messages an inbox keeps.
pub const INBOX_MAX_MESSAGES: usize = 500;

/// The most bytes of message text an inbox keeps.
pub const INBOX_MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Inbox {
    messages: VecDeque<(FromHub, usize)>,
    bytes: usize,
    dropped: u64,
}

impl Inbox {
    /// Whether a message of `bytes` bytes of text fits.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.messages.len() < INBOX_MAX_MESSAGES && self.bytes + bytes <= INBOX_MAX_BYTES
    }

    /// Keeps `message` (of `bytes` bytes of text). Returns false, and counts it as dropped, when
    /// it does not fit.
    pub fn keep(&mut self, message: FromHub, bytes: usize) -> bool {
        if !self.has_room(bytes) {
            self.dropped += 1;
            return false;
        }
        self.bytes += bytes;
        self.messages.push_back((message, bytes));
        true
    }

    /// Takes every message, oldest first, and the count of those dropped since the last take.
    pub fn take(&mut self) -> (Vec<FromHub>, u64) {
        self.bytes = 0;
        let messages = self
            .messages
            .drain(..)
            .map(|(message, _)| message)
            .collect();
        (messages, std::mem::take(&mut self.dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Delivery;

    fn message(n: usize) -> FromHub {
        FromHub::Ask(Delivery {
            message_id: format!("m{n}"),
            ask_id: format!("a{n}"),
            from: "alpha".into(),
            thread_id: format!("a{n}"),
            broadcast_id: None,
            text: "q".into(),
        })
    }

    #[test]
    fn keeps_messages_in_order_until_taken() {
        let mut inbox = Inbox::default();
        assert!(inbox.keep(message(1), 1));
        assert!(inbox.keep(message(2), 1));
        let (messages, dropped) = inbox.take();
        assert_eq!(messages, [message(1), message(2)]);
        assert_eq!(dropped, 0);
        assert_eq!(inbox.take().0, []);
    }

    #[test]
    fn is_bounded_by_count_and_bytes_and_counts_what_it_drops() {
        let mut inbox = Inbox::default();
        for n in 0..INBOX_MAX_MESSAGES {
            assert!(inbox.keep(message(n), 1));
        }
        assert!(!inbox.has_room(1));
        assert!(!inbox.keep(message(9999), 1));
        let (messages, dropped) = inbox.take();
        assert_eq!(messages.len(), INBOX_MAX_MESSAGES);
        assert_eq!(dropped, 1);
        assert!(inbox.keep(message(1), INBOX_MAX_BYTES));
        assert!(!inbox.has_room(1));
        assert_eq!(inbox.take().1, 0, "the drop count was reported once");
    }
}
