//! `relay`, the command line: the hub's state, its peers, asks and broadcasts from a shell, the
//! daily logs, health checks and a demo.
//!
//! Each subcommand has its own module with its arguments and a `run` that returns an [`Outcome`];
//! [`main`] parses the command line, runs the subcommand and turns the outcome into the exit
//! status documented in [`exit`]. Where a subcommand takes part in messaging it joins the hub as a
//! peer of kind `cli` ([`session`]).

/// `print!` for the command line's stdout, through [`output::write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` for the command line's stdout, through [`output::write_stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` for the command line, through [`output::write_stderr`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` for the command line, through [`output::write_stderr`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stderr(format_args!($($arg)*))
    };
}

pub(crate) mod ask;
pub(crate) mod broadcast;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod exit;
pub(crate) mod hub;
pub(crate) mod logs;
pub(crate) mod output;
pub(crate) mod peer;
pub(crate) mod peers;
pub(crate) mod status;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::{
    errors::{ErrorCode, RelayError},
    paths::DataDir,
};

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "relay",
    version,
    about = "Talk to the Claude Code sessions on this machine, and look after their hub.",
    after_help = "Exit status: 0 success; 1 no hub runs (status, peers), a check failed (doctor) or \
                  another failure; 2 a bad command line; 3 a broadcast that some session did not answer; \
                  10 to 25 one per relay error code (peer_not_found 10, peer_gone 11, timeout 12, ..., \
                  hub_unreachable 18, bad_args 19; the README's table lists all); 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The data directory of the hub to use [default: $CLAUDE_PLUGIN_DATA, else the plugin's
    /// ~/.claude/plugins/data/relay-claude-relay when it exists, else ~/.claude-relay].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// The data directory: `--data-dir`, else the one the sessions' channels use.
    pub fn data(&self) -> Result<DataDir, CliError> {
        match &self.data_dir {
            Some(dir) => Ok(DataDir::new(dir)),
            None => DataDir::for_command_line().map_err(|e| CliError::failure(e.to_string())),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The running hub: pid, version, protocol, uptime, socket, peers and pending asks.
    Status,
    /// The sessions connected to the hub.
    Peers,
    /// Ask one session a question and print its reply.
    Ask(ask::AskArgs),
    /// Ask every session the same question and print the replies as they arrive.
    Broadcast(broadcast::BroadcastArgs),
    /// Read the daily JSON logs of the hub and the channels.
    Logs(logs::LogsArgs),
    /// Stop or restart the hub.
    Hub {
        #[command(subcommand)]
        action: hub::HubAction,
    },
    /// Check the installation and print what to fix.
    Doctor(doctor::DoctorArgs),
    /// Start a private hub and two sessions in a temp directory and show them talking.
    Demo(demo::DemoArgs),
}

/// How a subcommand ended, when it did not fail.
pub(crate) type Outcome = Result<ExitCode, CliError>;

/// Why a subcommand failed: a relay error code when there is one (each has its own exit code),
/// and one sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: Option<ErrorCode>,
    pub message: String,
    /// Ended by SIGINT or SIGTERM: exits with [`exit::INTERRUPTED`].
    pub interrupted: bool,
}

impl CliError {
    /// A failure without a relay error code; exits with [`exit::FAILURE`].
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            code: None,
            message: message.into(),
            interrupted: false,
        }
    }

    /// The command was interrupted before it was done; exits with [`exit::INTERRUPTED`].
    pub fn interrupted(message: impl Into<String>) -> Self {
        CliError {
            interrupted: true,
            ..CliError::failure(message)
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.code {
            _ if self.interrupted => exit::INTERRUPTED,
            Some(code) => exit::for_error(code),
            None => exit::FAILURE,
        }
    }
}

impl From<RelayError> for CliError {
    fn from(e: RelayError) -> Self {
        CliError {
            code: Some(e.code),
            message: e.message,
            interrupted: false,
        }
    }
}

/// Runs the command line and returns the process's exit status.
pub fn main(cli: Cli) -> ExitCode {
    let global = &cli.global;
    let outcome = match cli.command {
        Command::Status => block_on(status::run(global)),
        Command::Peers => block_on(peers::run(global)),
        Command::Ask(args) => block_on(ask::run(&args, global)),
        Command::Broadcast(args) => block_on(broadcast::run(&args, global)),
        Command::Hub { action } => block_on(hub::run(action, global)),
        Command::Doctor(args) => block_on(doctor::run(&args, global)),
        Command::Demo(args) => block_on(demo::run(&args, global)),
        Command::Logs(args) => block_on(logs::run(&args, global)),
    };
    match outcome {
        Ok(_) if output::stdout_failed() => ExitCode::from(exit::FAILURE),
        Ok(code) => code,
        Err(e) => {
            output::report_error(&e, global.json);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one subcommand on a current-thread runtime of its own.
fn block_on(command: impl Future<Output = Outcome>) -> Outcome {
    let runtime = current_thread_runtime()?;
    let outcome = runtime.block_on(command);
    // Nothing the command left on the runtime (a blocking task, a child's reaper) may delay the exit.
    runtime.shutdown_background();
    outcome
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}
