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

/// How many bytes of encoded messages one take hands over at most, so that the answer stays
/// within the line limit a client reads (one message always fits: its text was within it).
pub const TAKE_MAX_ENCODED_BYTES: usize = 768 * 1024;

#[derive(Debug, Default)]
pub struct Inbox {
    /// Each message with its text size and its encoded size.
    messages: VecDeque<(FromHub, usize, usize)>,
    bytes: usize,
    dropped: u64,
}

impl Inbox {
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

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
        let encoded = serde_json::to_vec(&message).map_or(bytes, |line| line.len());
        self.bytes += bytes;
        self.messages.push_back((message, bytes, encoded));
        true
    }

    /// Takes the oldest messages, as many as fit in [`TAKE_MAX_ENCODED_BYTES`] (at least one), and
    /// the count of those dropped since the last take. The rest stay for the next take.
    pub fn take(&mut self) -> (Vec<FromHub>, u64) {
        let mut taken = Vec::new();
        let mut encoded_total = 0;
        while let Some((_, _, encoded)) = self.messages.front() {
            if !taken.is_empty() && encoded_total + encoded > TAKE_MAX_ENCODED_BYTES {
                break;
            }
            let (message, bytes, encoded) = self.messages.pop_front().expect("front exists");
            encoded_total += encoded;
            self.bytes -= bytes;
            taken.push(message);
        }
        (taken, std::mem::take(&mut self.dropped))
    }

    /// Removes the question of ask `ask_id` if it still waits here: it can no longer be answered
    /// (it timed out, its asker left, or it failed because this session left), so showing it
    /// would only invite a refused reply.
    /// Returns whether it was here.
    pub fn withdraw_question(&mut self, ask_id: &str) -> bool {
        let position = self.messages.iter().position(|(message, _, _)| {
            matches!(message, FromHub::Ask(question) if question.ask_id == ask_id)
        });
        let Some((_, bytes, _)) = position.and_then(|at| self.messages.remove(at)) else {
            return false;
        };
        self.bytes -= bytes;
        true
    }

    /// Adds the messages of `older`, an inbox this one replaces, in front of its own.
    pub fn adopt(&mut self, older: Inbox) {
        let mut merged = older.messages;
        merged.extend(self.messages.drain(..));
        self.messages = merged;
        self.bytes += older.bytes;
        self.dropped += older.dropped;
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

    #[test]
    fn a_question_that_can_no_longer_be_answered_is_withdrawn() {
        let mut inbox = Inbox::default();
        assert!(inbox.keep(message(1), 1));
        assert!(inbox.keep(message(2), 1));
        assert!(inbox.withdraw_question("a1"));
        assert!(!inbox.withdraw_question("a1"), "only once");
        assert!(!inbox.withdraw_question("a9"));
        assert_eq!(inbox.take().0, [message(2)]);
        assert!(inbox.has_room(INBOX_MAX_BYTES), "its size was given back");
    }

    #[test]
    fn a_take_hands_over_at_most_a_page_and_keeps_the_rest() {
        let mut inbox = Inbox::default();
        let big = |n: usize| {
            FromHub::Reply(crate::protocol::Delivery {
                message_id: format!("m{n}"),
                ask_id: format!("a{n}"),
                from: "beta".into(),
                thread_id: format!("a{n}"),
                broadcast_id: None,
                text: "x".repeat(500 * 1024),
            })
        };
        for n in 0..3 {
            assert!(inbox.keep(big(n), 500 * 1024));
        }
        let (first, _) = inbox.take();
        assert_eq!(first, [big(0)]);
        assert_eq!(inbox.len(), 2);
        assert_eq!(inbox.take().0, [big(1)]);
        assert_eq!(inbox.take().0, [big(2)]);
        assert!(inbox.is_empty());
        assert!(
            inbox.has_room(INBOX_MAX_BYTES),
            "sizes are given back as messages leave"
        );
    }
}
