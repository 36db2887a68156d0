//! `relay-channel`: the MCP stdio server Claude Code starts once per session.
//! `relay-channel hook` is the plugin's prompt hook (see `channel::hook`); `relay-channel
//! --version` prints `relay-channel VERSION` (for `relay doctor` and people); `--help` prints
//! [`help`].

use std::process::ExitCode;

use claude_relay::{
    ChannelConfig, DEFAULT_ASK_TIMEOUT_SECS, VERSION, run_channel, run_hook, run_waiter,
};

const USAGE: &str = "usage: relay-channel [hook | wait | --version | --help]";

/// What `relay-channel --help` prints: what the program is, its arguments and the environment it
/// reads (the README's Configuration table, rows used by the channel).
fn help() -> String {
    format!(
        "relay-channel {VERSION}: the claude-relay MCP server. Claude Code starts it once per
session (through the plugin's bin/relay-channel launcher) and talks MCP with it on stdin and
stdout; there is no need to run it by hand. `relay demo` shows two of them at work.

{USAGE}

  (none)          serve MCP on stdin and stdout: the relay_* tools, and pushes of the messages
                  from other sessions; starts relay-hub (from this binary's directory) when no
                  hub runs
  hook            the plugin's prompt hook: reads Claude Code's hook input on stdin and prints
                  the messages waiting for that session (its pushes are off); always exits 0
  wait            the session's waiter, the plugin's asyncRewake hook: waits for a message for
                  that session, prints it on stderr and exits 2, which wakes the idle session;
                  exits 0 when not needed (pushes on, session gone, after 12 hours)
  --version       print the version
  -h, --help      print this help

Environment:
  CLAUDE_PLUGIN_DATA      the data directory: socket, lock, logs (Claude Code sets it for
                          plugins) [default: ~/.claude-relay]
  RELAY_SESSION_NAME      this session's name [default: the Claude Code session's name, else
                          the working directory's]
  RELAY_ASK_TIMEOUT_SECS  default timeout_secs of asks and broadcasts, 1 to 3600 [default: {timeout}]
  RELAY_CHANNELS          on or off: whether this session's Claude Code shows pushes, when its
                          command line cannot tell [default: read from that command line]
  RELAY_WAKE              off: the waiter never wakes this session; its messages wait for its
                          next prompt [default: on]
  RELAY_LOG               log level: error, warn, info, debug, trace, off [default: info]
",
        timeout = DEFAULT_ASK_TIMEOUT_SECS,
    )
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("hook") => return run_hook(),
        Some("wait") => return run_waiter(),
        Some("--version") => {
            println!("relay-channel {VERSION}");
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("relay-channel: unknown argument {other:?}; {USAGE} (--help says more)");
            return ExitCode::from(2);
        }
    }
    let config = match ChannelConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("relay-channel: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("relay-channel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run_channel(config));
    // The stdin reader may still sit in a blocking read; do not wait for it.
    runtime.shutdown_background();
    code
}
