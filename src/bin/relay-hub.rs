//! `relay-hub`: the per-user daemon that routes messages between sessions. Channels start it;
//! `--foreground` keeps it attached to the terminal for debugging.

use std::{process::ExitCode, time::Duration};

use claude_relay::{
    hub::daemon::{self, DEFAULT_IDLE_SECS, DaemonOptions},
    paths::DataDir,
};

fn main() -> ExitCode {
    let mut foreground = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--foreground" => foreground = true,
            "--version" => {
                println!("relay-hub {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!(
                    "relay-hub: unknown argument {other:?}; usage: relay-hub [--foreground] [--version]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let data = match DataDir::from_env() {
        Ok(data) => data,
        Err(e) => {
            eprintln!("relay-hub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let idle_secs = match std::env::var("RELAY_HUB_IDLE_SECS") {
        Err(_) => DEFAULT_IDLE_SECS,
        Ok(raw) => raw.trim().parse().unwrap_or_else(|_| {
            eprintln!("relay-hub: RELAY_HUB_IDLE_SECS={raw:?} is not a whole number of seconds; using {DEFAULT_IDLE_SECS}");
            DEFAULT_IDLE_SECS
        }),
    };
    daemon::run(DaemonOptions {
        data,
        idle_exit: Duration::from_secs(idle_secs),
        foreground,
    })
}
