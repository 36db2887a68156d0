//! The `claude` CLI and the relay plugin in it.
//!
//! Whether the plugin is installed is read from Claude Code's own record rather than asked of
//! `claude plugin list`, which starts the whole CLI. Seen with Claude Code 2.1.197: `claude plugin
//! install relay@claude-relay` writes `CONFIG/plugins/installed_plugins.json` as
//! `{"version": 2, "plugins": {"relay@claude-relay": [{"scope": "user", "installPath": "...",
//! "version": "0.1.0", ...}]}}`, and `claude plugin disable` sets
//! `"enabledPlugins": {"relay@claude-relay": false}` in `CONFIG/settings.json`. CONFIG is
//! `$CLAUDE_CONFIG_DIR`, else `~/.claude`.

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{
    cli::doctor::{Check, PLUGIN_ID, programs},
    protocol::VERSION,
};

const CLAUDE: &str = "claude";
const PLUGIN: &str = "plugin";

/// What to do when the plugin is missing or of another version: what `install.sh` does. Claude
/// Code copies a directory marketplace whole into its plugin cache, so `install.sh` adds a staged
/// copy of the plugin's files as the marketplace, never the checkout (whose `target/` can be
/// gigabytes); the route by hand is the same.
fn install_fix() -> String {
    let stage = marketplace_stage().display().to_string();
    format!(
        "run ./install.sh in the claude-relay checkout. By hand, as it does: copy .claude-plugin, \
         bin, commands, hooks, README.md and LICENSE from the checkout into {stage}, then `claude \
         plugin marketplace add {stage}` and `claude plugin install {PLUGIN_ID}` (a copy, not the \
         checkout: Claude Code copies a marketplace directory whole, target/ included)"
    )
}

/// Where `install.sh` stages the plugin's files:
/// `${XDG_DATA_HOME:-$HOME/.local/share}/claude-relay/marketplace`.
fn marketplace_stage() -> PathBuf {
    let from = |key| {
        std::env::var_os(key)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_DATA_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("~/.local/share"))
        .join("claude-relay/marketplace")
}

/// What Claude Code's configuration says about the relay plugin.
pub(super) enum Plugin {
    /// Neither `CLAUDE_CONFIG_DIR` nor `HOME` is set.
    NoConfigDir,
    /// No `installed_plugins.json`: no plugin was ever installed.
    NoRecord(PathBuf),
    Unreadable(PathBuf, String),
    /// Recorded plugins, none of them ours; `others` are the ids of other plugins named `relay`.
    NotInstalled {
        record: PathBuf,
        others: Vec<String>,
    },
    Installed {
        install_path: Option<PathBuf>,
        scope: Option<String>,
        version: Option<String>,
        /// `false` when `claude plugin disable` turned it off in the user's settings.
        enabled: bool,
    },
}

impl Plugin {
    /// Where Claude Code keeps its copy of the plugin (its root for the launcher).
    pub(super) fn install_path(&self) -> Option<&Path> {
        match self {
            Plugin::Installed { install_path, .. } => install_path.as_deref(),
            _ => None,
        }
    }
}

fn config_dir() -> Option<PathBuf> {
    let from = |key| std::env::var_os(key).filter(|value| !value.is_empty());
    from("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| from("HOME").map(|home| Path::new(&home).join(".claude")))
}

/// Reads Claude Code's record of installed plugins.
pub(super) fn installed_plugin() -> Plugin {
    let Some(config) = config_dir() else {
        return Plugin::NoConfigDir;
    };
    let record = config.join("plugins").join("installed_plugins.json");
    let text = match fs::read_to_string(&record) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Plugin::NoRecord(record),
        Err(e) => return Plugin::Unreadable(record, e.to_string()),
    };
    let plugins = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut top)) => match top.remove("plugins") {
            Some(Value::Object(plugins)) => plugins,
            _ => return Plugin::Unreadable(record, "it has no \"plugins\" object".into()),
        },
        Ok(_) => return Plugin::Unreadable(record, "it is not a JSON object".into()),
        Err(e) => return Plugin::Unreadable(record, e.to_string()),
    };
    // Version 2 keeps a list of installs (one per scope) per plugin; version 1 kept one object.
    let entry = match plugins.get(PLUGIN_ID) {
        Some(Value::Array(installs)) => installs
            .iter()
            .find(|install| install["scope"] == "user")
            .or_else(|| installs.first())
            .cloned(),
        Some(install @ Value::Object(_)) => Some(install.clone()),
        _ => None,
    };
    let Some(entry) = entry else {
        let others = plugins
            .keys()
            .filter(|id| id.starts_with("relay@"))
            .cloned()
            .collect();
        return Plugin::NotInstalled { record, others };
    };
    let text = |key: &str| entry[key].as_str().map(str::to_owned);
    let scope = text("scope");
    Plugin::Installed {
        install_path: text("installPath").map(PathBuf::from),
        enabled: scope.as_deref().is_none_or(|scope| scope != "user")
            || enabled_in(&config.join("settings.json")),
        scope,
        version: text("version"),
    }
}

/// Whether the user's settings leave the plugin on. Claude Code records `true` on install and
/// `false` on disable; a settings file it cannot read turns nothing off, so that counts as on.
fn enabled_in(settings: &Path) -> bool {
    fs::read_to_string(settings)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_none_or(|settings| settings["enabledPlugins"][PLUGIN_ID] != false)
}

pub(super) async fn check(plugin: &Plugin) -> Vec<Check> {
    vec![claude_cli().await, plugin_check(plugin)]
}

async fn claude_cli() -> Check {
    let program = match std::env::var_os("CLAUDE_BIN").filter(|bin| !bin.is_empty()) {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            if !programs::is_executable(&bin) {
                return Check::fail(
                    CLAUDE,
                    format!("CLAUDE_BIN={} is not an executable file", bin.display()),
                    "point CLAUDE_BIN at the claude executable, or unset it to use the one on PATH",
                );
            }
            bin
        }
        None => match programs::find_in_path("claude", std::env::var_os("PATH").as_deref()) {
            Some(found) => found,
            None => {
                return Check::fail(
                    CLAUDE,
                    "no `claude` on PATH: Claude Code is not installed, or not on this PATH",
                    "install Claude Code (`npm install -g @anthropic-ai/claude-code`, or see its setup docs) so that `claude` is on PATH, then run ./install.sh for the plugin",
                );
            }
        },
    };
    match programs::version_line(&program).await {
        Ok(line) => in_tested_range(&program, &line),
        Err(why) => Check::fail(
            CLAUDE,
            why,
            format!(
                "reinstall Claude Code: `{} --version` must answer",
                program.display()
            ),
        ),
    }
}

/// The Claude Code versions the relay's suite runs against (`.ci/claude-versions`, read by
/// `build.rs`), oldest first.
const TESTED: &str = env!("RELAY_TESTED_CLAUDE");

/// `2.1.332` of `2.1.332 (Claude Code)`, as numbers to compare.
fn version_of(line: &str) -> Option<Vec<u32>> {
    let word = line.split_whitespace().next()?;
    word.split('.').map(|part| part.parse().ok()).collect()
}

/// Passes a `claude` whose version the relay is tested with, or lies between two that are; warns
/// outside that range, where Claude Code may have changed what the relay relies on (the channel
/// contract, hooks, tool loading).
fn in_tested_range(program: &Path, line: &str) -> Check {
    let oldest = TESTED.split_whitespace().next().unwrap_or_default();
    let newest = TESTED.split_whitespace().last().unwrap_or_default();
    let seen = format!("{} ({line})", program.display());
    let Some(version) = version_of(line) else {
        return Check::warn(
            CLAUDE,
            format!(
                "{seen}: cannot read its version; the relay is tested with {oldest} to {newest}"
            ),
            None,
        );
    };
    if version_of(oldest).is_some_and(|oldest| version < oldest) {
        return Check::warn(
            CLAUDE,
            format!("{seen} is older than {oldest}, the oldest Claude Code the relay is tested with"),
            Some("upgrade Claude Code (`claude update`, or `npm install -g @anthropic-ai/claude-code`)".to_owned()),
        );
    }
    if version_of(newest).is_some_and(|newest| version > newest) {
        return Check::warn(
            CLAUDE,
            format!(
                "{seen} is newer than {newest}, the newest Claude Code the relay is tested with: if \
                 messages stop arriving, check `relay peers` (CHANNELS and why) and run claude with \
                 --debug-file"
            ),
            Some(
                "nothing to do while it works; to test this version, add it to .ci/claude-versions \
                 in the claude-relay checkout and run the suite (docs/operations.md)"
                    .to_owned(),
            ),
        );
    }
    Check::pass(CLAUDE, format!("{seen}, tested range {oldest} to {newest}"))
}

fn plugin_check(plugin: &Plugin) -> Check {
    match plugin {
        Plugin::NoConfigDir => Check::fail(
            PLUGIN,
            "neither CLAUDE_CONFIG_DIR nor HOME is set, so Claude Code's configuration cannot be found",
            "set HOME",
        ),
        Plugin::NoRecord(record) => Check::fail(
            PLUGIN,
            format!(
                "no plugin is installed in Claude Code ({} does not exist)",
                record.display()
            ),
            install_fix(),
        ),
        Plugin::Unreadable(record, why) => Check::fail(
            PLUGIN,
            format!("cannot read {}: {why}", record.display()),
            format!(
                "check that `claude plugin list` shows {PLUGIN_ID}; if not, {}",
                install_fix()
            ),
        ),
        Plugin::NotInstalled { record, others } => Check::fail(
            PLUGIN,
            format!(
                "{PLUGIN_ID} is not installed (not in {}){}",
                record.display(),
                if others.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; installed under other marketplaces: {}",
                        others.join(", ")
                    )
                }
            ),
            install_fix(),
        ),
        Plugin::Installed { enabled: false, .. } => Check::fail(
            PLUGIN,
            format!("{PLUGIN_ID} is installed but disabled"),
            format!("claude plugin enable {PLUGIN_ID}"),
        ),
        Plugin::Installed {
            install_path,
            scope,
            version,
            ..
        } => {
            let detail = format!(
                "{PLUGIN_ID} {} installed (scope {}) in {}",
                version.as_deref().unwrap_or("(version unknown)"),
                scope.as_deref().unwrap_or("unknown"),
                install_path.as_deref().map_or_else(
                    || "an unrecorded directory".into(),
                    |p| p.display().to_string()
                )
            );
            match version.as_deref() {
                // The plugin's files (launcher, hooks, commands) come from the same checkout.
                Some(version) if version != VERSION => Check::warn(
                    PLUGIN,
                    format!("{detail}, but this relay is {VERSION}"),
                    Some(format!("{}; then restart the sessions", install_fix())),
                ),
                _ => Check::pass(PLUGIN, detail),
            }
        }
    }
}
