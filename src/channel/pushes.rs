//! Will Claude Code show this channel's pushes?
//!
//! Claude Code drops `notifications/claude/channel` pushes silently unless the session was started
//! with `--channels` or `--dangerously-load-development-channels` naming this plugin
//! (`plugin:relay@<marketplace>`) or this server (`server:relay`), and the MCP handshake looks the
//! same either way. What the channel can read is its parent's command line: the parent is the
//! `claude` process. The answer is a heuristic, so it is three-valued, and `RELAY_CHANNELS`
//! (`on` or `off`) overrides it for launchers that hide the flag.

use std::path::Path;

use crate::protocol::Pushes;

/// The flags that turn channels on.
const CHANNEL_FLAGS: [&str; 2] = ["--channels", "--dangerously-load-development-channels"];

/// A `/proc` file of NUL-terminated strings (`cmdline`, `environ`); `None` if unreadable.
pub fn nul_separated(path: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(path).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|item| !item.is_empty())
            .map(|item| String::from_utf8_lossy(item).into_owned())
            .collect(),
    )
}

/// Works out [`Pushes`] from the parent's command line (`None` when it cannot be read).
pub fn detect(parent_args: Option<&[String]>) -> Pushes {
    let Some(args) = parent_args.filter(|args| !args.is_empty()) else {
        return Pushes::Unknown;
    };
    if channel_values(args).any(|value| names_this_channel(&value)) {
        return Pushes::On;
    }
    if is_claude(&args[0]) {
        Pushes::Off
    } else {
        Pushes::Unknown
    }
}

/// `RELAY_CHANNELS` if it is set to `on` or `off`, else the detected state.
pub fn from_env() -> (Pushes, &'static str) {
    match std::env::var("RELAY_CHANNELS").as_deref() {
        Ok("on") => (Pushes::On, "RELAY_CHANNELS"),
        Ok("off") => (Pushes::Off, "RELAY_CHANNELS"),
        _ => (detect(parent_args().as_deref()), "parent command line"),
    }
}

/// The parent process's arguments: `/proc/<ppid>/cmdline` on Linux, else `ps -o args=` (macOS),
/// whose words are enough here since the flags and their values hold no spaces.
fn parent_args() -> Option<Vec<String>> {
    let ppid = std::os::unix::process::parent_id();
    if let Some(args) = nul_separated(Path::new(&format!("/proc/{ppid}/cmdline"))) {
        return Some(args);
    }
    let output = std::process::Command::new("ps")
        .args(["-o", "args=", "-p", &ppid.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let line = String::from_utf8_lossy(&output.stdout);
    Some(line.split_whitespace().map(str::to_owned).collect())
}

/// Every value given to a channels flag: `--flag a b`, `--flag=a,b` and mixes of them.
fn channel_values(args: &[String]) -> impl Iterator<Item = String> + '_ {
    let mut values = Vec::new();
    let mut in_flag = false;
    for arg in args {
        if let Some((flag, value)) = arg.split_once('=')
            && CHANNEL_FLAGS.contains(&flag)
        {
            values.extend(value.split(',').map(str::to_owned));
            in_flag = false;
        } else if CHANNEL_FLAGS.contains(&arg.as_str()) {
            in_flag = true;
        } else if in_flag && !arg.starts_with('-') {
            values.extend(arg.split(',').map(str::to_owned));
        } else {
            in_flag = false;
        }
    }
    values.into_iter()
}

fn names_this_channel(value: &str) -> bool {
    let value = value.trim();
    value == "server:relay" || value == "plugin:relay" || value.starts_with("plugin:relay@")
}

fn is_claude(program: &str) -> bool {
    std::path::Path::new(program)
        .file_name()
        .is_some_and(|name| name == "claude")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_in(line: &str) -> Pushes {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        detect(Some(&args))
    }

    #[test]
    fn the_flag_naming_this_plugin_turns_pushes_on() {
        for line in [
            "claude --dangerously-load-development-channels plugin:relay@claude-relay",
            "/usr/local/bin/claude --channels plugin:relay@inline -p",
            "claude --channels=plugin:other@x,plugin:relay@claude-relay",
            "claude --channels plugin:other@x plugin:relay@y --verbose",
            "claude --channels server:relay",
            "node /opt/cli.js --channels plugin:relay@claude-relay",
        ] {
            assert_eq!(detect_in(line), Pushes::On, "{line}");
        }
    }

    #[test]
    fn claude_without_the_flag_for_this_plugin_is_off() {
        for line in [
            "claude",
            "/home/u/.local/bin/claude --resume",
            "claude --channels plugin:relayx@y",
            "claude --channels plugin:other@x --verbose plugin:relay@y",
            "claude plugin:relay@claude-relay",
        ] {
            assert_eq!(detect_in(line), Pushes::Off, "{line}");
        }
    }

    #[test]
    fn another_parent_is_unknown() {
        assert_eq!(detect_in("/bin/sh -c relay-channel"), Pushes::Unknown);
        assert_eq!(detect(None), Pushes::Unknown);
        assert_eq!(detect(Some(&[])), Pushes::Unknown);
    }
}
