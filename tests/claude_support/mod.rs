//! Support for tests that drive the real `claude` CLI offline.
//!
//! - [`mock_api`]: a scripted fake of the Anthropic Messages API that records
//!   every request, so tests can see exactly what each session's model saw.
//! - [`session`]: starts `claude -p` sessions with the repo as a plugin, a
//!   seeded HOME, and cleanup of every process they (and the hub) started.
//!
//! Not every helper is used by every test file.
#![allow(dead_code)]

pub mod mock_api;
pub mod session;
