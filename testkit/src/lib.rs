//! What claude-relay's binary-level tests (`tests/`) and its benches (`benches/`) share: one
//! way to set up a temporary world, start the real binaries in it, talk to them and clean up.
//!
//! - [`world`]: a temporary data directory, HOME and working directories, the environment of
//!   every process started there, the hub that serves it (found by its lock file, killed by pid
//!   when the world drops) and its log lines.
//! - [`process`]: guards that kill a child by its pid when dropped, bounded waits, signals, and
//!   writing executables without ETXTBSY.
//! - [`mcp`]: the MCP client of a `relay-channel` over its stdio; a reader thread timestamps each
//!   line as it is read, which the bench's latencies rely on.
//! - [`wire`]: a raw connection to the hub, speaking its wire protocol by hand.
//! - [`cli`]: running the `relay` command line to its end, or line by line.
//! - [`nats`]: a real `nats-server` on a free loopback port, for federated hubs.
//! - [`claude`]: real `claude -p` sessions, offline, against a scripted mock of the Messages API.
//!
//! The kit does not depend on claude-relay: the tests must drive the real binaries, and a
//! dev-dependency that depends back on the package would be a cycle. Whatever needs a binary
//! takes its path from [`Bins`], which a test or bench fills in with [`bins!`].
//!
//! Every process started through the kit is stopped by its pid, never by its name, and every
//! wait is bounded, so a broken build fails a test instead of hanging it.

use std::{path::Path, time::Duration};

pub mod claude;
pub mod cli;
pub mod mcp;
pub mod nats;
pub mod process;
pub mod wire;
pub mod world;

pub use cli::{RelayRun, RelayStream};
pub use mcp::{Channel, ToolOutcome};
pub use nats::NatsServer;
pub use process::{
    KillOnDrop, copy_executable, kill, lines_of, poll_until, process_gone, reset_peak_rss,
    run_with_input, status_kib, wait_for, write_executable,
};
pub use wire::RawPeer;
pub use world::World;

/// How long a test waits for anything that should happen at once.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// The longest a `relay` command line run may take in a test.
pub const RELAY_RUN_LIMIT: Duration = Duration::from_secs(60);

/// Where cargo built claude-relay's three binaries.
#[derive(Debug, Clone, Copy)]
pub struct Bins {
    /// `relay-channel`, the MCP server Claude Code starts.
    pub channel: &'static str,
    /// `relay-hub`, the daemon a channel starts.
    pub hub: &'static str,
    /// `relay`, the command line.
    pub relay: &'static str,
}

impl Bins {
    /// The directory of the binaries (the plugin launcher's `RELAY_BIN_DIR`).
    pub fn dir(&self) -> &'static Path {
        Path::new(self.channel)
            .parent()
            .expect("a binary lives in a directory")
    }
}

/// The [`Bins`] of the package whose test or bench expands it: cargo gives a test target the
/// paths of its package's binaries as `CARGO_BIN_EXE_<name>` at compile time, and this macro
/// reads them where it is expanded, so the kit needs no dependency on claude-relay.
#[macro_export]
macro_rules! bins {
    () => {
        $crate::Bins {
            channel: env!("CARGO_BIN_EXE_relay-channel"),
            hub: env!("CARGO_BIN_EXE_relay-hub"),
            relay: env!("CARGO_BIN_EXE_relay"),
        }
    };
}

/// Skips `test`, which lacks `what` (`why`), with one line on stderr; under `CI=true` fails it
/// instead, since a skipped suite is how a change that breaks it could land unseen.
pub fn skip_unless_ci(test: &str, what: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test}: {what} is required under CI: {why}");
    }
    // Straight to the stderr fd: libtest captures `println!`/`eprintln!` of passing tests, and
    // a silent skip looks like a pass.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("skipped {test}: {why}\n").as_bytes(),
    );
}
