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

pub mod ask;
pub mod channel;
pub mod cli;
pub mod client;
pub mod control;
pub mod errors;
pub mod framing;
pub mod hub;
pub mod logging;
pub mod paths;
pub mod protocol;
pub mod signals;
