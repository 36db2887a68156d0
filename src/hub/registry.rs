//! The registry of live peers: who is connected, under which name.
//!
//! Names are first come, first served. A peer that registers under a taken name gets the first
//! free of `name-2`, `name-3`, ...; a rename to a taken name fails with `name_taken`.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use crate::{
    ask::ConnId,
    errors::RelayError,
    hub::{inbox::Owner, outbox::Outbox, texts},
    protocol::{DeliveryMode, MAX_NAME_LEN, PeerInfo, PeerKind, Pushes},
};

/// A registered peer.
#[derive(Debug)]
pub(super) struct Peer {
    pub name: String,
    pub kind: PeerKind,
    pub cwd: String,
    pub git_branch: String,
    pub pushes: Pushes,
    /// Why the peer's channel says so (its hello's `pushes_reason`).
    pub pushes_reason: String,
    pub pid: u32,
    pub connected_at: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    pub outbox: Outbox,
    /// Whose inbox keeps this peer's messages when they cannot be pushed.
    pub inbox: Owner,
}

impl Peer {
    /// What `peers` says of it: `delivery` is how a message reaches it now, and `waiter` whether
    /// one is armed for its session.
    pub(super) fn info(&self, delivery: DeliveryMode, waiter: bool) -> PeerInfo {
        PeerInfo {
            name: self.name.clone(),
            host: String::new(),
            kind: self.kind,
            cwd: self.cwd.clone(),
            git_branch: self.git_branch.clone(),
            pushes: self.pushes,
            pushes_reason: self.pushes_reason.clone(),
            delivery,
            waiter,
            pid: self.pid,
            connected_at: rfc3339(self.connected_at),
            last_seen: rfc3339(self.last_seen),
        }
    }

    /// Whether a message is pushed to this peer: only when its Claude Code shows pushes.
    /// `unknown` counts as off: a message waits in the inbox rather than risk being pushed into a
    /// session that drops it.
    pub(super) fn is_pushed_to(&self) -> bool {
        self.pushes == Pushes::On
    }
}

pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, Default)]
pub(super) struct Registry {
    /// Ordered by connection, so listings come out in the order peers joined.
    peers: BTreeMap<ConnId, Peer>,
    names: HashMap<String, ConnId>,
}

impl Registry {
    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Registers `peer` on `conn` under its name, or the first free `name-N`. Returns the name
    /// it got.
    pub(super) fn register(&mut self, conn: ConnId, mut peer: Peer) -> Result<String, RelayError> {
        if self.peers.contains_key(&conn) {
            return Err(texts::already_registered());
        }
        peer.name = self.free_name(&peer.name);
        let name = peer.name.clone();
        self.names.insert(name.clone(), conn);
        self.peers.insert(conn, peer);
        Ok(name)
    }

    fn free_name(&self, wanted: &str) -> String {
        if !self.names.contains_key(wanted) {
            return wanted.to_owned();
        }
        (2u64..)
            .map(|n| {
                let suffix = format!("-{n}");
                let base = truncate(wanted, MAX_NAME_LEN - suffix.len());
                format!("{base}{suffix}")
            })
            .find(|candidate| !self.names.contains_key(candidate))
            .expect("some suffix is free")
    }

    /// Renames the peer on `conn`. Renaming to its own name succeeds and changes nothing.
    pub(super) fn rename(&mut self, conn: ConnId, new_name: &str) -> Result<String, RelayError> {
        if let Some(&holder) = self.names.get(new_name) {
            if holder == conn {
                return Ok(new_name.to_owned());
            }
            return Err(texts::name_taken(new_name));
        }
        let peer = self
            .peers
            .get_mut(&conn)
            .ok_or_else(texts::not_registered)?;
        let old = std::mem::replace(&mut peer.name, new_name.to_owned());
        self.names.remove(&old);
        self.names.insert(new_name.to_owned(), conn);
        Ok(old)
    }

    pub(super) fn get(&self, conn: ConnId) -> Option<&Peer> {
        self.peers.get(&conn)
    }

    pub(super) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        self.peers.get_mut(&conn)
    }

    /// The peer whose messages go to the inbox of `owner`.
    pub(super) fn with_inbox(&self, owner: &Owner) -> Option<ConnId> {
        self.peers
            .iter()
            .find(|(_, peer)| peer.inbox == *owner)
            .map(|(conn, _)| *conn)
    }

    /// The peer registered under `name`.
    pub(super) fn by_name(&self, name: &str) -> Option<(ConnId, &Peer)> {
        let conn = *self.names.get(name)?;
        Some((conn, &self.peers[&conn]))
    }

    pub(super) fn remove(&mut self, conn: ConnId) -> Option<Peer> {
        let peer = self.peers.remove(&conn)?;
        self.names.remove(&peer.name);
        Some(peer)
    }

    /// Every peer, in the order they joined.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ConnId, &Peer)> {
        self.peers.iter().map(|(conn, peer)| (*conn, peer))
    }
}

fn truncate(name: &str, max: usize) -> &str {
    // Names are ASCII (validated), so any byte index is a character boundary.
    &name[..name.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorCode;

    fn peer(name: &str) -> Peer {
        let now = OffsetDateTime::now_utc();
        Peer {
            name: name.into(),
            kind: PeerKind::Channel,
            cwd: "/tmp".into(),
            git_branch: String::new(),
            pushes: Pushes::Unknown,
            pushes_reason: String::new(),
            pid: 1,
            connected_at: now,
            last_seen: now,
            outbox: Outbox::new(Default::default()).0,
            inbox: Owner::Connection(ConnId(0)),
        }
    }

    #[test]
    fn taken_names_get_numbered_suffixes() {
        let mut registry = Registry::default();
        assert_eq!(registry.register(ConnId(1), peer("api")).unwrap(), "api");
        assert_eq!(registry.register(ConnId(2), peer("api")).unwrap(), "api-2");
        assert_eq!(registry.register(ConnId(3), peer("api")).unwrap(), "api-3");
        registry.remove(ConnId(2));
        assert_eq!(registry.register(ConnId(4), peer("api")).unwrap(), "api-2");
        assert_eq!(registry.by_name("api-3").unwrap().0, ConnId(3));
    }

    #[test]
    fn suffixed_names_stay_within_the_length_limit() {
        let mut registry = Registry::default();
        let long = "x".repeat(MAX_NAME_LEN);
        registry.register(ConnId(1), peer(&long)).unwrap();
        let second = registry.register(ConnId(2), peer(&long)).unwrap();
        assert_eq!(second.len(), MAX_NAME_LEN);
        assert!(second.ends_with("-2"));
    }

    #[test]
    fn a_connection_registers_once() {
        let mut registry = Registry::default();
        registry.register(ConnId(1), peer("a")).unwrap();
        let err = registry.register(ConnId(1), peer("b")).unwrap_err();
        assert_eq!(err.code, ErrorCode::AlreadyRegistered);
    }

    #[test]
    fn rename_moves_the_name_and_refuses_taken_ones() {
        let mut registry = Registry::default();
        registry.register(ConnId(1), peer("a")).unwrap();
        registry.register(ConnId(2), peer("b")).unwrap();
        assert_eq!(
            registry.rename(ConnId(1), "b").unwrap_err().code,
            ErrorCode::NameTaken
        );
        assert_eq!(registry.rename(ConnId(1), "a").unwrap(), "a");
        assert_eq!(registry.rename(ConnId(1), "c").unwrap(), "a");
        assert!(registry.by_name("a").is_none());
        assert_eq!(registry.by_name("c").unwrap().0, ConnId(1));
        assert_eq!(
            registry.rename(ConnId(9), "z").unwrap_err().code,
            ErrorCode::NotRegistered
        );
    }
}
