//! `relay hub stop` and `relay hub restart`. Both are graceful: the hub closes every connection,
//! each caller's client fails its pending asks with `hub_unreachable`, and channels reconnect by
//! themselves to the next hub (starting one if need be).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::{
    cli::{CliError, Global, Outcome, exit, output},
    client::connect_or_start,
    control::{self, Stopped},
    protocol::HubStatus,
};

#[derive(Debug, Clone, Subcommand)]
pub enum HubAction {
    /// Stop the hub gracefully. Pending asks fail for their callers with `hub_unreachable`.
    Stop,
    /// Stop the hub and start a new one; sessions reconnect to it by themselves.
    Restart,
}

pub(crate) async fn run(action: HubAction, global: &Global) -> Outcome {
    let data = global.data()?;
    let stopped = control::stop(&data).await?;
    match &stopped {
        Some(Stopped {
            status: Some(old), ..
        }) => errln!(
            "relay: stopped the hub (pid {}; peers: {}, pending asks: {})",
            old.hub_pid,
            old.peers,
            old.pending_asks
        ),
        Some(Stopped { hub_pid, .. }) => errln!(
            "relay: stopped a hub of another version (pid {})",
            hub_pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
        ),
        None => errln!("relay: no hub was running for {}", data.root().display()),
    }
    let running = match action {
        // Live sessions start a new hub by themselves as soon as theirs is gone; this is what
        // runs at this moment, and a failure to tell is no failure of the stop.
        HubAction::Stop => control::status(&data).await.unwrap_or_else(|e| {
            errln!("relay: cannot tell whether a new hub runs: {e}");
            None
        }),
        HubAction::Restart => Some(start(&data).await?),
    };
    if let Some(new) = &running {
        errln!("relay: a hub runs now (pid {})", new.hub_pid);
    }
    if global.json {
        let stopped = stopped.map(|old| match old.status {
            Some(status) => json!(status),
            None => json!({ "hub_pid": old.hub_pid }),
        });
        output::print_json(&json!({ "stopped": stopped, "running": running }));
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

/// Starts a hub (or finds the one a reconnecting session already started) and returns its status.
async fn start(data: &crate::paths::DataDir) -> Result<HubStatus, CliError> {
    data.ensure().map_err(|e| {
        CliError::failure(format!(
            "cannot use the data directory {}: {e}",
            data.root().display()
        ))
    })?;
    let hub_exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find this executable: {e}")))?
        .with_file_name("relay-hub");
    drop(connect_or_start(data, &hub_exe).await?);
    control::status(data).await?.ok_or_else(|| {
        CliError::failure("the new hub stopped again at once; see the hub log (`relay logs`)")
    })
}
