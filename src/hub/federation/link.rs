//! The hub's connection to the federation's NATS server, and the one task that serves it:
//! publishing what the hub says, beating every second, and handing what other hubs say and ask
//! to the hub.

use std::{
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use async_nats::{Client, ConnectOptions, Event, Message, Subscriber};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::{
    hub::{
        federation::{
            Federation, Inner,
            config::{Auth, FederationConfig, is_host_name},
            roster::Heard,
            wire::{
                AskBatch, PartyLeft, PeerChange, Presence, PresenceKind, RemoteReply, Roster,
                Subjects,
            },
        },
        handle::Hub,
    },
    protocol::unix_ms,
};

/// How often the hub says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Connects to the server of `config` (in the background: a server that is down now is
/// retried until it is up), joins `hub` to it and starts serving the federation.
pub(crate) async fn start(config: FederationConfig, hub: Hub) -> Result<(), String> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut options = match config.credentials.as_ref().map(|c| &c.auth) {
        None | Some(Auth::None) => ConnectOptions::new(),
        Some(Auth::UserPassword(user, password)) => {
            ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Some(Auth::Token(token)) => ConnectOptions::with_token(token.clone()),
        Some(Auth::NkeySeed(seed)) => ConnectOptions::with_nkey(seed.clone()),
        Some(Auth::CredsFile(path)) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("cannot read the creds file {}: {e}", path.display()))?,
    };
    if let Some(ca) = config.credentials.as_ref().and_then(|c| c.tls_ca.clone()) {
        options = options.add_root_certificates(ca).require_tls(true);
    }
    let client = options
        .name(format!("relay-hub {}", config.host))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(2_000))
        })
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let _ = events_tx.send(event);
            }
        })
        .connect(config.url.as_str())
        .await
        .map_err(|e| format!("cannot use the NATS server {}: {e}", config.url))?;
    let subjects = Subjects::new(&config.prefix);
    let (outgoing, to_publish) = mpsc::unbounded_channel();
    let federation = Federation {
        inner: Arc::new(Inner {
            client: client.clone(),
            subjects: subjects.clone(),
            host: config.host.clone(),
            epoch: format!("{}-{}", std::process::id(), unix_ms()),
            url: config.url.clone(),
            prefix: config.prefix.clone(),
            connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
            fetching: Mutex::default(),
            outgoing,
        }),
    };
    let subscriptions = Subscriptions::subscribe(&client, &subjects, &config.host)
        .await
        .map_err(|e| format!("cannot subscribe on {}: {e}", config.url))?;
    tracing::info!(host = %config.host, prefix = %config.prefix, "federation_starting");
    hub.joined(federation.clone());
    tokio::spawn(publish_in_order(client, to_publish));
    tokio::spawn(serve(federation, hub, subscriptions, events));
    Ok(())
}

/// Publishes what the hub says, in order, in a task of its own: a publish that waits (the
/// client's queue full while the server is away) never holds up the heartbeats, the expiry of
/// silent hosts or the connection's events.
async fn publish_in_order(
    client: Client,
    mut to_publish: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    while let Some((subject, payload)) = to_publish.recv().await {
        let _ = client.publish(subject, payload.into()).await;
    }
}

/// What the hub listens to.
struct Subscriptions {
    presence: Subscriber,
    peers: Subscriber,
    roster: Subscriber,
    ask: Subscriber,
    reply: Subscriber,
    failed: Subscriber,
    withdrawn: Subscriber,
}

impl Subscriptions {
    async fn subscribe(
        client: &Client,
        subjects: &Subjects,
        host: &str,
    ) -> Result<Subscriptions, async_nats::SubscribeError> {
        Ok(Subscriptions {
            presence: client.subscribe(subjects.presence()).await?,
            peers: client.subscribe(subjects.peers()).await?,
            roster: client.subscribe(subjects.roster(host)).await?,
            ask: client.subscribe(subjects.ask(host)).await?,
            reply: client.subscribe(subjects.reply(host)).await?,
            failed: client.subscribe(subjects.failed(host)).await?,
            withdrawn: client.subscribe(subjects.withdrawn(host)).await?,
        })
    }
}

/// Reads a message's JSON; a message of another shape is logged (never its content) and
/// dropped.
fn read<T: DeserializeOwned>(message: &Message, what: &str) -> Option<T> {
    match serde_json::from_slice(&message.payload) {
        Ok(value) => Some(value),
        Err(_) => {
            tracing::warn!(
                what,
                bytes = message.payload.len(),
                "federation_message_unreadable"
            );
            None
        }
    }
}

/// Answers the request `message` with `answer`.
fn answer(federation: &Federation, message: &Message, answer: &impl serde::Serialize) {
    if let Some(reply) = &message.reply {
        federation.publish(reply.to_string(), answer);
    }
}

async fn serve(
    federation: Federation,
    hub: Hub,
    mut subscriptions: Subscriptions,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    let presence = federation.subjects().presence();
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = hub.shutdown_token().clone();
    loop {
        tokio::select! {
            // `super::leave` says bye, once the hub's connections are closed.
            () = shutdown.cancelled() => return,
            Some(event) = events.recv() => match event {
                Event::Connected => {
                    federation.connected(true);
                    tracing::info!("federation_connected");
                    federation.publish(presence.clone(), &hub.presence(PresenceKind::Hello));
                }
                Event::Disconnected => {
                    federation.connected(false);
                    tracing::warn!("federation_disconnected");
                }
                Event::ClientError(error) => federation.failed(error.to_string()),
                Event::ServerError(error) => federation.failed(error.to_string()),
                other => tracing::debug!(nats_event = %other, "federation_event"),
            },
            _ = beat.tick() => {
                if federation.is_connected() {
                    federation.publish(presence.clone(), &hub.presence(PresenceKind::Heartbeat));
                }
                hub.expire_hosts();
            }
            Some(message) = subscriptions.presence.next() => {
                if let Some(presence) = read::<Presence>(&message, "presence")
                    && is_host_name(&presence.host)
                    && presence.host != federation.host()
                    && hub.heard(&presence) == Heard::NeedRoster
                {
                    fetch_roster(&federation, &hub, &presence.host);
                }
            }
            Some(message) = subscriptions.peers.next() => {
                if let Some(change) = read::<PeerChange>(&message, "peer change")
                    && is_host_name(&change.host)
                    && change.host != federation.host()
                {
                    let host = change.host.clone();
                    if hub.changed(change) == Heard::NeedRoster {
                        fetch_roster(&federation, &hub, &host);
                    }
                }
            }
            Some(message) = subscriptions.roster.next() => {
                answer(&federation, &message, &hub.local_roster());
            }
            Some(message) = subscriptions.ask.next() => {
                if let Some(batch) = read::<AskBatch>(&message, "asks")
                    && is_host_name(&batch.from_host)
                {
                    answer(&federation, &message, &hub.asked_from_afar(batch));
                }
            }
            Some(message) = subscriptions.reply.next() => {
                if let Some(reply) = read::<RemoteReply>(&message, "reply") {
                    answer(&federation, &message, &hub.replied_from_afar(reply));
                }
            }
            Some(message) = subscriptions.failed.next() => {
                if let Some(left) = read::<PartyLeft>(&message, "target left") {
                    hub.target_left_afar(left);
                }
            }
            Some(message) = subscriptions.withdrawn.next() => {
                if let Some(left) = read::<PartyLeft>(&message, "caller left") {
                    hub.caller_left_afar(left);
                }
            }
        }
    }
}

/// Asks `host` for its whole roster, in the background, and hands it to the hub; one request
/// per host at a time.
fn fetch_roster(federation: &Federation, hub: &Hub, host: &str) {
    if !federation.fetching(host) {
        return;
    }
    let (federation, hub, host) = (federation.clone(), hub.clone(), host.to_owned());
    tokio::spawn(async move {
        let subject = federation.subjects().roster(&host);
        match federation.request::<Roster>(subject, &(), &host).await {
            Ok(Some(roster)) if roster.host == host => hub.roster(roster),
            _ => tracing::debug!(host = %host, "federation_roster_not_fetched"),
        }
        federation.fetched(&host);
    });
}
