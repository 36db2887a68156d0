//! `relay broadcast`: ask every session and print the replies as they arrive.

use clap::Args;

use crate::cli::{CliError, Global, Outcome};

#[derive(Debug, Clone, Args)]
pub struct BroadcastArgs {}

pub async fn run(_args: &BroadcastArgs, _global: &Global) -> Outcome {
    Err(CliError::failure("relay broadcast is being built"))
}
