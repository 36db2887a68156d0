//! `relay doctor`: checks the installation and says what to fix.
//!
//! Each check is one line: passed, a warning (works, but not as well as it could) or a failure
//! (something does not work), with the fix for the last two. The exit status is
//! [`exit::FAILURE`] when any check failed, so a script can gate on it; warnings alone exit 0.
//! Every check is bounded in time: programs run with [`programs::RUN_LIMIT`], the hub is asked
//! with the client's own request timeout.

mod binaries;
mod claude;
mod files;
mod hub;
mod programs;
mod report;
mod sessions;

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::cli::{CliError, Global, Outcome, exit};

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {}

/// The plugin as Claude Code names it: plugin `relay` from the marketplace `claude-relay`.
pub(crate) const PLUGIN_ID: &str = "relay@claude-relay";

/// The flag that lets a session show the relay's pushes, as README and docs/install.md give it.
pub(crate) const CHANNELS_FLAG: &str =
    "--dangerously-load-development-channels plugin:relay@claude-relay";

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pass,
    Warn,
    Fail,
}

/// One check: its name, how it ended, what it saw, and for a warning or failure what to do.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(
        name: &'static str,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix,
        }
    }

    pub(crate) fn fail(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

pub(crate) async fn run(_args: &DoctorArgs, global: &Global) -> Outcome {
    let data = global.data()?;
    let uid = files::own_uid()
        .await
        .map_err(|e| CliError::failure(format!("cannot tell which user runs relay: {e}")))?;
    let plugin = claude::installed_plugin();
    let mut checks = binaries::check(plugin.install_path()).await;
    checks.extend(files::check(&data, uid));
    checks.extend(hub::check(&data).await);
    checks.extend(claude::check(&plugin).await);
    checks.push(sessions::check(uid));
    report::print(&checks, global.json);
    let failed = checks.iter().any(|check| check.status == Status::Fail);
    Ok(ExitCode::from(if failed {
        exit::FAILURE
    } else {
        exit::SUCCESS
    }))
}
