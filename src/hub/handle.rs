//! The hub's shared state behind a small handle.
//!
//! [`Hub`] is a cheap handle (an `Arc`) that every connection task holds. All state lives in one
//! `std::sync::Mutex` ([`State`]: the peer registry, the pending asks, the inboxes): every
//! operation is a few map look-ups and non-blocking queue sends, no `.await` ever happens while it
//! is held, and one lock means an ask, the registry look-up of its target and the event sent to
//! that target happen atomically: a target cannot vanish between the look-up and the send without
//! its asks being failed. The operations themselves live by concern in [`super::presence`],
//! [`super::asking`] and [`super::delivery`].
//!
//! Deadlines (asks that time out, inboxes of departed sessions that expire) are kept in ordered
//! indexes; one background task sleeps until the nearest ([`Hub::expire_due`]) and is woken by
//! [`Hub::nearer_deadline`] when a sooner one is added.

use std::{
    collections::HashMap,
    io,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use time::OffsetDateTime;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    ask::AskTable,
    framing::LineBudget,
    hub::{
        connection::GiveBack,
        federation::{Federation, roster::Hosts},
        inbox::{Inboxes, Owner},
        journal::Journal,
        outbox::Unread,
        registry::Registry,
        registry::rfc3339,
        waiters::Waiters,
    },
    paths::DataDir,
    protocol::{FederationStatus, FromHub, HubStatus, PROTOCOL_VERSION, VERSION},
};

/// What the unfinished lines of every connection may hold together.
const LINE_BUDGET_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// What every connection's outbox holds unread, together.
    unread: Arc<Unread>,
    /// What every connection's unfinished line holds, together.
    line_budget: Arc<LineBudget>,
    /// Wakes the deadline task when a deadline nearer than any before arrives.
    nearer_deadline: Notify,
    /// Cancelled when the hub starts shutting down.
    shutdown: CancellationToken,
    started_at: OffsetDateTime,
    /// Makes ask, broadcast and message ids unique across hub restarts.
    id_prefix: String,
    next_id: AtomicU64,
    /// The federation the hub joined, if it is configured to.
    federation: OnceLock<Federation>,
    /// Why the hub did not join the federation it is configured for.
    federation_refused: OnceLock<String>,
    /// When memory was last handed back to the system.
    give_back: Mutex<GiveBack>,
}

/// Everything behind the hub's one lock.
pub(super) struct State {
    pub(super) peers: Registry,
    pub(super) asks: AskTable,
    pub(super) inboxes: Inboxes,
    /// Where the sessions' inboxes are written down, to survive the hub.
    pub(super) journal: Journal,
    /// The sessions' waiters, which wake sessions whose pushes are off.
    pub(super) waiters: Waiters,
    /// The other hosts of the federation and their sessions (none when not federated).
    pub(super) hosts: Hosts,
    /// Counts the changes of this hub's sessions, told to the other hosts.
    pub(super) roster_version: u64,
    /// Asks to sessions of other hosts whose callers have not been answered yet (their hosts
    /// have not said): what comes for them meanwhile waits here, to follow that answer.
    pub(super) unconfirmed: HashMap<String, Vec<Held>>,
}

/// An event for a caller that waits for the answer to the request that made its ask.
pub(super) struct Held {
    pub(super) event: FromHub,
    pub(super) bytes: usize,
    /// Told should the event expire unread (see `State::deliver`).
    pub(super) sender: Option<Owner>,
}

impl Hub {
    /// A hub for `data`, with the inboxes its journal kept from the hub before.
    pub(crate) fn open(data: &DataDir) -> io::Result<Hub> {
        let mut inboxes = Inboxes::default();
        let journal = Journal::open(data, &mut inboxes, Instant::now())?;
        let state = State {
            peers: Registry::default(),
            asks: AskTable::default(),
            inboxes,
            journal,
            waiters: Waiters::default(),
            hosts: Hosts::default(),
            roster_version: 0,
            unconfirmed: HashMap::new(),
        };
        let started_at = OffsetDateTime::now_utc();
        let started_ms = started_at.unix_timestamp_nanos() / 1_000_000;
        Ok(Hub {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                unread: Arc::default(),
                line_budget: Arc::new(LineBudget::new(LINE_BUDGET_BYTES)),
                nearer_deadline: Notify::new(),
                shutdown: CancellationToken::new(),
                started_at,
                id_prefix: base36(started_ms.unsigned_abs()),
                next_id: AtomicU64::new(1),
                federation: OnceLock::new(),
                federation_refused: OnceLock::new(),
                give_back: Mutex::default(),
            }),
        })
    }

    pub(super) fn unread(&self) -> Arc<Unread> {
        self.shared.unread.clone()
    }

    pub(super) fn line_budget(&self) -> Arc<LineBudget> {
        self.shared.line_budget.clone()
    }

    pub(super) fn give_back(&self) -> &Mutex<GiveBack> {
        &self.shared.give_back
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent (every operation
        // updates them before sending), so a poisoned lock is safe to keep using.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new id such as `ask-mwr82gk5-12`.
    pub(super) fn new_id(&self, kind: &str) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{kind}-{}-{n}", self.shared.id_prefix)
    }

    /// Whether `id` has the shape of the ids this hub makes.
    pub(super) fn is_own_id(&self, id: &str) -> bool {
        id.contains(&format!("-{}-", self.shared.id_prefix))
    }

    pub(crate) fn status(&self) -> HubStatus {
        let state = self.state();
        HubStatus {
            hub_pid: std::process::id(),
            hub_version: VERSION.to_owned(),
            protocol: PROTOCOL_VERSION,
            started_at: rfc3339(self.shared.started_at),
            peers: state.peers.len(),
            pending_asks: state.asks.len(),
            waiters: state.waiters.armed(),
            federation: self.federation_status(&state),
        }
    }

    /// The federation the hub joined, if any.
    pub(super) fn federation(&self) -> Option<&Federation> {
        self.shared.federation.get()
    }

    /// The hub is in `federation` from now on.
    pub(super) fn joined(&self, federation: Federation) {
        let _ = self.shared.federation.set(federation);
    }

    /// The hub is configured to federate, and cannot: `why`.
    pub(super) fn cannot_federate(&self, why: String) {
        let _ = self.shared.federation_refused.set(why);
    }

    fn federation_status(&self, state: &State) -> Option<FederationStatus> {
        if let Some(federation) = self.federation() {
            return Some(federation.status(state.hosts.names()));
        }
        let why = self.shared.federation_refused.get()?;
        Some(FederationStatus {
            host: String::new(),
            url: String::new(),
            prefix: String::new(),
            connected: false,
            hosts: Vec::new(),
            error: Some(why.clone()),
            last_error: None,
        })
    }

    /// Starts a graceful shutdown: the server stops, and disconnects no longer count as peers
    /// leaving.
    pub(crate) fn request_shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Cancelled once a shutdown has been requested.
    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    pub(super) fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Tells the deadline task that a deadline nearer than it sleeps for was added.
    pub(super) fn wake_deadline_task(&self) {
        self.shared.nearer_deadline.notify_one();
    }

    /// Resolves when a deadline nearer than any before has been added.
    pub(crate) async fn nearer_deadline(&self) {
        self.shared.nearer_deadline.notified().await
    }

    /// Runs every deadline that has passed (asks time out, orphaned inboxes expire) and returns
    /// the next one.
    pub(crate) fn expire_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.state();
        self.expire_asks(&mut state, now);
        self.expire_inboxes(&mut state, now);
        [state.asks.next_deadline(), state.inboxes.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_encodes() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
