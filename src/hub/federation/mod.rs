//! Federation: hubs on several hosts, joined through a NATS server, so that a session on one
//! host asks a session on another as it asks one beside it (`name@host`).
//!
//! Opt-in ([`config`]): without `RELAY_NATS_URL` (or a settings file) nothing here runs. With
//! it, the hub's one [`Federation`] connects to the server (and keeps reconnecting), announces
//! its host, beats every second, tells the others of its sessions joining, leaving and being
//! renamed, and answers their requests; it learns theirs in [`roster::Hosts`]. What travels and
//! where is in [`wire`]. The hub's operations that reach other hosts (an ask, a reply, a
//! broadcast's share) wait for the other hub's answer and are answered to their client when it
//! comes (`super::handlers`); the other hub's side is in `super::remote`.

pub(crate) mod config;
mod link;
pub(crate) mod roster;
pub(crate) mod wire;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::{
    client::lock,
    errors::RelayError,
    hub::{
        federation::wire::{PresenceKind, Subjects},
        handle::Hub,
        texts,
    },
    paths::DataDir,
    protocol::FederationStatus,
};

/// Joins `hub` to the federation its environment or data directory configures, if any. A
/// configuration that is refused (credentials others can read, say) is logged and shown by
/// `relay status`; the hub serves its own host either way.
pub(crate) async fn join(hub: &Hub, data: &DataDir) {
    let why = match config::from_env(data) {
        Ok(None) => return,
        Ok(Some(config)) => match link::start(config, hub.clone()).await {
            Ok(()) => return,
            Err(why) => why,
        },
        Err(why) => why,
    };
    tracing::error!(error = %why, "federation_refused");
    hub.cannot_federate(why);
}

/// How long a hub that stops may take to say bye.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Says bye to the other hubs, when `hub` is federated and connected, so that they forget this
/// host at once (and fail the asks pending on its sessions) rather than after its silence.
pub(crate) async fn leave(hub: &Hub) {
    let Some(federation) = hub.federation().filter(|f| f.is_connected()) else {
        return;
    };
    let bye = serde_json::to_vec(&hub.presence(PresenceKind::Bye)).expect("presence serializes");
    let client = &federation.inner.client;
    let said = tokio::time::timeout(LEAVE_TIMEOUT, async {
        client
            .publish(federation.subjects().presence(), bye.into())
            .await
            .is_ok()
            && client.flush().await.is_ok()
    })
    .await;
    if said != Ok(true) {
        tracing::warn!("federation_bye_not_sent");
    }
}

/// How long a request to another hub may take before it counts as unreachable.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The hub's membership of a federation: cheap to clone.
#[derive(Clone)]
pub(crate) struct Federation {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    subjects: Subjects,
    host: String,
    /// Changes with every hub start, so others notice a restart.
    epoch: String,
    url: String,
    prefix: String,
    connected: AtomicBool,
    /// What the connection last failed with, until it connects.
    last_error: Mutex<Option<String>>,
    /// The hosts whose roster is being asked for.
    fetching: Mutex<HashSet<String>>,
    /// What to publish, in order: the hub's changes, from code that holds its lock.
    outgoing: mpsc::UnboundedSender<(String, Vec<u8>)>,
}

impl Federation {
    pub(crate) fn host(&self) -> &str {
        &self.inner.host
    }

    pub(crate) fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    pub(crate) fn subjects(&self) -> &Subjects {
        &self.inner.subjects
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Publishes `message` on `subject`, after everything published before it.
    pub(crate) fn publish(&self, subject: String, message: &impl Serialize) {
        let payload = serde_json::to_vec(message).expect("federation messages serialize");
        let _ = self.inner.outgoing.send((subject, payload));
    }

    /// Asks another hub, and reads its answer. No hub listening on `subject` (its host is gone,
    /// or never was) is `Ok(None)`, at once: NATS says so without a wait.
    pub(crate) async fn request<T: serde::de::DeserializeOwned>(
        &self,
        subject: String,
        message: &impl Serialize,
        host: &str,
    ) -> Result<Option<T>, RelayError> {
        if !self.is_connected() {
            return Err(texts::host_unreachable(
                host,
                "the federation's server cannot be reached",
            ));
        }
        let payload = serde_json::to_vec(message).expect("federation messages serialize");
        let max = self.inner.client.server_info().max_payload;
        if max > 0 && payload.len() > max {
            return Err(texts::too_large_for_federation(payload.len(), max));
        }
        let request = self.inner.client.request(subject, payload.into());
        let answer = match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Err(_) => {
                return Err(texts::host_unreachable(
                    host,
                    "its hub did not answer in time",
                ));
            }
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Ok(None);
            }
            Ok(Err(e)) => return Err(texts::host_unreachable(host, &e.to_string())),
            Ok(Ok(message)) => message,
        };
        serde_json::from_slice(&answer.payload)
            .map(Some)
            .map_err(|e| {
                RelayError::bad_msg(format!("the hub of {host} answered in another shape: {e}"))
            })
    }

    /// What `relay status` shows of the federation; `hosts` are the other hosts known.
    pub(crate) fn status(&self, hosts: Vec<String>) -> FederationStatus {
        FederationStatus {
            host: self.inner.host.clone(),
            url: self.inner.url.clone(),
            prefix: self.inner.prefix.clone(),
            connected: self.is_connected(),
            hosts,
            error: None,
            last_error: self.last_error(),
        }
    }

    /// Notes that the roster of `host` is being asked for; false when it already is.
    fn fetching(&self, host: &str) -> bool {
        lock(&self.inner.fetching).insert(host.to_owned())
    }

    /// The request for the roster of `host` ended.
    fn fetched(&self, host: &str) {
        lock(&self.inner.fetching).remove(host);
    }

    fn last_error(&self) -> Option<String> {
        lock(&self.inner.last_error).clone()
    }

    /// The connection is up, or went down (`false`).
    fn connected(&self, connected: bool) {
        self.inner.connected.store(connected, Ordering::Relaxed);
        if connected {
            *self
                .inner
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The connection failed with `error`; logged when it differs from the last.
    fn failed(&self, error: String) {
        let mut last = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(error.as_str()) {
            tracing::warn!(error = %error, "federation_connection_failed");
            *last = Some(error);
        }
    }
}
