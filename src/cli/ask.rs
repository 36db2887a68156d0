//! `relay ask`: ask one session a question and print its reply.

use clap::Args;

use crate::cli::{CliError, Global, Outcome};

#[derive(Debug, Clone, Args)]
pub struct AskArgs {}

pub async fn run(_args: &AskArgs, _global: &Global) -> Outcome {
    Err(CliError::failure("relay ask is being built"))
}
