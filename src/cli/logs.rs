//! `relay logs`: read the daily JSON logs.

use clap::Args;

use crate::cli::{CliError, Global, Outcome};

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {}

pub fn run(_args: &LogsArgs, _global: &Global) -> Outcome {
    Err(CliError::failure("relay logs is being built"))
}
