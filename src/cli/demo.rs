//! `relay demo`: two sessions talking in a temp directory.

use clap::Args;

use crate::cli::{CliError, Global, Outcome};

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {}

pub async fn run(_args: &DemoArgs, _global: &Global) -> Outcome {
    Err(CliError::failure("relay demo is being built"))
}
