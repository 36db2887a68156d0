//! `relay doctor`: check the installation.

use clap::Args;

use crate::cli::{CliError, Global, Outcome};

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {}

pub async fn run(_args: &DoctorArgs, _global: &Global) -> Outcome {
    Err(CliError::failure("relay doctor is being built"))
}
