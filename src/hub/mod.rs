//! The hub: one daemon per data directory that routes asks, replies and broadcasts between peers.
//!
//! Shaped like tokio's mini-redis. Where each concern lives:
//! - [`daemon`]: turning the process into the one hub of a data directory (lock, daemonize);
//! - [`server`]: binding the socket, the accept loop, idle exit, graceful shutdown, and the one
//!   background task that runs deadlines;
//! - [`connection`]: one client's socket: framing in, its outbox's lines out;
//! - [`handlers`]: one handler per wire message, which checks it and applies it to the [`Hub`];
//! - [`handle`]: the [`Hub`] handle and the state behind its one lock;
//! - the operations on that state, by concern: [`presence`] (hello, peers, rename, leaving),
//!   [`asking`] (ask, broadcast, reply, timeouts and failures), [`delivery`] (push or inbox, and
//!   taking an inbox);
//! - the data they work on: [`registry`] (live peers and names), `crate::ask` (pending asks and
//!   their deadlines), [`inbox`] (messages kept for sessions whose pushes are off, taken and
//!   acknowledged), [`journal`] (those inboxes on disk, to survive the hub), [`outbox`] (the
//!   bounded queue of what is written to one peer);
//! - [`waiters`]: the sessions' waiters, which wake a session whose pushes are off;
//! - [`federation`]: hubs of several hosts joined through NATS (opt-in); [`remote`] is what this
//!   hub does with what the other hubs say and ask, [`afar`] its sessions' asks, broadcasts and
//!   replies that go to them;
//! - [`texts`]: every sentence the hub says to a person or a model.

mod afar;
mod asking;
mod connection;
mod daemon;
mod delivery;
mod federation;
mod handle;
mod handlers;
mod inbox;
mod journal;
mod outbox;
mod presence;
mod registry;
mod remote;
mod server;
mod texts;
mod waiters;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use daemon::{DEFAULT_IDLE_SECS, DaemonOptions, run};
