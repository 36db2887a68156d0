//! `relay`: the command line for people and scripts. See `claude_relay::Cli`.

use std::process::ExitCode;

use clap::Parser;
use claude_relay::{Cli, run_relay};

fn main() -> ExitCode {
    run_relay(Cli::parse())
}
