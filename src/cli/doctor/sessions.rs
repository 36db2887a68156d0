//! Running `claude` sessions of this user started without the channels flag. Claude Code drops
//! the relay's pushes for them, so their messages wait in the inbox until the next prompt; the
//! channel decides this from the same command line (`channel::pushes`), and so does this check.

use std::{fs, os::unix::fs::MetadataExt, path::Path};

use crate::{
    channel::pushes,
    cli::doctor::{CHANNELS_FLAG, Check},
    protocol::Pushes,
};

const SESSIONS: &str = "sessions";

/// A `claude` process without the flag.
struct Session {
    pid: u32,
    cwd: Option<String>,
}

pub(super) fn check(uid: u32) -> Check {
    if !Path::new("/proc/self/cmdline").exists() {
        return Check::warn(
            SESSIONS,
            format!(
                "cannot list processes on this system (no /proc); check by hand that each `claude` runs with {CHANNELS_FLAG}"
            ),
            None,
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
                without.push(Session { pid, cwd });
            }
            Pushes::Off | Pushes::Unknown => {}
        }
    }
    if without.is_empty() {
        return Check::pass(
            SESSIONS,
            if with_flag == 0 {
                "no claude session of yours is running".to_owned()
            } else {
                format!("{with_flag} claude session(s), all with the channels flag")
            },
        );
    }
    without.sort_by_key(|session| session.pid);
    let listed: Vec<String> = without
        .iter()
        .map(|session| match &session.cwd {
            Some(cwd) => format!("pid {} in {cwd}", session.pid),
            None => format!("pid {} (cwd unreadable)", session.pid),
        })
        .collect();
    Check::warn(
        SESSIONS,
        format!(
            "{} claude session(s) started without the channels flag get messages only at their next prompt: {}",
            without.len(),
            listed.join(", ")
        ),
        Some(format!(
            "restart them with `claude {CHANNELS_FLAG}` (for every session: alias claude='claude {CHANNELS_FLAG}')"
        )),
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
