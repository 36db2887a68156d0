//! What a hub knows of the other hosts of its federation: their sessions, as their hubs told,
//! and when each was last heard from.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    hub::federation::wire::{Change, PeerChange, Presence, PresenceKind, Roster},
    protocol::{MAX_CWD_BYTES, MAX_LABEL_BYTES, PeerInfo, PeerKind, validate_name},
};

/// The most sessions kept of one other host, and the most other hosts: another hub cannot make
/// this one hold more.
const MAX_PEERS_PER_HOST: usize = 4096;
const MAX_HOSTS: usize = 256;

/// A host not heard from for this long is gone: its hub's heartbeats (every second) stopped.
pub(crate) const GONE_AFTER: Duration = Duration::from_millis(3500);

/// Whether another hub's account of one of its sessions keeps within the limits this hub's own
/// sessions keep to (docs/protocol.md): a name, and bounded labels.
fn within_limits(peer: &PeerInfo) -> bool {
    validate_name(&peer.name).is_ok()
        && peer.cwd.len() <= MAX_CWD_BYTES
        && [
            &peer.git_branch,
            &peer.pushes_reason,
            &peer.connected_at,
            &peer.last_seen,
        ]
        .iter()
        .all(|label| label.len() <= MAX_LABEL_BYTES)
}

fn of_host(mut peer: PeerInfo, host: &str) -> PeerInfo {
    peer.host = host.to_owned();
    peer
}

/// One other host.
#[derive(Debug)]
struct HostView {
    epoch: String,
    version: u64,
    /// Its sessions, by name; `None` until its roster arrived.
    peers: Option<BTreeMap<String, PeerInfo>>,
    last_heard: Instant,
}

/// What to do after hearing from a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Nothing: all known.
    Known,
    /// Its roster is needed: it is new, restarted, or a change was missed.
    NeedRoster,
    /// It left: forget it.
    Gone,
}

/// The other hosts, by name.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    hosts: HashMap<String, HostView>,
}

impl Hosts {
    /// A hub's presence message: a new or restarted host (or a version ahead of what is known)
    /// needs its roster asked for; one saying bye is gone. Returns, with what to do, whether the
    /// host restarted (its earlier hub's asks are gone with it).
    pub(crate) fn heard(&mut self, presence: &Presence, now: Instant) -> (Heard, bool) {
        if presence.kind == PresenceKind::Bye {
            // Only the hub known for the host may say it is gone, not an earlier one.
            let known = self.hosts.get(&presence.host);
            return match known {
                Some(view) if view.epoch == presence.epoch => (Heard::Gone, false),
                _ => (Heard::Known, false),
            };
        }
        match self.hosts.get_mut(&presence.host) {
            Some(view) if view.epoch == presence.epoch => {
                view.last_heard = now;
                if view.peers.is_none() || presence.version > view.version {
                    (Heard::NeedRoster, false)
                } else {
                    (Heard::Known, false)
                }
            }
            known => {
                let restarted = known.is_some();
                if !restarted && self.hosts.len() >= MAX_HOSTS {
                    return (Heard::Known, false);
                }
                self.hosts.insert(
                    presence.host.clone(),
                    HostView {
                        epoch: presence.epoch.clone(),
                        version: presence.version,
                        peers: None,
                        last_heard: now,
                    },
                );
                (Heard::NeedRoster, restarted)
            }
        }
    }

    /// A host's whole roster, as its hub answered. Its sessions are of that host, whatever they
    /// say, and only those whose every field is within the relay's limits are kept. A roster
    /// older than what is known is ignored; one of a new epoch means the host restarted, which
    /// is returned (its earlier hub's asks are gone with it).
    pub(crate) fn roster(&mut self, roster: Roster, now: Instant) -> bool {
        let Some(view) = self.hosts.get_mut(&roster.host) else {
            // Heard from first, or forgotten meanwhile: its next heartbeat asks again.
            return false;
        };
        let restarted = view.epoch != roster.epoch;
        if !restarted && view.peers.is_some() && roster.version < view.version {
            return false;
        }
        let peers: BTreeMap<String, PeerInfo> = roster
            .peers
            .into_iter()
            .filter(within_limits)
            .take(MAX_PEERS_PER_HOST)
            .map(|peer| (peer.name.clone(), of_host(peer, &roster.host)))
            .collect();
        view.epoch = roster.epoch;
        view.version = roster.version;
        view.peers = Some(peers);
        view.last_heard = now;
        restarted
    }

    /// One change of a host's roster; `Heard::NeedRoster` when it does not follow what is known.
    pub(crate) fn change(&mut self, change: PeerChange, now: Instant) -> Heard {
        let Some(view) = self.hosts.get_mut(&change.host) else {
            return Heard::NeedRoster;
        };
        let follows =
            view.epoch == change.epoch && Some(change.version) == view.version.checked_add(1);
        let Some(peers) = view.peers.as_mut().filter(|_| follows) else {
            return Heard::NeedRoster;
        };
        view.version = change.version;
        view.last_heard = now;
        match change.change {
            Change::Joined { peer } => {
                if within_limits(&peer) && peers.len() < MAX_PEERS_PER_HOST {
                    peers.insert(peer.name.clone(), of_host(peer, &change.host));
                }
            }
            Change::Left { name } => {
                peers.remove(&name);
            }
            Change::Renamed { old, new } => {
                if validate_name(&new).is_err() {
                    peers.remove(&old);
                } else if let Some(mut peer) = peers.remove(&old) {
                    peer.name = new.clone();
                    peers.insert(new, peer);
                }
            }
        }
        Heard::Known
    }

    /// Forgets `host`; says whether it was known.
    pub(crate) fn remove(&mut self, host: &str) -> bool {
        self.hosts.remove(host).is_some()
    }

    /// The hosts not heard from for [`GONE_AFTER`], removed.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, view)| now.duration_since(view.last_heard) >= GONE_AFTER)
            .map(|(host, _)| host.clone())
            .collect();
        for host in &gone {
            self.hosts.remove(host);
        }
        gone
    }

    pub(crate) fn knows(&self, host: &str) -> bool {
        self.hosts.contains_key(host)
    }

    /// The sessions of every other host that can be asked (not command lines), by host.
    pub(crate) fn askable(&self) -> Vec<(String, Vec<String>)> {
        let mut askable: Vec<(String, Vec<String>)> = self
            .hosts
            .iter()
            .filter_map(|(host, view)| {
                let names: Vec<String> = view
                    .peers
                    .as_ref()?
                    .values()
                    .filter(|peer| peer.kind != PeerKind::Cli)
                    .map(|peer| peer.name.clone())
                    .collect();
                (!names.is_empty()).then(|| (host.clone(), names))
            })
            .collect();
        askable.sort();
        askable
    }

    /// Every session of every other host.
    pub(crate) fn peers(&self) -> impl Iterator<Item = &PeerInfo> {
        self.hosts
            .values()
            .filter_map(|view| view.peers.as_ref())
            .flat_map(|peers| peers.values())
    }

    /// The sessions of other hosts named `name`, with their hosts.
    pub(crate) fn named(&self, name: &str) -> Vec<&PeerInfo> {
        self.hosts
            .values()
            .filter_map(|view| view.peers.as_ref()?.get(name))
            .collect()
    }

    /// The session `name` of `host`.
    pub(crate) fn get(&self, host: &str, name: &str) -> Option<&PeerInfo> {
        self.hosts.get(host)?.peers.as_ref()?.get(name)
    }

    /// The hosts known, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.hosts.keys().cloned().collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DeliveryMode, Pushes};

    fn peer(name: &str, host: &str) -> PeerInfo {
        PeerInfo {
            name: name.into(),
            host: host.into(),
            kind: PeerKind::Channel,
            cwd: String::new(),
            git_branch: String::new(),
            pushes: Pushes::On,
            pushes_reason: String::new(),
            delivery: DeliveryMode::Live,
            waiter: false,
            pid: 1,
            connected_at: String::new(),
            last_seen: String::new(),
        }
    }

    fn presence(host: &str, epoch: &str, version: u64) -> Presence {
        Presence {
            host: host.into(),
            epoch: epoch.into(),
            kind: PresenceKind::Heartbeat,
            version,
        }
    }

    #[test]
    fn a_roster_then_changes_in_order_then_a_gap_asks_for_the_roster_again() {
        let now = Instant::now();
        let mut hosts = Hosts::default();
        assert_eq!(
            hosts.heard(&presence("b", "e1", 1), now),
            (Heard::NeedRoster, false)
        );
        hosts.roster(
            Roster {
                host: "b".into(),
                epoch: "e1".into(),
                version: 1,
                peers: vec![peer("api", "b")],
            },
            now,
        );
        assert_eq!(
            hosts.heard(&presence("b", "e1", 1), now),
            (Heard::Known, false)
        );
        let joined = PeerChange {
            host: "b".into(),
            epoch: "e1".into(),
            version: 2,
            change: Change::Joined {
                peer: peer("web", "b"),
            },
        };
        assert_eq!(hosts.change(joined, now), Heard::Known);
        assert_eq!(hosts.named("web").len(), 1);
        let skipped = PeerChange {
            host: "b".into(),
            epoch: "e1".into(),
            version: 4,
            change: Change::Left { name: "api".into() },
        };
        assert_eq!(hosts.change(skipped, now), Heard::NeedRoster);
        // Its hub restarted: a new epoch.
        assert_eq!(
            hosts.heard(&presence("b", "e2", 1), now),
            (Heard::NeedRoster, true)
        );
        assert!(
            hosts.named("web").is_empty(),
            "forgotten until the new roster"
        );
    }

    #[test]
    fn a_host_that_stops_beating_is_gone() {
        let now = Instant::now();
        let mut hosts = Hosts::default();
        hosts.heard(&presence("b", "e1", 0), now);
        assert!(
            hosts
                .expire(now + GONE_AFTER - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(hosts.expire(now + GONE_AFTER), ["b"]);
        assert!(hosts.names().is_empty());
    }
}
