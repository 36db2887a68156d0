//! `relay-hub`: the per-user daemon that routes messages between sessions. Channels start it.
//!
//! `relay-hub` serves the data directory (`$CLAUDE_PLUGIN_DATA`, else `~/.claude-relay`) as a
//! daemon; `--foreground` keeps it attached to the terminal for debugging. `--status` prints the
//! running hub's state as `key=value` lines (exit 1 when none runs) and `--stop` stops it
//! gracefully. `--help` prints [`help`].

use std::{process::ExitCode, time::Duration};

use claude_relay::{
    DEFAULT_IDLE_SECS, DaemonOptions, DataDir, HubStatus, hub_status, run_hub, stop_hub,
};

const USAGE: &str = "usage: relay-hub [--foreground | --status | --stop | --version | --help]";

/// What `relay-hub --help` prints: what the program is, its arguments and the environment it
/// reads (the README's Configuration table, rows used by the hub).
fn help() -> String {
    format!(
        "relay-hub {version}: the claude-relay hub, the daemon that routes messages between the
Claude Code sessions of one user. The sessions' relay-channel starts it, so there is no need
to run it by hand; `relay status`, `relay hub restart` and `relay doctor` look after it.

{USAGE}

  (none)          serve the data directory as a daemon; exits at once if a hub already does
  --foreground    serve it attached to the terminal, for debugging
  --status        print the running hub's state as key=value lines; exit 1 when none runs
  --stop          stop the running hub gracefully; exit 1 when none runs
  --version       print the version
  -h, --help      print this help

Environment:
  CLAUDE_PLUGIN_DATA    the data directory: socket, lock, logs (Claude Code sets it for
                        plugins) [default: ~/.claude-relay]
  RELAY_HUB_IDLE_SECS   seconds the hub stays up after the last session leaves [default: {idle}]
  RELAY_LOG             log level: error, warn, info, debug, trace, off [default: info]
  RELAY_NATS_URL        a NATS server to federate with the hubs of other hosts [default: none,
                        or `url` in DATA/federation.json]
  RELAY_HOST            this hub's host name in the federation [default: the host name]
  RELAY_NATS_PREFIX     the federation's subject namespace [default: relay]
  RELAY_NATS_CREDENTIALS  a credentials file only this user can read (docs/federation.md)
",
        version = env!("CARGO_PKG_VERSION"),
        idle = DEFAULT_IDLE_SECS,
    )
}

enum Mode {
    Serve { foreground: bool },
    Status,
    Stop,
}

fn main() -> ExitCode {
    // The mode flag given, if any: a second one is a usage error, never silently the winner.
    let mut chosen: Option<(String, Mode)> = None;
    for arg in std::env::args().skip(1) {
        let mode = match arg.as_str() {
            "--foreground" => Mode::Serve { foreground: true },
            "--status" => Mode::Status,
            "--stop" => Mode::Stop,
            "--version" => {
                println!("relay-hub {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                print!("{}", help());
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("relay-hub: unknown argument {other:?}; {USAGE} (--help says more)");
                return ExitCode::from(2);
            }
        };
        if let Some((first, _)) = &chosen {
            eprintln!("relay-hub: {first} and {arg} cannot be given together; {USAGE}");
            return ExitCode::from(2);
        }
        chosen = Some((arg, mode));
    }
    let mode = chosen.map_or(Mode::Serve { foreground: false }, |(_, mode)| mode);
    let data = match DataDir::from_env() {
        Ok(data) => data,
        Err(e) => {
            eprintln!("relay-hub: {e}");
            return ExitCode::FAILURE;
        }
    };
    match mode {
        Mode::Serve { foreground } => run_hub(DaemonOptions {
            idle_exit: idle_exit_from_env(),
            data,
            foreground,
        }),
        Mode::Status => control_command(&data, false),
        Mode::Stop => control_command(&data, true),
    }
}

fn idle_exit_from_env() -> Duration {
    let secs = match std::env::var("RELAY_HUB_IDLE_SECS") {
        Err(_) => DEFAULT_IDLE_SECS,
        Ok(raw) => raw.trim().parse().unwrap_or_else(|_| {
            eprintln!(
                "relay-hub: RELAY_HUB_IDLE_SECS={raw:?} is not a whole number of seconds; using {DEFAULT_IDLE_SECS}"
            );
            DEFAULT_IDLE_SECS
        }),
    };
    Duration::from_secs(secs)
}

/// `--status` or `--stop`: prints the hub's state and exits 0, or exits 1 when no hub runs.
fn control_command(data: &DataDir, stop: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("relay-hub: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        if stop {
            stop_hub(data).await.map(|stopped| {
                stopped.map(|stopped| Report {
                    hub_pid: stopped.hub_pid,
                    status: stopped.status,
                    stopped: true,
                })
            })
        } else {
            hub_status(data).await.map(|status| {
                status.map(|status| Report {
                    hub_pid: Some(status.hub_pid),
                    status: Some(status),
                    stopped: false,
                })
            })
        }
    });
    match outcome {
        Ok(Some(report)) => {
            report.print();
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("relay-hub: no hub is running for {}", data.root().display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("relay-hub: {}: {}", e.code, e.message);
            ExitCode::FAILURE
        }
    }
}

/// What `--status` or `--stop` learnt of the hub. A hub of another version that was stopped may
/// have told no more than its pid.
struct Report {
    hub_pid: Option<u32>,
    status: Option<HubStatus>,
    stopped: bool,
}

impl Report {
    /// `key=value` lines; `install.sh` reads them. A key whose value is unknown is left out.
    fn print(&self) {
        if let Some(pid) = self.hub_pid {
            println!("pid={pid}");
        }
        if let Some(status) = &self.status {
            println!("version={}", status.hub_version);
            println!("protocol={}", status.protocol);
            println!("started_at={}", status.started_at);
            println!("peers={}", status.peers);
            println!("pending_asks={}", status.pending_asks);
        }
        if self.stopped {
            println!("stopped=true");
        }
    }
}
