//! claude-relay lets the Claude Code sessions on one machine find each other and talk.
//!
//! ```text
//!  Claude Code session A        Claude Code session B        Claude Code session C
//!        | stdio (MCP)                | stdio (MCP)                | stdio (MCP)
//!  relay-channel "api"          relay-channel "web"          relay-channel "docs"
//!        \__________________ Unix socket, JSON lines ________________/
//!                               relay-hub (one per user)
//! ```
//!
//! Each session runs a **channel** ([`channel`]), an MCP server with the relay tools. Channels
//! connect to one **hub** ([`hub`]) per data directory, which the first channel starts. The hub
//! keeps the registry of peers and the table of pending asks ([`ask`]), routes questions and
//! replies, and fails asks that time out or whose target leaves. Replies and questions reach a
//! session as `notifications/claude/channel` pushes.
//!
//! Floors, each using only those below it: the binaries; [`hub`], [`channel`] and [`control`];
//! [`client`], [`protocol`], [`framing`], [`ask`], [`logging`]; [`errors`], [`paths`] and
//! [`signals`].

#![warn(unreachable_pub)]

mod ask;
mod channel;
mod cli;
mod client;
mod control;
mod errors;
mod framing;
mod hub;
mod logging;
mod paths;
mod protocol;
mod signals;

// What the three binaries need, and nothing else.
pub use channel::{
    ChannelConfig, DEFAULT_ASK_TIMEOUT_SECS, hook::run as run_hook, run as run_channel,
    wait::run as run_waiter,
};
pub use cli::{Cli, main as run_relay};
pub use control::{status as hub_status, stop as stop_hub};
pub use errors::RelayError;
pub use hub::{DEFAULT_IDLE_SECS, DaemonOptions, run as run_hub};
pub use paths::DataDir;
pub use protocol::{FederationStatus, HubStatus, VERSION};
