//! `relay status`: whether a hub runs for the data directory, and its state.

use std::{process::ExitCode, time::Duration};

use serde_json::json;
use time::OffsetDateTime;

use crate::{
    cli::{CliError, Global, Outcome, exit, output},
    control,
    paths::DataDir,
    protocol::{FederationStatus, HubStatus},
};

pub(crate) async fn run(global: &Global) -> Outcome {
    let data = global.data()?;
    let status = control::status(&data).await?;
    let Some(status) = status else {
        // Not an error to report as one: a script reads `running`, a person reads the line.
        errln!("relay: {}", not_running(&data).message);
        if global.json {
            output::print_json(&json!({
                "running": false,
                "socket": data.socket(),
                "data_dir": data.root(),
            }));
        }
        return Ok(ExitCode::from(exit::FAILURE));
    };
    let uptime = output::elapsed_since(&status.started_at, OffsetDateTime::now_utc());
    if global.json {
        output::print_json(&json!({
            "running": true,
            "hub_pid": status.hub_pid,
            "hub_version": status.hub_version,
            "protocol": status.protocol,
            "started_at": status.started_at,
            "uptime_secs": uptime.map(|uptime| uptime.as_secs()),
            "socket": data.socket(),
            "data_dir": data.root(),
            "peers": status.peers,
            "pending_asks": status.pending_asks,
            "waiters": status.waiters,
            "federation": status.federation,
        }));
    } else {
        out!("{}", describe(&status, uptime, &data));
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

/// The error for `status` and `peers` when no hub runs: exit 1, not a relay error code, since
/// nothing failed.
pub(crate) fn not_running(data: &DataDir) -> CliError {
    CliError::failure(format!(
        "no hub is running for {} (nothing answers on {}); the first Claude Code session that uses the relay starts it",
        data.root().display(),
        data.socket().display()
    ))
}

fn describe(status: &HubStatus, uptime: Option<Duration>, data: &DataDir) -> String {
    let uptime = uptime.map_or_else(|| "unknown".to_owned(), output::human_duration);
    let mut rows = vec![
        ("hub", format!("running, pid {}", status.hub_pid)),
        ("version", status.hub_version.clone()),
        ("protocol", status.protocol.to_string()),
        ("uptime", format!("{uptime} (since {})", status.started_at)),
        ("socket", data.socket().display().to_string()),
        ("data dir", data.root().display().to_string()),
        ("peers", status.peers.to_string()),
        ("pending asks", status.pending_asks.to_string()),
        ("waiters armed", status.waiters.to_string()),
    ];
    if let Some(federation) = &status.federation {
        rows.push(("federation", federation_line(federation)));
    }
    rows.iter()
        .map(|(key, value)| format!("{key:<14} {value}\n"))
        .collect()
}

/// The federation in one line: the host, the server, connected or not, and the hosts seen; or
/// why the hub is not in it.
pub(crate) fn federation_line(federation: &FederationStatus) -> String {
    if let Some(error) = &federation.error {
        return format!("refused: {}", output::printable(error, false));
    }
    let state = match (&federation.connected, &federation.last_error) {
        (true, _) => "connected".to_owned(),
        (false, None) => "not connected (retrying)".to_owned(),
        (false, Some(error)) => format!(
            "not connected (retrying; last: {})",
            output::printable(error, false)
        ),
    };
    let hosts = if federation.hosts.is_empty() {
        "no other host seen".to_owned()
    } else {
        format!("other hosts: {}", federation.hosts.join(", "))
    };
    format!(
        "host {} on {} (subjects {}.*), {state}; {hosts}",
        federation.host, federation.url, federation.prefix
    )
}
