//! `relay-channel`: the MCP stdio server Claude Code starts once per session.
//! `relay-channel hook` is the plugin's prompt hook (see `channel::hook`); `relay-channel
//! --version` prints `relay-channel VERSION` (for `relay doctor` and people).

use std::process::ExitCode;

use claude_relay::{
    channel::{self, ChannelConfig, hook},
    protocol::VERSION,
};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("hook") => return hook::run(),
        Some("--version") => {
            println!("relay-channel {VERSION}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!(
                "relay-channel: unknown argument {other:?}; usage: relay-channel [hook | --version]"
            );
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
    let code = runtime.block_on(channel::run(config));
    // The stdin reader may still sit in a blocking read; do not wait for it.
    runtime.shutdown_background();
    code
}
