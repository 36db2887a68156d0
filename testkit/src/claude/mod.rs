//! Real `claude` CLI sessions, offline.
//!
//! - [`mock_api`]: a scripted fake of the Anthropic Messages API that records every request, so
//!   tests can see exactly what each session's model saw.
//! - [`harness`]: starts `claude -p` sessions ([`ClaudeSession`]) with the repo as a plugin, a
//!   seeded HOME, and cleanup of every process they (and the hub) started; and an interactive
//!   `claude` in a terminal ([`TerminalSession`]).
//! - [`tmux`]: a private tmux server with one pane, driven with `send-keys` and read with
//!   `capture-pane`, as a person would use a terminal.

pub mod harness;
pub mod mock_api;
pub mod tmux;

pub use harness::{ClaudeSession, Harness, TerminalSession};
pub use mock_api::MockApi;
