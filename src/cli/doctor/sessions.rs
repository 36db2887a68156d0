//! Running `claude` sessions of this user, with the channels flag (pushed to) and without (woken
//! by their waiters); the channel decides this from the same command line (`channel::pushes`),
//! and so does this check. It says, and never warns: both work.

use std::{fs, os::unix::fs::MetadataExt, path::Path};

use crate::{channel::pushes, cli::doctor::Check, protocol::Pushes};

const SESSIONS: &str = "sessions";

/// A `claude` process without the flag.
struct Flagless {
    pid: u32,
    cwd: Option<String>,
}

pub(super) fn check(uid: u32) -> Check {
    if !Path::new("/proc/self/cmdline").exists() {
        return Check::pass(
            SESSIONS,
            "cannot list processes on this system (no /proc); `relay peers` shows how each connected session gets its messages",
        );
    }
    let entries = match fs::read_dir("/proc") {
        Ok(entries) => entries,
        Err(e) => {
            return Check::warn(SESSIONS, format!("cannot list /proc: {e}"), None);
        }
    };
    let mut with_flag = 0;
    let mut without = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // Another user's sessions are theirs to fix (and their command lines may be hidden).
        if !entry.metadata().is_ok_and(|meta| meta.uid() == uid) {
            continue;
        }
        let Some(args) = pushes::nul_separated(&entry.path().join("cmdline")) else {
            continue;
        };
        match pushes::detect(Some(&args)).pushes {
            Pushes::On => with_flag += 1,
            Pushes::Off if !prints(&args) && !overridden(&entry.path().join("environ")) => {
                let cwd = fs::read_link(entry.path().join("cwd"))
                    .ok()
                    .map(|cwd| cwd.display().to_string());
                without.push(Flagless { pid, cwd });
            }
            Pushes::Off | Pushes::Unknown => {}
        }
    }
    without.sort_by_key(|session| session.pid);
    let listed: Vec<String> = without
        .iter()
        .map(|session| match &session.cwd {
            Some(cwd) => format!("pid {} in {cwd}", session.pid),
            None => format!("pid {} (cwd unreadable)", session.pid),
        })
        .collect();
    Check::pass(
        SESSIONS,
        match (with_flag, without.len()) {
            (0, 0) => "no claude session of yours is running".to_owned(),
            (with, 0) => {
                format!("{with} claude session(s), all with the channels flag (pushed to)")
            }
            (with, _) => format!(
                "{} claude session(s): {with} with the channels flag (pushed to), {} without (woken by \
                 their waiters): {}",
                with + without.len(),
                without.len(),
                listed.join(", ")
            ),
        },
    )
}

/// `claude -p` shows no pushes whatever its flags, so restarting it with the flag changes nothing.
fn prints(args: &[String]) -> bool {
    args.iter().any(|arg| arg == "-p" || arg == "--print")
}

/// `RELAY_CHANNELS=on` or `off` in the session's environment decides for its channel, flag or
/// not (for launchers that hide the flag).
fn overridden(environ: &Path) -> bool {
    pushes::nul_separated(environ).is_some_and(|vars| {
        vars.iter()
            .any(|var| var == "RELAY_CHANNELS=on" || var == "RELAY_CHANNELS=off")
    })
}
