//! Will Claude Code show this channel's pushes?
//!
//! Claude Code drops `notifications/claude/channel` pushes silently unless two things hold, and
//! nothing in MCP says whether they do:
//! - the session was started with `--channels` or `--dangerously-load-development-channels`
//!   naming this plugin (`plugin:relay@<marketplace>`) or this server (`server:relay`). The
//!   channel reads its parent's command line (the parent is the `claude` process); that is a
//!   heuristic, so the answer is three-valued, and `RELAY_CHANNELS` (`on` or `off`) overrides it
//!   for launchers that hide the flag;
//! - the connection was negotiated on an MCP revision that still has a path for unsolicited
//!   notifications. From `2026-07-28` (no `initialize` handshake) Claude Code registers no
//!   channel listener at all. The channel offers revisions only up to [`NEWEST_REVISION`], so
//!   this should never happen; if a client gets there anyway ([`PushState::after_handshake`]),
//!   pushes count as off, so that messages wait in the inbox instead of vanishing.
//!
//! Every answer carries its reason, which the hub shows in `relay_peers` and `relay peers`.

use std::path::Path;

use rmcp::model::ProtocolVersion;

use crate::protocol::Pushes;

/// The flags that turn channels on.
const CHANNEL_FLAGS: [&str; 2] = ["--channels", "--dangerously-load-development-channels"];

/// The newest MCP revision the channel offers: the last one with an `initialize` handshake, on
/// which Claude Code (2.1.332) still registers a server as a channel.
pub(crate) const NEWEST_REVISION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// Whether Claude Code shows this channel's pushes, and why the channel thinks so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushState {
    pub pushes: Pushes,
    /// A few words for people: the flag found, its absence, the override, or the protocol.
    pub reason: String,
}

impl PushState {
    fn new(pushes: Pushes, reason: impl Into<String>) -> PushState {
        PushState {
            pushes,
            reason: reason.into(),
        }
    }

    /// `RELAY_CHANNELS` if it is set to `on` or `off`, else what the parent's command line says.
    pub fn from_env() -> PushState {
        match std::env::var("RELAY_CHANNELS").as_deref() {
            Ok("on") => PushState::new(Pushes::On, "RELAY_CHANNELS=on"),
            Ok("off") => PushState::new(Pushes::Off, "RELAY_CHANNELS=off"),
            _ => detect(parent_args().as_deref()),
        }
    }

    /// The state once the MCP handshake is done. `negotiated` is the revision agreed on through
    /// `initialize`, or `None` for a session that opened without one (the 2026-07-28 lifecycle):
    /// on such a connection Claude Code drops every push, so they count as off.
    pub fn after_handshake(self, negotiated: Option<&ProtocolVersion>) -> PushState {
        match negotiated {
            Some(revision) if revision.has_initialize() => self,
            Some(revision) => PushState::new(
                Pushes::Off,
                format!(
                    "MCP revision {revision} was negotiated, which gives Claude Code no path for channel pushes"
                ),
            ),
            None => PushState::new(
                Pushes::Off,
                "the MCP session opened without initialize (revision 2026-07-28 or later), which gives \
                 Claude Code no path for channel pushes",
            ),
        }
    }
}

/// A `/proc` file of NUL-terminated strings (`cmdline`, `environ`); `None` if unreadable.
pub(crate) fn nul_separated(path: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(path).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|item| !item.is_empty())
            .map(|item| String::from_utf8_lossy(item).into_owned())
            .collect(),
    )
}

/// Works out the [`PushState`] from the parent's command line (`None` when it cannot be read).
pub(crate) fn detect(parent_args: Option<&[String]>) -> PushState {
    let Some(args) = parent_args.filter(|args| !args.is_empty()) else {
        return PushState::new(Pushes::Unknown, "the parent's command line cannot be read");
    };
    if let Some((flag, value)) = channel_values(args).find(|(_, value)| names_this_channel(value)) {
        return PushState::new(
            Pushes::On,
            format!("claude was started with {flag} {value}"),
        );
    }
    if is_claude(&args[0]) {
        PushState::new(
            Pushes::Off,
            "claude was started without a channels flag naming plugin:relay",
        )
    } else {
        let program = Path::new(&args[0]).file_name().map_or_else(
            || args[0].clone(),
            |name| name.to_string_lossy().into_owned(),
        );
        PushState::new(
            Pushes::Unknown,
            format!("the parent process ({program}) is not claude; set RELAY_CHANNELS to say"),
        )
    }
}

/// The parent process's arguments (see [`process_args`]).
fn parent_args() -> Option<Vec<String>> {
    process_args(std::os::unix::process::parent_id())
}

/// The arguments of process `pid`: `/proc/<pid>/cmdline` on Linux, else `ps -o args=` (macOS),
/// whose words are enough for reading flags, since the flags the relay looks for and their
/// values hold no spaces.
pub(crate) fn process_args(pid: u32) -> Option<Vec<String>> {
    if let Some(args) = nul_separated(Path::new(&format!("/proc/{pid}/cmdline"))) {
        return Some(args);
    }
    let output = std::process::Command::new("ps")
        .args(["-o", "args=", "-p", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let line = String::from_utf8_lossy(&output.stdout);
    Some(line.split_whitespace().map(str::to_owned).collect())
}

/// Every value given to a channels flag, with its flag: `--flag a b`, `--flag=a,b` and mixes
/// of them.
fn channel_values(args: &[String]) -> impl Iterator<Item = (&'static str, String)> + '_ {
    let mut values = Vec::new();
    let mut in_flag = None;
    for arg in args {
        let named = |name: &str| CHANNEL_FLAGS.iter().copied().find(|flag| *flag == name);
        if let Some((flag, value)) = arg.split_once('=')
            && let Some(flag) = named(flag)
        {
            values.extend(value.split(',').map(|value| (flag, value.to_owned())));
            in_flag = None;
        } else if let Some(flag) = named(arg) {
            in_flag = Some(flag);
        } else if let Some(flag) = in_flag.filter(|_| !arg.starts_with('-')) {
            values.extend(arg.split(',').map(|value| (flag, value.to_owned())));
        } else {
            in_flag = None;
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
        detect(Some(&args)).pushes
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
        assert_eq!(detect(None).pushes, Pushes::Unknown);
        assert_eq!(detect(Some(&[])).pushes, Pushes::Unknown);
    }

    #[test]
    fn each_answer_says_why() {
        let args = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let on = detect(Some(&args(
            "claude --channels=plugin:x@y,plugin:relay@inline",
        )));
        assert_eq!(
            on.reason,
            "claude was started with --channels plugin:relay@inline"
        );
        let off = detect(Some(&args("/usr/bin/claude --resume")));
        assert!(off.reason.contains("without a channels flag"), "{off:?}");
        let unknown = detect(Some(&args("/bin/bash -c relay-channel")));
        assert!(
            unknown.reason.contains("(bash) is not claude"),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_revision_without_initialize_turns_pushes_off() {
        let on = PushState::new(Pushes::On, "flag");
        assert_eq!(
            on.clone()
                .after_handshake(Some(&ProtocolVersion::V_2025_11_25)),
            on
        );
        let modern = on
            .clone()
            .after_handshake(Some(&ProtocolVersion::V_2026_07_28));
        assert_eq!(modern.pushes, Pushes::Off);
        assert!(modern.reason.contains("2026-07-28"), "{modern:?}");
        let inline = on.after_handshake(None);
        assert_eq!(inline.pushes, Pushes::Off);
        assert!(inline.reason.contains("without initialize"), "{inline:?}");
    }
}
