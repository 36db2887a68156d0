//! Inboxes: the messages kept for a session whose Claude Code does not show channel pushes, until
//! its next prompt's hook, its waiter or `relay_inbox` takes them.
//!
//! An [`Inbox`] is bounded by count and bytes. New asks and replies to a full inbox are refused to
//! their senders (`inbox_full`), so nothing is dropped for them; a failure notice that finds the
//! inbox full is dropped, counted, logged and reported with the next take.
//!
//! Taking is take-then-acknowledge. A take hands out a page (the oldest messages, within a line)
//! under a lease held by the taking connection; only its `inbox_ack` removes them. A page that is
//! never acknowledged (its reader died, or the answer never reached it) is handed out again once
//! the lease ends: when its holder's connection closes, or after [`LEASE`]. While a lease runs,
//! other takers get nothing, so two readers never show the same message; the holder itself gets
//! the same page again.
//!
//! [`Inboxes`] holds them by owner. A channel's inbox belongs to its Claude Code session id, so it
//! outlives the connection: when the channel disconnects (the hub restarted it, or it is
//! reconnecting) the inbox waits [`ORPHAN_GRACE`] for the session to come back, and the session's
//! prompt hook can still take it meanwhile. Those waits are deadlines like an ask's, expired by the
//! hub's one deadline task. A session's answers and failure notices are also written to the
//! journal ([`super::journal`]), so they survive the hub. A peer without a session id owns its
//! inbox only while connected.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::Duration,
};

use tokio::time::Instant;

use crate::{ask::ConnId, protocol::FromHub};

/// How long the inbox of a disconnected session is kept for it.
pub(super) const ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// How long a taken page may wait for its acknowledgement before it is handed out again.
pub(super) const LEASE: Duration = Duration::from_secs(30);

/// The most messages an inbox keeps.
pub(super) const INBOX_MAX_MESSAGES: usize = 500;

/// The most bytes of message text an inbox keeps.
pub(super) const INBOX_MAX_BYTES: usize = 8 * 1024 * 1024;

/// How many bytes of encoded messages one take hands over at most, so that the answer stays
/// within the line limit a client reads (one message always fits: its text was within it).
pub(super) const TAKE_MAX_ENCODED_BYTES: usize = 768 * 1024;

/// Who an inbox belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Owner {
    /// A Claude Code session, by its id: the inbox outlives its channel's connection.
    Session(String),
    /// A peer that gave no session id: the inbox lives as long as its connection.
    Connection(ConnId),
}

/// One message waiting in an inbox.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Queued {
    /// Its place in the order of everything ever kept (journal records refer to it).
    pub seq: u64,
    pub message: FromHub,
    /// Who sent it, to be told if it expires unread (a reply's replier; none for the hub's own
    /// failure notices).
    pub sender: Option<Owner>,
    /// Its text size, counted against [`INBOX_MAX_BYTES`].
    pub bytes: usize,
    /// Its size once encoded, counted against [`TAKE_MAX_ENCODED_BYTES`].
    pub encoded: usize,
}

impl Queued {
    pub(super) fn new(seq: u64, message: FromHub, sender: Option<Owner>, bytes: usize) -> Queued {
        let encoded = serde_json::to_vec(&message).map_or(bytes, |line| line.len());
        Queued {
            seq,
            message,
            sender,
            bytes,
            encoded,
        }
    }
}

/// The page handed out and not yet acknowledged: the first `count` messages.
#[derive(Debug, Clone, PartialEq)]
struct Lease {
    take_id: u64,
    count: usize,
    dropped: u64,
    holder: ConnId,
    until: Instant,
}

/// What one take hands over.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Page {
    /// To acknowledge with; `None` when nothing was handed over.
    pub take_id: Option<u64>,
    pub messages: Vec<FromHub>,
    /// Messages that could not be kept since the last acknowledged take.
    pub dropped: u64,
    /// More messages wait after this page, or are being handed to another reader.
    pub more: bool,
}

/// Why an acknowledgement removed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckRefused {
    /// No page with that take id is out: acknowledged already, or handed out again since.
    NoSuchTake,
}

#[derive(Debug, Default)]
pub(super) struct Inbox {
    messages: VecDeque<Queued>,
    bytes: usize,
    dropped: u64,
    lease: Option<Lease>,
}

impl Inbox {
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Whether a message of `bytes` bytes of text fits.
    pub(super) fn has_room(&self, bytes: usize) -> bool {
        self.messages.len() < INBOX_MAX_MESSAGES && self.bytes + bytes <= INBOX_MAX_BYTES
    }

    /// Keeps `queued`. Returns false, and counts it as dropped, when it does not fit.
    pub(super) fn keep(&mut self, queued: Queued) -> bool {
        if !self.has_room(queued.bytes) {
            self.dropped += 1;
            return false;
        }
        self.bytes += queued.bytes;
        self.messages.push_back(queued);
        true
    }

    /// Hands a page to `holder`: the oldest messages, as many as fit in
    /// [`TAKE_MAX_ENCODED_BYTES`] (at least one), under a lease until [`LEASE`] from `now`. A
    /// page out with another live holder means nothing for this one; its own page it gets again.
    pub(super) fn take(&mut self, holder: ConnId, take_id: u64, now: Instant) -> Page {
        if let Some(lease) = &self.lease {
            if lease.until <= now {
                self.lease = None;
            } else if lease.holder == holder {
                return self.page(lease.clone());
            } else {
                return Page {
                    more: !self.messages.is_empty(),
                    ..Page::default()
                };
            }
        }
        let mut count = 0;
        let mut encoded_total = 0;
        for queued in &self.messages {
            if count > 0 && encoded_total + queued.encoded > TAKE_MAX_ENCODED_BYTES {
                break;
            }
            encoded_total += queued.encoded;
            count += 1;
        }
        if count == 0 && self.dropped == 0 {
            return Page::default();
        }
        let lease = Lease {
            take_id,
            count,
            dropped: self.dropped,
            holder,
            until: now + LEASE,
        };
        self.lease = Some(lease.clone());
        self.page(lease)
    }

    fn page(&self, lease: Lease) -> Page {
        Page {
            take_id: Some(lease.take_id),
            messages: self
                .messages
                .iter()
                .take(lease.count)
                .map(|queued| queued.message.clone())
                .collect(),
            dropped: lease.dropped,
            more: self.messages.len() > lease.count,
        }
    }

    /// Removes the page `take_id` handed out, and returns what it held.
    pub(super) fn ack(&mut self, take_id: u64) -> Result<Vec<Queued>, AckRefused> {
        let lease = self
            .lease
            .take_if(|lease| lease.take_id == take_id)
            .ok_or(AckRefused::NoSuchTake)?;
        let acked: Vec<Queued> = self.messages.drain(..lease.count).collect();
        self.bytes -= acked.iter().map(|queued| queued.bytes).sum::<usize>();
        self.dropped -= lease.dropped;
        Ok(acked)
    }

    /// Ends the lease of `holder`, whose connection closed: its page goes to the next taker.
    pub(super) fn release_lease(&mut self, holder: ConnId) -> bool {
        self.lease.take_if(|lease| lease.holder == holder).is_some()
    }

    /// Removes the question of ask `ask_id` if it still waits here unseen: it can no longer be
    /// answered (it timed out, its asker left, or it failed because this session left), so
    /// showing it would only invite a refused reply. A question already handed out stays: its
    /// reader shows it, and a reply is told why it cannot be delivered.
    /// Returns whether it was here.
    pub(super) fn withdraw_question(&mut self, ask_id: &str) -> bool {
        let leased = self.lease.as_ref().map_or(0, |lease| lease.count);
        let position = self.messages.iter().skip(leased).position(
            |queued| matches!(&queued.message, FromHub::Ask(question) if question.ask_id == ask_id),
        );
        let Some(queued) = position.and_then(|at| self.messages.remove(leased + at)) else {
            return false;
        };
        self.bytes -= queued.bytes;
        true
    }

    /// Every message, oldest first.
    pub(super) fn queued(&self) -> impl Iterator<Item = &Queued> {
        self.messages.iter()
    }
}

/// What became of a departed owner's inbox.
#[derive(Debug)]
pub(super) enum Released {
    /// It waits for its session: `waiting` messages, expiring at what is now the `nearest`
    /// deadline or not (the deadline task must then wake up sooner).
    Kept { waiting: usize, nearest: bool },
    /// It is gone, with what it held.
    Lost(Inbox),
}

/// An inbox and, while its session is away, when it expires.
#[derive(Debug, Default)]
struct Kept {
    inbox: Inbox,
    expires: Option<Instant>,
}

/// Every inbox, by owner, with the expiry deadlines of orphaned ones.
#[derive(Debug, Default)]
pub(super) struct Inboxes {
    kept: HashMap<Owner, Kept>,
    expiries: BTreeSet<(Instant, Owner)>,
    next_seq: u64,
    next_take: u64,
}

impl Inboxes {
    /// The inbox of `owner`, which is connected now: made if it had none, and no longer expiring
    /// if it was waiting for its session to come back. Returns how many messages wait in it.
    pub(super) fn claim(&mut self, owner: &Owner) -> usize {
        let kept = self.kept.entry(owner.clone()).or_default();
        if let Some(at) = kept.expires.take() {
            self.expiries.remove(&(at, owner.clone()));
        }
        kept.inbox.len()
    }

    pub(super) fn get(&self, owner: &Owner) -> Option<&Inbox> {
        self.kept.get(owner).map(|kept| &kept.inbox)
    }

    pub(super) fn get_mut(&mut self, owner: &Owner) -> Option<&mut Inbox> {
        self.kept.get_mut(owner).map(|kept| &mut kept.inbox)
    }

    /// A new sequence number for a message about to be kept.
    pub(super) fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// A new take id.
    pub(super) fn next_take(&mut self) -> u64 {
        self.next_take += 1;
        self.next_take
    }

    /// Puts back what the journal kept for `owner`, whose session has been away since
    /// `away_since`: it waits for the session until [`ORPHAN_GRACE`] after that.
    pub(super) fn restore(&mut self, owner: Owner, messages: Vec<Queued>, away_since: Instant) {
        let mut inbox = Inbox::default();
        for queued in messages {
            self.next_seq = self.next_seq.max(queued.seq);
            inbox.keep(queued);
        }
        if inbox.is_empty() {
            return;
        }
        let at = away_since + ORPHAN_GRACE;
        self.expiries.insert((at, owner.clone()));
        self.kept.insert(
            owner,
            Kept {
                inbox,
                expires: Some(at),
            },
        );
    }

    /// `owner` disconnected: a session's non-empty inbox waits [`ORPHAN_GRACE`] from `now` for it
    /// to come back; any other inbox is gone.
    pub(super) fn release(&mut self, owner: &Owner, now: Instant) -> Released {
        let Some(kept) = self.kept.get_mut(owner) else {
            return Released::Lost(Inbox::default());
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
                let kept = self.kept.remove(owner).expect("looked up above");
                Released::Lost(kept.inbox)
            }
        }
    }

    /// Ends every lease `holder` had: its connection closed.
    pub(super) fn release_leases(&mut self, holder: ConnId) {
        for kept in self.kept.values_mut() {
            if kept.inbox.release_lease(holder) {
                tracing::info!(count = kept.inbox.len(), "inbox_page_not_acknowledged");
            }
        }
    }

    /// The nearest expiry of an orphaned inbox.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Removes every orphaned inbox whose grace ended at or before `now`, and returns each with
    /// its owner.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(Owner, Inbox)> {
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

    /// Every session's inbox, for the journal to write down.
    pub(super) fn sessions(&self) -> impl Iterator<Item = (&String, &Inbox)> {
        self.kept.iter().filter_map(|(owner, kept)| match owner {
            Owner::Session(id) => Some((id, &kept.inbox)),
            Owner::Connection(_) => None,
        })
    }

    /// How many messages wait in every inbox together.
    pub(super) fn total(&self) -> usize {
        self.kept.values().map(|kept| kept.inbox.len()).sum()
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

    fn queued(n: usize, bytes: usize) -> Queued {
        Queued::new(n as u64, message(n), None, bytes)
    }

    const READER: ConnId = ConnId(1);
    const OTHER: ConnId = ConnId(2);

    #[test]
    fn keeps_messages_in_order_until_taken_and_acknowledged() {
        let now = Instant::now();
        let mut inbox = Inbox::default();
        assert!(inbox.keep(queued(1, 1)));
        assert!(inbox.keep(queued(2, 1)));
        let page = inbox.take(READER, 7, now);
        assert_eq!(page.take_id, Some(7));
        assert_eq!(page.messages, [message(1), message(2)]);
        assert_eq!(page.dropped, 0);
        assert_eq!(inbox.len(), 2, "nothing leaves before the acknowledgement");
        assert_eq!(inbox.ack(7).unwrap().len(), 2);
        assert!(inbox.is_empty());
        assert_eq!(inbox.ack(7), Err(AckRefused::NoSuchTake), "only once");
        assert_eq!(inbox.take(READER, 8, now), Page::default());
    }

    #[test]
    fn a_page_not_acknowledged_is_handed_out_again() {
        let now = Instant::now();
        let mut inbox = Inbox::default();
        inbox.keep(queued(1, 1));
        let first = inbox.take(READER, 1, now);
        // Its holder asks again (its answer was lost): the same page.
        assert_eq!(inbox.take(READER, 2, now), first);
        // Another reader meanwhile gets nothing, so no message is shown twice.
        let other = inbox.take(OTHER, 3, now);
        assert!(other.messages.is_empty() && other.more, "{other:?}");
        // The holder's connection closed: the next reader gets it.
        assert!(inbox.release_lease(READER));
        let again = inbox.take(OTHER, 4, now);
        assert_eq!(again.messages, first.messages);
        assert_eq!(
            inbox.ack(1),
            Err(AckRefused::NoSuchTake),
            "the old take is void"
        );
        // A lease that runs out frees the page too.
        let later = inbox.take(READER, 5, now + LEASE);
        assert_eq!(later.take_id, Some(5));
        assert_eq!(later.messages, first.messages);
    }

    #[test]
    fn is_bounded_by_count_and_bytes_and_counts_what_it_drops() {
        let now = Instant::now();
        let mut inbox = Inbox::default();
        for n in 0..INBOX_MAX_MESSAGES {
            assert!(inbox.keep(queued(n, 1)));
        }
        assert!(!inbox.has_room(1));
        assert!(!inbox.keep(queued(9999, 1)));
        let page = inbox.take(READER, 1, now);
        assert_eq!(page.messages.len(), INBOX_MAX_MESSAGES);
        assert_eq!(page.dropped, 1);
        inbox.ack(1).unwrap();
        assert!(inbox.keep(queued(1, INBOX_MAX_BYTES)));
        assert!(!inbox.has_room(1));
        let page = inbox.take(READER, 2, now);
        assert_eq!(page.dropped, 0, "the drop count was reported once");
    }

    #[test]
    fn a_question_that_can_no_longer_be_answered_is_withdrawn_unless_handed_out() {
        let now = Instant::now();
        let mut inbox = Inbox::default();
        inbox.keep(queued(1, 1));
        inbox.keep(queued(2, 1));
        inbox.keep(queued(3, 1));
        assert!(inbox.withdraw_question("a2"));
        assert!(!inbox.withdraw_question("a2"), "only once");
        assert!(!inbox.withdraw_question("a9"));
        let page = inbox.take(READER, 1, now);
        assert_eq!(page.messages, [message(1), message(3)]);
        assert!(!inbox.withdraw_question("a1"), "handed out already");
        inbox.ack(1).unwrap();
        assert!(inbox.has_room(INBOX_MAX_BYTES), "its size was given back");
    }

    #[test]
    fn a_take_hands_over_at_most_a_page_and_keeps_the_rest() {
        let now = Instant::now();
        let mut inbox = Inbox::default();
        let big = |n: usize| {
            FromHub::Reply(Delivery {
                message_id: format!("m{n}"),
                ask_id: format!("a{n}"),
                from: "beta".into(),
                thread_id: format!("a{n}"),
                broadcast_id: None,
                text: "x".repeat(500 * 1024),
            })
        };
        for n in 0..3 {
            assert!(inbox.keep(Queued::new(n as u64, big(n), None, 500 * 1024)));
        }
        for n in 0..3 {
            let page = inbox.take(READER, n as u64, now);
            assert_eq!(page.messages, [big(n)]);
            assert_eq!(page.more, n < 2);
            inbox.ack(n as u64).unwrap();
        }
        assert!(inbox.is_empty());
        assert!(
            inbox.has_room(INBOX_MAX_BYTES),
            "sizes are given back as messages leave"
        );
    }

    #[test]
    fn a_session_inbox_waits_for_its_session_and_expires_after_the_grace() {
        let now = Instant::now();
        let mut inboxes = Inboxes::default();
        let session = Owner::Session("s1".into());
        assert_eq!(inboxes.claim(&session), 0);
        assert!(inboxes.get_mut(&session).unwrap().keep(queued(1, 1)));
        assert!(matches!(
            inboxes.release(&session, now),
            Released::Kept {
                waiting: 1,
                nearest: true
            }
        ));
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
        assert!(inboxes.get_mut(&conn).unwrap().keep(queued(1, 1)));
        assert!(
            matches!(inboxes.release(&conn, Instant::now()), Released::Lost(lost) if lost.len() == 1)
        );
        assert!(inboxes.get(&conn).is_none());
        let empty = Owner::Session("s2".into());
        inboxes.claim(&empty);
        assert!(
            matches!(inboxes.release(&empty, Instant::now()), Released::Lost(lost) if lost.is_empty())
        );
        assert!(inboxes.get(&empty).is_none(), "an empty inbox is not kept");
    }
}
