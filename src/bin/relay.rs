//! `relay`: the command line for people and scripts. See `claude_relay::cli`.

use std::process::ExitCode;

use clap::Parser;
use claude_relay::cli::{self, Cli};

fn main() -> ExitCode {
    cli::main(Cli::parse())
}
