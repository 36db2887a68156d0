//! Inboxes: the messages kept for a session whose Claude Code does not show channel pushes, until
//! its next prompt's hook (or `relay_inbox`) takes them.
//!
//! An [`Inbox`] is bounded by count and bytes. New asks and replies to a full inbox are refused to
//! their senders (`inbox_full`), so nothing is dropped for them; a failure notice that finds the
//! inbox full is dropped, counted, logged and reported with the next take.
//!
//! [`Inboxes`] holds them by owner. A channel's inbox belongs to its Claude Code session id, so it
//! outlives the connection: when the channel disconnects (the hub restarted it, or it is
//! reconnecting) the inbox waits [`ORPHAN_GRACE`] for the session to come back, and the session's
//! prompt hook can still take it meanwhile. Those waits are deadlines like an ask's, expired by the
//! hub's one deadline task. A peer without a session id owns its inbox only while connected.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::Duration,
};

use tokio::time::Instant;

use crate::{ask::ConnId, protocol::FromHub};

/// How long the inbox of a disconnected session is kept for it.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(600);

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
}

/// Who an inbox belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A Claude Code session, by its id: the inbox outlives its channel's connection.
    Session(String),
    /// A peer that gave no session id: the inbox lives as long as its connection.
    Connection(ConnId),
}

/// What became of a departed owner's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// It waits for its session: `waiting` messages, expiring at what is now the `nearest`
    /// deadline or not (the deadline task must then wake up sooner).
    Kept { waiting: usize, nearest: bool },
    /// It is gone, with this many messages.
    Lost(usize),
}

/// An inbox and, while its session is away, when it expires.
#[derive(Debug, Default)]
struct Kept {
    inbox: Inbox,
    expires: Option<Instant>,
}

/// Every inbox, by owner, with the expiry deadlines of orphaned ones.
#[derive(Debug, Default)]
pub struct Inboxes {
    kept: HashMap<Owner, Kept>,
    expiries: BTreeSet<(Instant, Owner)>,
}

impl Inboxes {
    /// The inbox of `owner`, which is connected now: made if it had none, and no longer expiring
    /// if it was waiting for its session to come back. Returns how many messages wait in it.
    pub fn claim(&mut self, owner: &Owner) -> usize {
        let kept = self.kept.entry(owner.clone()).or_default();
        if let Some(at) = kept.expires.take() {
            self.expiries.remove(&(at, owner.clone()));
        }
        kept.inbox.len()
    }

    pub fn get(&self, owner: &Owner) -> Option<&Inbox> {
        self.kept.get(owner).map(|kept| &kept.inbox)
    }

    pub fn get_mut(&mut self, owner: &Owner) -> Option<&mut Inbox> {
        self.kept.get_mut(owner).map(|kept| &mut kept.inbox)
    }

    /// `owner` disconnected: a session's non-empty inbox waits [`ORPHAN_GRACE`] from `now` for it
    /// to come back; any other inbox is gone.
    pub fn release(&mut self, owner: &Owner, now: Instant) -> Released {
        let Some(kept) = self.kept.get_mut(owner) else {
            return Released::Lost(0);
        };
        match owner {
            Owner::Session(_) if !kept.inbox.is_empty() => {
                let at = now + ORPHAN_GRACE;
                kept.expires = Some(at);
                let waiting = kept.inbox.len();
                let nearest = self.next_expiry().is_none_or(|first| at < first);
                self.expiries.insert((at, owner.clone()));
                Released::Kept { waiting, nearest }
            }
            _ => {
                let lost = kept.inbox.len();
                self.kept.remove(owner);
                Released::Lost(lost)
            }
        }
    }

    /// The nearest expiry of an orphaned inbox.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Removes every orphaned inbox whose grace ended at or before `now`, and returns each with
    /// its owner.
    pub fn expire(&mut self, now: Instant) -> Vec<(Owner, Inbox)> {
        let mut expired = Vec::new();
        while let Some((at, owner)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.remove(&(at, owner.clone()));
            if let Some(kept) = self.kept.remove(&owner) {
                expired.push((owner, kept.inbox));
            }
        }
        expired
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
    fn a_session_inbox_waits_for_its_session_and_expires_after_the_grace() {
        let now = Instant::now();
        let mut inboxes = Inboxes::default();
        let session = Owner::Session("s1".into());
        assert_eq!(inboxes.claim(&session), 0);
        assert!(inboxes.get_mut(&session).unwrap().keep(message(1), 1));
        assert_eq!(
            inboxes.release(&session, now),
            Released::Kept {
                waiting: 1,
                nearest: true
            }
        );
        assert_eq!(inboxes.next_expiry(), Some(now + ORPHAN_GRACE));
        // Back before the grace ended: the messages are there, and nothing expires.
        assert_eq!(inboxes.claim(&session), 1);
        assert_eq!(inboxes.next_expiry(), None);
        inboxes.release(&session, now);
        assert!(
            inboxes
                .expire(now + ORPHAN_GRACE - Duration::from_secs(1))
                .is_empty()
        );
        let expired = inboxes.expire(now + ORPHAN_GRACE);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, session);
        assert!(inboxes.get(&session).is_none());
    }

    #[test]
    fn other_inboxes_end_with_their_connection() {
        let mut inboxes = Inboxes::default();
        let conn = Owner::Connection(ConnId(7));
        inboxes.claim(&conn);
        assert!(inboxes.get_mut(&conn).unwrap().keep(message(1), 1));
        assert_eq!(inboxes.release(&conn, Instant::now()), Released::Lost(1));
        assert!(inboxes.get(&conn).is_none());
        let empty = Owner::Session("s2".into());
        inboxes.claim(&empty);
        assert_eq!(inboxes.release(&empty, Instant::now()), Released::Lost(0));
        assert!(inboxes.get(&empty).is_none(), "an empty inbox is not kept");
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
