//! Waiters: how a session whose pushes are off is woken when a message arrives.
//!
//! Claude Code runs the plugin's `Stop` hook (and its `SessionStart` hook) with `asyncRewake`:
//! in the background, and a hook that exits 2 starts a new turn with what it printed. That hook
//! is `relay-channel wait`, the session's **waiter**: it tells the hub it waits for its session,
//! the hub says `wake` as soon as the session's inbox holds something, and the waiter takes the
//! page, prints it, acknowledges it and exits 2. The next `Stop` arms the next waiter.
//!
//! So a message to such a session is `woken` while a waiter is armed for it, and also for a
//! while after one woke it ([`WOKEN_TURN`]): its turn is under way and the `Stop` at its end arms
//! the next waiter, which finds the message at once. Otherwise it is `queued`: shown at the next
//! prompt.

use std::{collections::HashMap, time::Duration};

use tokio::time::Instant;

use crate::{ask::ConnId, hub::outbox::Outbox, protocol::FromHub};

/// How long after a waiter woke its session the session counts as being woken: its turn runs,
/// and the waiter armed at its end (or one armed during it) delivers what arrived meanwhile. A session whose next waiter
/// does not come within this time is taken to be without one (its hooks are off, or it ended).
pub(crate) const WOKEN_TURN: Duration = Duration::from_secs(600);

/// Where a session's waiting stands.
#[derive(Debug)]
enum Waiting {
    /// A waiter is connected and waiting.
    Armed {
        conn: ConnId,
        outbox: Outbox,
        /// It was told to wake, and has not yet taken its page.
        woken: bool,
        /// It took a page: its session is being woken.
        took: bool,
    },
    /// A waiter woke the session until this time; the next should arm before then.
    Woke { until: Instant },
}

/// How long the hub remembers that a session's channel left, so that a waiter arming just after
/// it (the `Stop` hook of the session's last turn runs as the session shuts its MCP servers) is
/// told at once to stand down. Seconds are enough; a minute is generous.
pub(crate) const LEFT_MEMORY: Duration = Duration::from_secs(60);

/// Every session's waiter, by Claude Code session id.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    sessions: HashMap<String, Waiting>,
    /// Sessions whose channel left, and when.
    left: HashMap<String, Instant>,
}

/// Whether messages to a session wake it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wakes {
    /// A waiter is armed.
    Armed,
    /// A waiter woke the session lately; the next will take what arrives.
    Waking,
    No,
}

impl Waiters {
    /// Arms the waiter on `conn` for `session`, replacing (and telling to stand down) one armed
    /// before it; or tells it to stand down at once when the session's channel left lately.
    pub(crate) fn arm(&mut self, session: &str, conn: ConnId, outbox: Outbox, now: Instant) {
        self.left
            .retain(|_, since| now.saturating_duration_since(*since) < LEFT_MEMORY);
        if self.left.contains_key(session) {
            stand_down(&outbox, SESSION_LEFT);
            return;
        }
        let armed = Waiting::Armed {
            conn,
            outbox,
            woken: false,
            took: false,
        };
        if let Some(Waiting::Armed { outbox: older, .. }) =
            self.sessions.insert(session.to_owned(), armed)
        {
            stand_down(&older, "a newer waiter took its place");
        }
    }

    /// How a message to `session` would reach it now.
    pub(crate) fn wakes(&self, session: &str, now: Instant) -> Wakes {
        match self.sessions.get(session) {
            Some(Waiting::Armed { .. }) => Wakes::Armed,
            Some(Waiting::Woke { until }) if *until > now => Wakes::Waking,
            _ => Wakes::No,
        }
    }

    /// Tells the waiter of `session`, if one is armed, that messages wait for it (once, until
    /// it took them).
    pub(crate) fn wake(&mut self, session: &str) {
        if let Some(Waiting::Armed { outbox, woken, .. }) = self.sessions.get_mut(session)
            && !*woken
        {
            *woken = true;
            outbox.send(&FromHub::Wake {});
        }
    }

    /// The waiter on `conn` took a page of `session`'s inbox: it is waking its session.
    pub(crate) fn took(&mut self, session: &str, conn: ConnId) {
        if let Some(Waiting::Armed {
            conn: armed,
            took,
            woken,
            ..
        }) = self.sessions.get_mut(session)
            && *armed == conn
        {
            *took = true;
            *woken = false;
        }
    }

    /// The waiter of `session` is not needed: its pushes are on.
    pub(crate) fn not_needed(&mut self, session: &str, why: &str) {
        if let Some(Waiting::Armed { outbox, .. }) = self.sessions.remove(session) {
            stand_down(&outbox, why);
        }
    }

    /// The channel of `session` left (its connection closed while the hub runs): the session is
    /// ending, so its waiter stands down, and so does one that arms in the next [`LEFT_MEMORY`].
    /// Claude Code waits for its background hooks before it exits (up to 30 s, seen on 2.1.197 and
    /// 2.1.332 under `claude -p --input-format stream-json` when the input ends): a waiter waiting
    /// for messages there would only hold the exit up.
    pub(crate) fn session_left(&mut self, session: &str, now: Instant) {
        self.left.insert(session.to_owned(), now);
        if let Some(Waiting::Armed { outbox, .. }) = self.sessions.remove(session) {
            stand_down(&outbox, SESSION_LEFT);
        }
    }

    /// A channel of `session` registered: it is not ending (any more).
    pub(crate) fn session_joined(&mut self, session: &str) {
        self.left.remove(session);
    }

    /// The connection `conn` closed: if it was a waiter that woke its session, the session is
    /// being woken for [`WOKEN_TURN`]; any other waiter is simply gone.
    pub(crate) fn disconnected(&mut self, conn: ConnId, now: Instant) {
        let ended = self
            .sessions
            .iter()
            .find_map(|(session, waiting)| match waiting {
                Waiting::Armed {
                    conn: armed, took, ..
                } if *armed == conn => Some((session.clone(), *took)),
                _ => None,
            });
        match ended {
            Some((session, true)) => {
                self.sessions.insert(
                    session,
                    Waiting::Woke {
                        until: now + WOKEN_TURN,
                    },
                );
            }
            Some((session, false)) => {
                self.sessions.remove(&session);
            }
            None => {}
        }
    }

    /// How many waiters are armed.
    pub(crate) fn armed(&self) -> usize {
        self.sessions
            .values()
            .filter(|waiting| matches!(waiting, Waiting::Armed { .. }))
            .count()
    }
}

/// Why a waiter stands down when its session's channel left.
const SESSION_LEFT: &str = "its session's channel left: the session is ending";

fn stand_down(outbox: &Outbox, why: &str) {
    outbox.send(&FromHub::StandDown {
        reason: why.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(Default::default()).0
    }

    #[test]
    fn a_session_is_woken_while_armed_and_through_the_turn_after() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        assert_eq!(waiters.wakes("s", now), Wakes::No);
        waiters.arm("s", ConnId(1), outbox(), now);
        assert_eq!(waiters.wakes("s", now), Wakes::Armed);
        assert_eq!(waiters.armed(), 1);
        waiters.took("s", ConnId(1));
        waiters.disconnected(ConnId(1), now);
        assert_eq!(waiters.wakes("s", now), Wakes::Waking);
        assert_eq!(waiters.wakes("s", now + WOKEN_TURN), Wakes::No);
        waiters.arm("s", ConnId(2), outbox(), now);
        waiters.disconnected(ConnId(2), now);
        assert_eq!(waiters.wakes("s", now), Wakes::No, "it woke nothing");
    }

    #[test]
    fn a_newer_waiter_replaces_an_older_one() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        let (older, mut told) = Outbox::new(Default::default());
        waiters.arm("s", ConnId(1), older, now);
        waiters.arm("s", ConnId(2), outbox(), now);
        let line = told.lines.try_recv().unwrap();
        assert!(String::from_utf8(line).unwrap().contains("stand_down"));
        waiters.disconnected(ConnId(1), now);
        assert_eq!(
            waiters.wakes("s", now),
            Wakes::Armed,
            "the newer stays armed"
        );
    }

    fn told(lines: &mut crate::hub::outbox::OutboxReceiver) -> String {
        String::from_utf8(lines.lines.try_recv().unwrap()).unwrap()
    }

    #[test]
    fn a_waiter_stands_down_when_its_sessions_channel_leaves() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        let (armed, mut armed_told) = Outbox::new(Default::default());
        waiters.arm("s", ConnId(1), armed, now);
        waiters.session_left("s", now);
        assert!(told(&mut armed_told).contains("channel left"));
        assert_eq!(waiters.wakes("s", now), Wakes::No);
        assert_eq!(waiters.armed(), 0);

        // The last turn's Stop hook arms a waiter just after: it stands down at once.
        let (late, mut late_told) = Outbox::new(Default::default());
        waiters.arm("s", ConnId(2), late, now + Duration::from_secs(1));
        assert!(told(&mut late_told).contains("channel left"));
        assert_eq!(waiters.armed(), 0);

        // Long after, or once a channel of the session is back, a waiter arms.
        waiters.arm("s", ConnId(3), outbox(), now + LEFT_MEMORY);
        assert_eq!(waiters.armed(), 1);
        waiters.session_left("s", now + LEFT_MEMORY);
        waiters.session_joined("s");
        waiters.arm("s", ConnId(4), outbox(), now + LEFT_MEMORY);
        assert_eq!(waiters.wakes("s", now + LEFT_MEMORY), Wakes::Armed);
    }
}
