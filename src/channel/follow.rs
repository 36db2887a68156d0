//! Following the user's `/rename` of the Claude Code session.
//!
//! No hook or MCP message fires on a rename: Claude Code only rewrites its session file,
//! `~/.claude/sessions/<claude pid>.json`. The channel's parent is that `claude` process, so the
//! channel polls the file's modification time and, when the chosen name in it changes, renames
//! itself on the hub. A name another session holds is refused and logged; the old name stays.
//! A file older than this session's last rename never undoes it: the newest choice wins (Claude
//! Code writes the file just after the channel starts, and a `relay_rename` may come before the
//! first poll sees it).

use std::{
    path::PathBuf,
    time::{Duration, SystemTime},
};

use crate::channel::{identity::chosen_name, link::Link};

/// How often the session file is checked: a stat per second costs nothing measurable.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// File times come from the kernel's coarse clock, which can lag the precise one by a few
/// milliseconds; a file must be older than a rename by this much to count as older.
const MTIME_SLACK: Duration = Duration::from_millis(100);

/// Polls `session_file` for the life of the channel.
pub(crate) async fn follow_renames(link: Link, session_file: PathBuf) {
    let mut last_modified = modified(&session_file);
    let mut last_name = chosen_name(&session_file);
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now_modified = modified(&session_file);
        if now_modified == last_modified {
            continue;
        }
        last_modified = now_modified;
        let name = chosen_name(&session_file);
        if name == last_name {
            continue;
        }
        last_name = name.clone();
        let Some(name) = name else { continue };
        let older_than_last_rename = matches!(
            (now_modified, link.last_rename()),
            (Some(file), Some(rename)) if file + MTIME_SLACK <= rename
        );
        if name == link.name() {
            continue;
        }
        if older_than_last_rename {
            tracing::debug!(wanted = %name, "session_file_older_than_rename");
            continue;
        }
        match link.rename(&name).await {
            Ok(_) => tracing::info!(file = %session_file.display(), "followed_session_rename"),
            Err(e) => tracing::warn!(
                wanted = %name, code = %e.code, detail = %e.message, "session_rename_not_followed"
            ),
        }
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
