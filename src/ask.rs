//! The table of pending asks and their deadlines.
//!
//! One table holds every ask the hub is waiting on: `ask_id -> caller, target, deadline,
//! thread_id, broadcast_id`. Deadlines sit in a second, ordered index, so the hub needs one
//! background task that sleeps until the nearest deadline ([`AskTable::next_deadline`]) rather
//! than a timer per ask. The table is plain data: the hub keeps it behind its state lock and
//! does the sending.
//!
//! It also remembers how recent asks ended, so that a late `relay_reply` is told *why* its ask is
//! no longer pending (answered, timed out and when, asker gone) instead of a bare "unknown".
//! The table says why ([`NotPending`]); the hub words it for the user.

use std::collections::{BTreeSet, HashMap, VecDeque};

use time::OffsetDateTime;
use tokio::time::Instant;

/// Identifies one hub connection: the caller or the target of an ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub u64);

impl ConnId {
    /// Stands for a session of another hub, as the caller or target of an ask (its host is in
    /// the ask). The server numbers connections from 1.
    pub(crate) const REMOTE: ConnId = ConnId(0);
}

/// Where an ask made by a session of another hub came from: that hub's host, and the ask's id
/// there. It keeps that id here unless it would collide with one of this hub's (then it gets
/// one of this hub's making), so another hub can never choose the ids of this hub's table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AskedFrom {
    pub host: String,
    pub ask_id: String,
}

/// An ask the hub is waiting on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingAsk {
    pub ask_id: String,
    pub caller: ConnId,
    pub caller_name: String,
    pub target: ConnId,
    pub target_name: String,
    pub deadline: Instant,
    pub timeout_secs: u64,
    pub thread_id: String,
    pub broadcast_id: Option<String>,
    /// Set when the caller is a session of another hub (`caller` is then [`ConnId::REMOTE`]):
    /// that hub owns the deadline.
    pub asked_from: Option<AskedFrom>,
    /// The target's host, when it is a session of another hub (`target` is then
    /// [`ConnId::REMOTE`]).
    pub target_host: Option<String>,
}

/// How an ask stopped being pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Answered,
    TimedOut { at: OffsetDateTime, after_secs: u64 },
    TargetGone,
    CallerGone,
}

/// Why a reply cannot answer an ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotPending {
    /// No ask with this id is remembered: never existed, or ended long ago.
    Unknown,
    /// It is pending, but for another session.
    AddressedTo {
        target: String,
    },
    Answered,
    TimedOut {
        at: OffsetDateTime,
        after_secs: u64,
        caller: String,
    },
    /// Its caller disconnected.
    CallerGone {
        caller: String,
    },
    /// Its target (this session) disconnected since it was asked.
    TargetGone,
}

/// How many ended asks are remembered for the error message of a late reply.
const REMEMBERED_ENDINGS: usize = 4_096;

#[derive(Debug, Default)]
pub(crate) struct AskTable {
    pending: HashMap<String, PendingAsk>,
    /// How many of the pending asks each caller made.
    by_caller: HashMap<ConnId, usize>,
    /// How many of the pending asks the sessions of each other host made.
    by_host: HashMap<String, usize>,
    deadlines: BTreeSet<(Instant, String)>,
    ended: HashMap<String, (Ending, String)>,
    ended_order: VecDeque<String>,
}

impl AskTable {
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Adds an ask. Returns true when its deadline is now the nearest one, so the deadline task
    /// must wake up and sleep for less.
    pub(crate) fn insert(&mut self, ask: PendingAsk) -> bool {
        let nearest = self
            .next_deadline()
            .is_none_or(|first| ask.deadline < first);
        self.deadlines.insert((ask.deadline, ask.ask_id.clone()));
        *self.by_caller.entry(ask.caller).or_default() += 1;
        if let Some(from) = &ask.asked_from {
            *self.by_host.entry(from.host.clone()).or_default() += 1;
        }
        self.pending.insert(ask.ask_id.clone(), ask);
        nearest
    }

    /// How many pending asks `caller` made.
    pub(crate) fn pending_from(&self, caller: ConnId) -> usize {
        self.by_caller.get(&caller).copied().unwrap_or(0)
    }

    pub(crate) fn is_pending(&self, ask_id: &str) -> bool {
        self.pending.contains_key(ask_id)
    }

    /// How many pending asks the sessions of the other host `host` made.
    pub(crate) fn pending_from_host(&self, host: &str) -> usize {
        self.by_host.get(host).copied().unwrap_or(0)
    }

    /// Removes ask `ask_id`, which its target's host refused or could not be reached for: it
    /// never was, so nothing is remembered of it.
    pub(crate) fn withdraw(&mut self, ask_id: &str) -> Option<PendingAsk> {
        self.remove(ask_id)
    }

    /// Removes and returns every ask whose target is a session of `host`.
    pub(crate) fn remove_target_host(&mut self, host: &str) -> Vec<PendingAsk> {
        self.remove_where(
            |ask| ask.target_host.as_deref() == Some(host),
            Ending::TargetGone,
        )
    }

    /// Removes and returns every ask whose caller is a session of `host`.
    pub(crate) fn remove_caller_host(&mut self, host: &str) -> Vec<PendingAsk> {
        self.remove_where(
            |ask| {
                ask.asked_from
                    .as_ref()
                    .is_some_and(|from| from.host == host)
            },
            Ending::CallerGone,
        )
    }

    /// Removes the ask `ask_id` whose target, a session of `host`, left; `None` when it is not
    /// such an ask.
    pub(crate) fn take_target_gone(&mut self, ask_id: &str, host: &str) -> Option<PendingAsk> {
        let ask = self.pending.get(ask_id)?;
        if ask.target_host.as_deref() != Some(host) {
            return None;
        }
        let ask = self.remove(ask_id)?;
        self.remember(&ask, Ending::TargetGone);
        Some(ask)
    }

    /// Removes the ask a session of `host` made with the id `ask_id` there (this hub's copy),
    /// whose caller left; `None` when there is no such ask.
    pub(crate) fn take_caller_gone(&mut self, ask_id: &str, host: &str) -> Option<PendingAsk> {
        self.remove_where(
            |ask| {
                ask.asked_from
                    .as_ref()
                    .is_some_and(|from| from.host == host && from.ask_id == ask_id)
            },
            Ending::CallerGone,
        )
        .pop()
    }

    /// The nearest deadline of any pending ask.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(when, _)| *when)
    }

    /// Removes the ask `ask_id` so that `replier` can answer it, or says why it cannot: the ask
    /// is not pending, or is addressed to someone else.
    pub(crate) fn take_for_reply(
        &mut self,
        ask_id: &str,
        replier: ConnId,
    ) -> Result<PendingAsk, NotPending> {
        self.take_answered(ask_id, |ask| ask.target == replier)
    }

    /// Removes the ask `ask_id`, answered by a session of `host`, or says why it cannot be.
    pub(crate) fn take_for_reply_from(
        &mut self,
        ask_id: &str,
        host: &str,
    ) -> Result<PendingAsk, NotPending> {
        self.take_answered(ask_id, |ask| ask.target_host.as_deref() == Some(host))
    }

    /// Removes the ask `ask_id` for a reply from its target (`is_target` says whether it is),
    /// or says why it cannot.
    fn take_answered(
        &mut self,
        ask_id: &str,
        is_target: impl Fn(&PendingAsk) -> bool,
    ) -> Result<PendingAsk, NotPending> {
        match self.pending.get(ask_id) {
            Some(ask) if is_target(ask) => {}
            Some(ask) => {
                return Err(NotPending::AddressedTo {
                    target: ask.target_name.clone(),
                });
            }
            None => return Err(self.why_not_pending(ask_id)),
        }
        let ask = self.remove(ask_id).expect("checked above");
        self.remember(&ask, Ending::Answered);
        Ok(ask)
    }

    /// Puts back an ask taken for a reply that could not be delivered, so it can be answered
    /// again.
    pub(crate) fn restore(&mut self, ask: PendingAsk) {
        if let Some(pos) = self.ended_order.iter().rposition(|id| *id == ask.ask_id) {
            self.ended_order.remove(pos);
        }
        self.ended.remove(&ask.ask_id);
        self.insert(ask);
    }

    /// Removes and returns every ask whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<PendingAsk> {
        let mut expired = Vec::new();
        while let Some((when, ask_id)) = self.deadlines.first().cloned() {
            if when > now {
                break;
            }
            let ask = self
                .remove(&ask_id)
                .expect("deadline index matches the table");
            let ending = Ending::TimedOut {
                at: OffsetDateTime::now_utc(),
                after_secs: ask.timeout_secs,
            };
            self.remember(&ask, ending);
            expired.push(ask);
        }
        expired
    }

    /// Removes and returns every ask addressed to `target`, which has disconnected.
    pub(crate) fn remove_target(&mut self, target: ConnId) -> Vec<PendingAsk> {
        self.remove_where(|ask| ask.target == target, Ending::TargetGone)
    }

    /// Forgets every ask made by `caller`, which has disconnected: nobody is left to tell.
    pub(crate) fn remove_caller(&mut self, caller: ConnId) -> Vec<PendingAsk> {
        self.remove_where(|ask| ask.caller == caller, Ending::CallerGone)
    }

    fn remove_where(
        &mut self,
        matches: impl Fn(&PendingAsk) -> bool,
        ending: Ending,
    ) -> Vec<PendingAsk> {
        let ids: Vec<String> = self
            .pending
            .values()
            .filter(|ask| matches(ask))
            .map(|ask| ask.ask_id.clone())
            .collect();
        let mut removed: Vec<PendingAsk> = ids.iter().filter_map(|id| self.remove(id)).collect();
        removed.sort_by(|a, b| a.ask_id.cmp(&b.ask_id));
        for ask in &removed {
            self.remember(ask, ending);
        }
        removed
    }

    fn remove(&mut self, ask_id: &str) -> Option<PendingAsk> {
        let ask = self.pending.remove(ask_id)?;
        self.deadlines.remove(&(ask.deadline, ask.ask_id.clone()));
        if let Some(count) = self.by_caller.get_mut(&ask.caller) {
            *count -= 1;
            if *count == 0 {
                self.by_caller.remove(&ask.caller);
            }
        }
        if let Some(from) = &ask.asked_from
            && let Some(count) = self.by_host.get_mut(&from.host)
        {
            *count -= 1;
            if *count == 0 {
                self.by_host.remove(&from.host);
            }
        }
        Some(ask)
    }

    fn remember(&mut self, ask: &PendingAsk, ending: Ending) {
        if self.ended_order.len() == REMEMBERED_ENDINGS
            && let Some(oldest) = self.ended_order.pop_front()
        {
            self.ended.remove(&oldest);
        }
        self.ended_order.push_back(ask.ask_id.clone());
        self.ended
            .insert(ask.ask_id.clone(), (ending, ask.caller_name.clone()));
    }

    /// The name of the caller of `ask_id`, while it is pending or remembered.
    pub(crate) fn caller_name_of(&self, ask_id: &str) -> Option<String> {
        self.pending
            .get(ask_id)
            .map(|ask| ask.caller_name.clone())
            .or_else(|| self.ended.get(ask_id).map(|(_, caller)| caller.clone()))
    }

    fn why_not_pending(&self, ask_id: &str) -> NotPending {
        match self.ended.get(ask_id) {
            None => NotPending::Unknown,
            Some((Ending::Answered, _)) => NotPending::Answered,
            Some((Ending::TimedOut { at, after_secs }, caller)) => NotPending::TimedOut {
                at: *at,
                after_secs: *after_secs,
                caller: caller.clone(),
            },
            Some((Ending::CallerGone, caller)) => NotPending::CallerGone {
                caller: caller.clone(),
            },
            Some((Ending::TargetGone, _)) => NotPending::TargetGone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ask(id: &str, caller: u64, target: u64, deadline: Instant) -> PendingAsk {
        PendingAsk {
            ask_id: id.into(),
            caller: ConnId(caller),
            caller_name: format!("peer{caller}"),
            target: ConnId(target),
            target_name: format!("peer{target}"),
            deadline,
            timeout_secs: 5,
            thread_id: id.into(),
            broadcast_id: None,
            asked_from: None,
            target_host: None,
        }
    }

    #[test]
    fn insert_reports_a_new_nearest_deadline() {
        let now = Instant::now();
        let mut table = AskTable::default();
        assert!(table.insert(ask("a", 1, 2, now + Duration::from_secs(10))));
        assert!(!table.insert(ask("b", 1, 2, now + Duration::from_secs(20))));
        assert!(table.insert(ask("c", 1, 2, now + Duration::from_secs(5))));
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(5)));
    }

    #[test]
    fn expire_takes_only_due_asks_in_deadline_order() {
        let now = Instant::now();
        let mut table = AskTable::default();
        table.insert(ask("late", 1, 2, now + Duration::from_secs(30)));
        table.insert(ask("second", 1, 2, now + Duration::from_secs(2)));
        table.insert(ask("first", 1, 2, now + Duration::from_secs(1)));
        let expired: Vec<_> = table
            .expire(now + Duration::from_secs(2))
            .into_iter()
            .map(|a| a.ask_id)
            .collect();
        assert_eq!(expired, ["first", "second"]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(30)));
        assert!(table.expire(now + Duration::from_secs(29)).is_empty());
    }

    #[test]
    fn only_the_target_can_take_an_ask_and_only_once() {
        let now = Instant::now();
        let mut table = AskTable::default();
        table.insert(ask("a", 1, 2, now + Duration::from_secs(10)));
        assert_eq!(
            table.take_for_reply("a", ConnId(3)).unwrap_err(),
            NotPending::AddressedTo {
                target: "peer2".into()
            }
        );
        assert_eq!(table.take_for_reply("a", ConnId(2)).unwrap().ask_id, "a");
        assert_eq!(table.len(), 0);
        assert_eq!(table.next_deadline(), None);
        assert_eq!(
            table.take_for_reply("a", ConnId(2)).unwrap_err(),
            NotPending::Answered
        );
        assert_eq!(
            table.take_for_reply("zzz", ConnId(2)).unwrap_err(),
            NotPending::Unknown
        );
    }

    #[test]
    fn a_late_reply_is_told_the_ask_timed_out() {
        let now = Instant::now();
        let mut table = AskTable::default();
        table.insert(ask("a", 1, 2, now));
        assert_eq!(table.expire(now).len(), 1);
        let late = table.take_for_reply("a", ConnId(2)).unwrap_err();
        assert!(
            matches!(&late, NotPending::TimedOut { after_secs: 5, caller, .. } if caller == "peer1"),
            "{late:?}"
        );
    }

    #[test]
    fn disconnects_remove_the_right_asks() {
        let now = Instant::now();
        let mut table = AskTable::default();
        table.insert(ask("to-2", 1, 2, now + Duration::from_secs(1)));
        table.insert(ask("to-2-again", 3, 2, now + Duration::from_secs(2)));
        table.insert(ask("from-2", 2, 3, now + Duration::from_secs(3)));
        table.insert(ask("unrelated", 1, 3, now + Duration::from_secs(4)));
        let gone: Vec<_> = table
            .remove_target(ConnId(2))
            .into_iter()
            .map(|a| a.ask_id)
            .collect();
        assert_eq!(gone, ["to-2", "to-2-again"]);
        let forgotten: Vec<_> = table
            .remove_caller(ConnId(2))
            .into_iter()
            .map(|a| a.ask_id)
            .collect();
        assert_eq!(forgotten, ["from-2"]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.pending_from(ConnId(1)), 1);
        assert_eq!(table.pending_from(ConnId(2)), 0);
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(4)));
        assert_eq!(
            table.take_for_reply("from-2", ConnId(3)).unwrap_err(),
            NotPending::CallerGone {
                caller: "peer2".into()
            }
        );
    }

    #[test]
    fn remembers_a_bounded_number_of_endings() {
        let now = Instant::now();
        let mut table = AskTable::default();
        for n in 0..REMEMBERED_ENDINGS + 10 {
            let id = format!("a{n}");
            table.insert(ask(&id, 1, 2, now));
            table.take_for_reply(&id, ConnId(2)).unwrap();
        }
        assert_eq!(table.ended.len(), REMEMBERED_ENDINGS);
        assert_eq!(
            table.take_for_reply("a0", ConnId(2)).unwrap_err(),
            NotPending::Unknown
        );
    }

    #[test]
    fn the_copy_of_an_ask_whose_caller_on_another_host_left_is_taken_by_that_hosts_id() {
        let now = Instant::now();
        let mut table = AskTable::default();
        let from = |host: &str, id: &str| {
            let mut copy = ask(&format!("{host}-{id}"), 0, 2, now);
            copy.caller_name = "web@laptop".into();
            copy.asked_from = Some(AskedFrom {
                host: host.into(),
                ask_id: id.into(),
            });
            copy
        };
        table.insert(from("laptop", "a1"));
        table.insert(from("desk", "a1"));
        assert!(table.take_caller_gone("a1", "nowhere").is_none());
        let taken = table.take_caller_gone("a1", "laptop").expect("laptop's a1");
        assert_eq!(taken.ask_id, "laptop-a1");
        assert!(
            table.take_caller_gone("a1", "laptop").is_none(),
            "only once"
        );
        assert_eq!(table.pending_from_host("laptop"), 0);
        assert_eq!(
            table.pending_from_host("desk"),
            1,
            "desk's ask of the same id stays"
        );
        assert_eq!(
            table.why_not_pending("laptop-a1"),
            NotPending::CallerGone {
                caller: "web@laptop".into()
            }
        );
    }
}
