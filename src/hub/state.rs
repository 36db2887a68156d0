//! The hub's shared state behind a small API.
//!
//! [`Hub`] is a cheap handle (an `Arc`) that every connection task holds. All state lives in one
//! `std::sync::Mutex`: every operation is a few map look-ups and non-blocking queue sends, no
//! `.await` ever happens while it is held, and one lock means an ask, the registry look-up of its
//! target and the event sent to that target happen atomically: a target cannot vanish between the
//! look-up and the send without its asks being failed.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use time::OffsetDateTime;
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};

use crate::{
    ask::{AskTable, ConnId, PendingAsk},
    errors::{ErrorCode, FOR_THE_MODEL, RelayError},
    hub::{
        inbox::Inbox,
        outbox::Outbox,
        registry::{Peer, Registry, not_registered, rfc3339},
    },
    protocol::{
        AskFailure, AskRequest, Asked, BroadcastAsk, BroadcastRequest, Broadcasted, Delivery,
        DeliveryMode, FromHub, Hello, HubStatus, InboxContents, PROTOCOL_VERSION, PeerKind,
        PeerList, Renamed, Replied, ReplyRequest, VERSION, Welcome,
    },
};

#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the deadline task when an ask with a nearer deadline arrives.
    nearer_deadline: Notify,
    /// Set when a client asks the hub to shut down.
    shutdown: watch::Sender<bool>,
    started_at: OffsetDateTime,
    /// Makes ask and broadcast ids unique across hub restarts.
    id_prefix: String,
    next_id: AtomicU64,
}

#[derive(Default)]
struct State {
    peers: Registry,
    asks: AskTable,
    /// Inboxes of peers that disconnected, by Claude Code session id, so that a channel that
    /// reconnects (or its prompt hook) still gets them.
    orphans: HashMap<String, (Inbox, Instant)>,
}

/// How long the inbox of a disconnected session is kept for it.
const ORPHAN_GRACE: Duration = Duration::from_secs(600);

impl State {
    fn keep_orphaned_inbox(&mut self, inbox: Inbox, session_id: Option<&str>, name: &str) {
        let now = Instant::now();
        self.orphans.retain(|id, (inbox, since)| {
            let keep = now.duration_since(*since) < ORPHAN_GRACE;
            if !keep {
                tracing::warn!(session_id = %id, lost = inbox.len(), "orphaned_inbox_expired");
            }
            keep
        });
        if inbox.is_empty() {
            return;
        }
        match session_id {
            Some(id) => {
                tracing::info!(session = %name, count = inbox.len(), "inbox_kept_for_reconnect");
                self.orphans.insert(id.to_owned(), (inbox, now));
            }
            None => tracing::warn!(session = %name, lost = inbox.len(), "inbox_lost_no_session_id"),
        }
    }
}

/// One page of `inbox`, with whether more is waiting.
fn take_page(inbox: &mut Inbox, owner: &str) -> InboxContents {
    let (messages, dropped) = inbox.take();
    let more = !inbox.is_empty();
    if !messages.is_empty() || dropped > 0 {
        tracing::info!(session = %owner, count = messages.len(), dropped, more, "inbox_taken");
    }
    InboxContents {
        messages,
        dropped,
        more,
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let started_at = OffsetDateTime::now_utc();
        let started_ms = started_at.unix_timestamp_nanos() / 1_000_000;
        Hub {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                nearer_deadline: Notify::new(),
                shutdown: watch::Sender::new(false),
                started_at,
                id_prefix: base36(started_ms.unsigned_abs()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent (every operation
        // updates them before sending), so a poisoned lock is safe to keep using.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self, kind: &str) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{kind}-{}-{n}", self.shared.id_prefix)
    }

    pub fn status(&self) -> HubStatus {
        let state = self.state();
        HubStatus {
            hub_pid: std::process::id(),
            hub_version: VERSION.to_owned(),
            protocol: PROTOCOL_VERSION,
            started_at: rfc3339(self.shared.started_at),
            peers: state.peers.len(),
            pending_asks: state.asks.len(),
        }
    }

    /// Starts a graceful shutdown: the server stops, and disconnects no longer count as peers
    /// leaving.
    pub fn request_shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Resolves once a shutdown has been requested.
    pub async fn shutdown_requested(&self) {
        let _ = self
            .shutdown_signal()
            .wait_for(|requested| *requested)
            .await;
    }

    /// A flag that turns true when the hub starts shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }

    /// Registers the peer on `conn`, answering its hello.
    pub fn register(
        &self,
        conn: ConnId,
        hello: Hello,
        pid: u32,
        outbox: Outbox,
    ) -> Result<Welcome, RelayError> {
        let now = OffsetDateTime::now_utc();
        let pushes = hello.pushes;
        let mut state = self.state();
        // A session that reconnects gets back the inbox it left behind.
        let inbox = hello
            .session_id
            .as_ref()
            .and_then(|id| state.orphans.remove(id))
            .map(|(inbox, _)| inbox)
            .unwrap_or_default();
        if !inbox.is_empty() {
            tracing::info!(count = inbox.len(), "inbox_handed_back");
        }
        let peer = Peer {
            name: hello.name,
            kind: hello.kind,
            cwd: hello.cwd,
            git_branch: hello.git_branch,
            pushes: hello.pushes,
            pushes_reason: hello.pushes_reason,
            pid,
            connected_at: now,
            last_seen: now,
            session_id: hello.session_id,
            outbox,
            inbox,
        };
        let name = state.peers.register(conn, peer)?;
        drop(state);
        tracing::info!(session = %name, peer_pid = pid, pushes = pushes.as_str(), "peer_registered");
        Ok(Welcome {
            name,
            hub_pid: std::process::id(),
            hub_version: VERSION.to_owned(),
            protocol: PROTOCOL_VERSION,
        })
    }

    /// Notes that `conn` was heard from, for `last_seen`.
    pub fn touch(&self, conn: ConnId) {
        if let Some(peer) = self.state().peers.get_mut(conn) {
            peer.last_seen = OffsetDateTime::now_utc();
        }
    }

    /// Every peer but `conn`.
    pub fn peers(&self, conn: ConnId) -> Result<PeerList, RelayError> {
        let state = self.state();
        state.peers.get(conn).ok_or_else(not_registered)?;
        let peers = state
            .peers
            .iter()
            .filter(|(other, _)| *other != conn)
            .map(|(_, peer)| peer.info())
            .collect();
        Ok(PeerList { peers })
    }

    /// Every peer, for a client that has not said hello (`relay peers`).
    pub fn all_peers(&self) -> PeerList {
        let peers = self
            .state()
            .peers
            .iter()
            .map(|(_, peer)| peer.info())
            .collect();
        PeerList { peers }
    }

    pub fn ask(&self, conn: ConnId, request: AskRequest) -> Result<Asked, RelayError> {
        let mut state = self.state();
        let caller = state
            .peers
            .get(conn)
            .ok_or_else(not_registered)?
            .name
            .clone();
        let (target, target_peer) = state.peers.by_name(&request.to).ok_or_else(|| {
            RelayError::new(
                ErrorCode::PeerNotFound,
                format!(
                    "no live session is named {:?}; relay_peers (or `relay peers` in a shell) lists who is connected",
                    request.to
                ),
            )
        })?;
        if target == conn {
            return Err(RelayError::bad_args(format!(
                "{caller:?} is this session itself; ask another session (relay_peers, or `relay peers` in a shell, lists them)"
            )));
        }
        if target_peer.kind == PeerKind::Cli {
            return Err(RelayError::bad_args(format!(
                "{:?} is a relay command line, which cannot answer questions; ask a Claude Code session (relay_peers, or `relay peers` in a shell, lists them)",
                request.to
            )));
        }
        if !target_peer.has_room_for(request.question.len()) {
            return Err(inbox_full(&request.to));
        }
        let ask_id = self.new_id("ask");
        let thread_id = request.thread_id.unwrap_or_else(|| ask_id.clone());
        let pending = PendingAsk {
            ask_id: ask_id.clone(),
            caller: conn,
            caller_name: caller,
            target,
            target_name: request.to,
            deadline: Instant::now() + Duration::from_secs(request.timeout_secs),
            timeout_secs: request.timeout_secs,
            thread_id: thread_id.clone(),
            broadcast_id: None,
        };
        let delivery = self.start_ask(&mut state, pending, request.question);
        Ok(Asked {
            ask_id,
            thread_id,
            delivery,
        })
    }

    pub fn broadcast(
        &self,
        conn: ConnId,
        request: BroadcastRequest,
    ) -> Result<Broadcasted, RelayError> {
        let mut state = self.state();
        let caller = state
            .peers
            .get(conn)
            .ok_or_else(not_registered)?
            .name
            .clone();
        let broadcast_id = self.new_id("bc");
        let deadline = Instant::now() + Duration::from_secs(request.timeout_secs);
        let mut targets: Vec<(ConnId, String)> = Vec::new();
        let mut skipped = Vec::new();
        for (target, peer) in state.peers.iter() {
            // A command line cannot answer, so it is never asked.
            if (request.exclude_self && target == conn) || peer.kind == PeerKind::Cli {
                continue;
            }
            if peer.has_room_for(request.question.len()) {
                targets.push((target, peer.name.clone()));
            } else {
                skipped.push(peer.name.clone());
            }
        }
        let mut asks = Vec::with_capacity(targets.len());
        for (target, target_name) in targets {
            let ask_id = self.new_id("ask");
            let pending = PendingAsk {
                ask_id: ask_id.clone(),
                caller: conn,
                caller_name: caller.clone(),
                target,
                target_name: target_name.clone(),
                deadline,
                timeout_secs: request.timeout_secs,
                thread_id: broadcast_id.clone(),
                broadcast_id: Some(broadcast_id.clone()),
            };
            let delivery = self.start_ask(&mut state, pending, request.question.clone());
            asks.push(BroadcastAsk {
                ask_id,
                to: target_name,
                delivery,
            });
        }
        tracing::info!(broadcast_id = %broadcast_id, from = %caller, peer_count = asks.len(), "broadcast_sent");
        Ok(Broadcasted {
            broadcast_id,
            asks,
            skipped,
        })
    }

    /// Records `ask` and hands the question to its target, live or into its inbox. The caller
    /// has checked that the target has room.
    fn start_ask(&self, state: &mut State, ask: PendingAsk, question: String) -> DeliveryMode {
        let bytes = question.len();
        let event = FromHub::Ask(Delivery {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id.clone(),
            from: ask.caller_name.clone(),
            thread_id: ask.thread_id.clone(),
            broadcast_id: ask.broadcast_id.clone(),
            text: question,
        });
        // If a live target's queue overflows its connection closes, and its disconnect fails
        // this ask with `peer_gone`: the caller is told either way.
        let delivery = match state.peers.get_mut(ask.target) {
            Some(peer) => peer.deliver(&event, bytes),
            None => DeliveryMode::Live,
        };
        tracing::info!(
            ask_id = %ask.ask_id, from = %ask.caller_name, to = %ask.target_name, bytes,
            timeout_secs = ask.timeout_secs, delivery = ?delivery, "ask_sent"
        );
        if state.asks.insert(ask) {
            self.shared.nearer_deadline.notify_one();
        }
        delivery
    }

    pub fn reply(&self, conn: ConnId, request: ReplyRequest) -> Result<Replied, RelayError> {
        let mut state = self.state();
        let replier = state
            .peers
            .get(conn)
            .ok_or_else(not_registered)?
            .name
            .clone();
        let ask = state.asks.take_for_reply(&request.ask_id, conn)?;
        let bytes = request.text.len();
        if let Some(caller) = state.peers.get(ask.caller)
            && !caller.has_room_for(bytes)
        {
            let error = inbox_full(&caller.name);
            state.asks.restore(ask);
            return Err(error);
        }
        tracing::info!(ask_id = %ask.ask_id, from = %replier, to = %ask.caller_name, bytes, "reply_sent");
        let event = FromHub::Reply(Delivery {
            message_id: self.new_id("msg"),
            ask_id: ask.ask_id,
            from: replier,
            thread_id: ask.thread_id,
            broadcast_id: ask.broadcast_id,
            text: request.text,
        });
        if let Some(peer) = state.peers.get_mut(ask.caller) {
            peer.deliver(&event, bytes);
        }
        Ok(Replied {})
    }

    /// Takes the inbox of the peer on `conn`, or of the peer registered with `session_id`.
    pub fn take_inbox(
        &self,
        conn: ConnId,
        session_id: Option<&str>,
    ) -> Result<InboxContents, RelayError> {
        let mut state = self.state();
        let owner = match session_id {
            Some(id) => match state.peers.by_session_id(id) {
                Some(owner) => owner,
                // Its channel is reconnecting: the inbox waits under its session id.
                None => {
                    let (inbox, _) = state.orphans.get_mut(id).ok_or_else(|| {
                        RelayError::new(
                            ErrorCode::PeerNotFound,
                            format!(
                                "no live session registered with Claude Code session id {id:?}"
                            ),
                        )
                    })?;
                    return Ok(take_page(inbox, id));
                }
            },
            None => conn,
        };
        let peer = state.peers.get_mut(owner).ok_or_else(not_registered)?;
        Ok(take_page(&mut peer.inbox, &peer.name))
    }

    pub fn rename(&self, conn: ConnId, new_name: &str) -> Result<Renamed, RelayError> {
        let old = self.state().peers.rename(conn, new_name)?;
        if old != new_name {
            tracing::info!(session = %new_name, old_name = %old, "peer_renamed");
        }
        Ok(Renamed {
            name: new_name.to_owned(),
        })
    }

    /// Removes the peer on `conn`: asks addressed to it fail for their callers with `peer_gone`,
    /// asks it made are forgotten.
    pub fn disconnect(&self, conn: ConnId) {
        let mut state = self.state();
        let Some(mut peer) = state.peers.remove(conn) else {
            return;
        };
        let gone = state.asks.remove_target(conn);
        // These asks fail now, so their questions must not wait in the inbox for a reconnect.
        for ask in &gone {
            if peer.inbox.withdraw_question(&ask.ask_id) {
                tracing::info!(ask_id = %ask.ask_id, session = %peer.name, "queued_question_withdrawn");
            }
        }
        state.keep_orphaned_inbox(peer.inbox, peer.session_id.as_deref(), &peer.name);
        let forgotten = state.asks.remove_caller(conn);
        tracing::info!(session = %peer.name, forgotten_asks = forgotten.len(), "peer_left");
        for ask in &forgotten {
            withdraw_queued_question(&mut state, ask);
        }
        if *self.shared.shutdown.borrow() {
            // The peer did not go anywhere, the hub did: every caller's own channel reports its
            // pending asks as `hub_unreachable` when its connection closes.
            return;
        }
        for ask in gone {
            let message = format!(
                "{} disconnected before it replied to ask {}{FOR_THE_MODEL}",
                ask.target_name, ask.ask_id
            );
            tracing::info!(ask_id = %ask.ask_id, to = %ask.target_name, "ask_failed_peer_gone");
            fail(self, &mut state, ask, ErrorCode::PeerGone, message);
        }
    }

    /// Fails every ask whose deadline has passed with `timeout`, and returns the next deadline.
    pub fn expire_due_asks(&self) -> Option<Instant> {
        let mut state = self.state();
        for ask in state.asks.expire(Instant::now()) {
            let message = format!(
                "{} did not reply to ask {} within {} s{FOR_THE_MODEL}",
                ask.target_name, ask.ask_id, ask.timeout_secs
            );
            tracing::info!(ask_id = %ask.ask_id, to = %ask.target_name, "ask_timed_out");
            withdraw_queued_question(&mut state, &ask);
            fail(self, &mut state, ask, ErrorCode::Timeout, message);
        }
        state.asks.next_deadline()
    }

    /// Resolves when an ask with a nearer deadline than any before has been added.
    pub async fn nearer_deadline(&self) {
        self.shared.nearer_deadline.notified().await
    }
}

/// Tells the caller of `ask` that it failed.
fn fail(hub: &Hub, state: &mut State, ask: PendingAsk, code: ErrorCode, message: String) {
    let bytes = message.len();
    let event = FromHub::AskFailed(AskFailure {
        message_id: hub.new_id("msg"),
        ask_id: ask.ask_id,
        to: ask.target_name,
        thread_id: ask.thread_id,
        broadcast_id: ask.broadcast_id,
        code,
        message,
    });
    if let Some(peer) = state.peers.get_mut(ask.caller) {
        peer.deliver(&event, bytes);
    }
}

/// Takes the question of `ask`, which can no longer be answered, out of its target's inbox if it
/// still waits there unseen.
fn withdraw_queued_question(state: &mut State, ask: &PendingAsk) {
    if let Some(target) = state.peers.get_mut(ask.target)
        && target.inbox.withdraw_question(&ask.ask_id)
    {
        tracing::info!(ask_id = %ask.ask_id, session = %target.name, "queued_question_withdrawn");
    }
}

/// The error for a message to a session whose inbox is full.
fn inbox_full(name: &str) -> RelayError {
    RelayError::new(
        ErrorCode::InboxFull,
        format!(
            "{name}'s pushes are off and its inbox of undelivered messages is full, so nothing was sent; \
             tell the user: {name} must be used (a prompt there delivers the inbox) or restarted with the \
             channels flag"
        ),
    )
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
