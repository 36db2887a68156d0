//! Who is connected: peers joining (hello), being listed, renaming and leaving.

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::{
    ask::ConnId,
    errors::ErrorCode,
    errors::RelayError,
    hub::{
        federation::wire::Change,
        handle::{Hub, State},
        inbox::{Owner, Released},
        outbox::Outbox,
        registry::Peer,
        texts,
    },
    protocol::{
        FromHub, Hello, PROTOCOL_VERSION, PeerInfo, PeerList, Pushes, Renamed, VERSION, Welcome,
    },
};

impl Hub {
    /// Registers the peer on `conn`, answering its hello. A session that comes back gets the
    /// inbox it left behind.
    pub(crate) fn register(
        &self,
        conn: ConnId,
        hello: Hello,
        pid: u32,
        outbox: Outbox,
    ) -> Result<Welcome, RelayError> {
        let now = OffsetDateTime::now_utc();
        let pushes = hello.pushes;
        let inbox = match &hello.session_id {
            Some(id) => Owner::Session(id.clone()),
            None => Owner::Connection(conn),
        };
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
            outbox,
            inbox: inbox.clone(),
        };
        let mut state = self.state();
        let name = state.peers.register(conn, peer)?;
        let waiting = state.inboxes.claim(&inbox);
        if let Owner::Session(session) = &inbox {
            state.waiters.session_joined(session);
        }
        if let (Owner::Session(session), Pushes::On) = (&inbox, pushes) {
            state
                .waiters
                .not_needed(session, "this session's pushes are on: messages are pushed");
        }
        let mut settled = Vec::new();
        if let (Owner::Session(session), true) = (&inbox, waiting > 0) {
            state.journal.back(session);
            settled = state.inboxes.get(&inbox).map_or_else(Vec::new, |kept| {
                kept.queued()
                    .filter_map(|queued| match &queued.message {
                        FromHub::Reply(reply) => Some(reply.ask_id.clone()),
                        FromHub::AskFailed(failure) => Some(failure.ask_id.clone()),
                        _ => None,
                    })
                    .collect()
            });
        }
        if let Some(peer) = state.info_of(conn) {
            self.announce(&mut state, Change::Joined { peer });
        }
        drop(state);
        if waiting > 0 {
            tracing::info!(session = %name, count = waiting, "inbox_handed_back");
        }
        tracing::info!(session = %name, peer_pid = pid, pushes = pushes.as_str(), "peer_registered");
        Ok(Welcome {
            name,
            hub_pid: std::process::id(),
            hub_version: VERSION.to_owned(),
            protocol: PROTOCOL_VERSION,
            settled,
        })
    }

    /// Notes that `conn` was heard from, for `last_seen`.
    pub(crate) fn touch(&self, conn: ConnId) {
        if let Some(peer) = self.state().peers.get_mut(conn) {
            peer.last_seen = OffsetDateTime::now_utc();
        }
    }

    /// Every peer but `conn`, with those of the other hosts.
    pub(crate) fn peers(&self, conn: ConnId) -> Result<PeerList, RelayError> {
        let state = self.state();
        state.peers.get(conn).ok_or_else(texts::not_registered)?;
        Ok(self.peer_list(&state, Some(conn)))
    }

    /// Every peer, for a client that has not said hello (`relay peers`).
    pub(crate) fn all_peers(&self) -> PeerList {
        self.peer_list(&self.state(), None)
    }

    /// This hub's peers but `except`, then the other hosts' (each with its host).
    fn peer_list(&self, state: &State, except: Option<ConnId>) -> PeerList {
        let host = self.federation().map(|federation| federation.host());
        let mut peers: Vec<PeerInfo> = state
            .peers
            .iter()
            .filter(|(other, _)| Some(*other) != except)
            .filter_map(|(other, _)| state.info_of(other))
            .map(|mut peer| {
                peer.host = host.unwrap_or_default().to_owned();
                peer
            })
            .collect();
        peers.extend(state.hosts.peers().cloned());
        PeerList { peers }
    }

    pub(crate) fn rename(&self, conn: ConnId, new_name: &str) -> Result<Renamed, RelayError> {
        let mut state = self.state();
        let old = state.peers.rename(conn, new_name)?;
        if old != new_name {
            tracing::info!(session = %new_name, old_name = %old, "peer_renamed");
            let new = new_name.to_owned();
            self.announce(&mut state, Change::Renamed { old, new });
        }
        Ok(Renamed {
            name: new_name.to_owned(),
        })
    }

    /// The connection `conn` closed. A page of an inbox it took and did not acknowledge goes to
    /// the next taker. If it was a peer: asks addressed to it fail for their callers with
    /// `peer_gone`, asks it made are forgotten, its inbox waits for its session to come back, and
    /// its session's waiter stands down.
    pub(crate) fn disconnect(&self, conn: ConnId) {
        let mut state = self.state();
        state.inboxes.release_leases(conn);
        state.waiters.disconnected(conn, Instant::now());
        let Some(peer) = state.peers.get(conn) else {
            return;
        };
        let (name, inbox) = (peer.name.clone(), peer.inbox.clone());
        let gone = state.asks.remove_target(conn);
        // These asks fail now, so their questions must not wait in the inbox for a reconnect.
        for ask in &gone {
            state.withdraw_queued_question(ask);
        }
        let forgotten = state.asks.remove_caller(conn);
        for ask in &forgotten {
            state.withdraw_queued_question(ask);
            self.tell_caller_left(ask);
        }
        state.peers.remove(conn);
        self.announce(&mut state, Change::Left { name: name.clone() });
        if let Owner::Session(session) = &inbox
            && !self.is_shutting_down()
        {
            // Its waiter has nothing left to wake. (A hub shutting down closes every
            // connection; the sessions live on, and their waiters come back to the next hub.)
            state.waiters.session_left(session, Instant::now());
        }
        match state.inboxes.release(&inbox, Instant::now()) {
            Released::Kept { waiting, nearest } => {
                if let Owner::Session(session) = &inbox {
                    state.journal.away(session);
                }
                tracing::info!(session = %name, count = waiting, "inbox_kept_for_reconnect");
                if nearest {
                    self.wake_deadline_task();
                }
            }
            Released::Lost(lost) if lost.is_empty() => {}
            Released::Lost(lost) => {
                tracing::warn!(session = %name, lost = lost.len(), "inbox_lost_no_session_id");
                self.report_unread(&mut state, &lost);
            }
        }
        tracing::info!(session = %name, forgotten_asks = forgotten.len(), "peer_left");
        if self.is_shutting_down() {
            // The peer did not go anywhere, the hub did: every caller's own channel reports its
            // pending asks as `hub_unreachable` when its connection closes.
            return;
        }
        for ask in gone {
            tracing::info!(ask_id = %ask.ask_id, to = %ask.target_name, "ask_failed_peer_gone");
            let message = texts::target_gone(&ask.target_name, &ask.ask_id);
            self.fail(&mut state, ask, ErrorCode::PeerGone, message);
        }
    }
}
