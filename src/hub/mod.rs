//! The hub: one daemon per data directory that routes asks, replies and broadcasts between peers.
//!
//! Shaped like tokio's mini-redis: [`server`] accepts connections and runs one task per
//! connection ([`connection`] owns the socket and the framing), [`handlers`] has one handler per
//! wire message, [`state::Hub`] is the shared state behind a small API, and one background task
//! expires the deadlines of pending asks. [`daemon`] turns the process into that single daemon.

pub mod connection;
pub mod daemon;
pub mod handlers;
pub mod inbox;
pub mod outbox;
pub mod registry;
pub mod server;
pub mod state;
