//! Real `claude` CLI sessions, offline.
//!
//! - [`mock_api`]: a scripted fake of the Anthropic Messages API that records every request, so
//!   tests can see exactly what each session's model saw.
//! - [`harness`]: starts `claude -p` sessions ([`ClaudeSession`]) with the repo as a plugin, a
//!   seeded HOME, and cleanup of every process they (and the hub) started.

pub mod harness;
pub mod mock_api;

pub use harness::{ClaudeSession, Harness};
pub use mock_api::MockApi;
