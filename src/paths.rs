//! Where claude-relay keeps its files: one data directory per user (or per plugin install).

use std::{
    fs, io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

/// The name Claude Code gives the data directory of the plugin `relay` from the marketplace
/// `claude-relay` (under `~/.claude/plugins/data/`).
pub(crate) const PLUGIN_DATA_NAME: &str = "relay-claude-relay";

/// The data directory and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`, made absolute: the hub makes its data directory its working
    /// directory, where a relative path would name another place.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        DataDir {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// `$CLAUDE_PLUGIN_DATA` when set (Claude Code sets it for plugin servers), else
    /// `~/.claude-relay`.
    pub fn from_env() -> io::Result<Self> {
        if let Some(dir) = std::env::var_os("CLAUDE_PLUGIN_DATA").filter(|d| !d.is_empty()) {
            return Ok(DataDir::new(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "neither CLAUDE_PLUGIN_DATA nor HOME is set, so there is no data directory",
                )
            })?;
        Ok(DataDir::new(Path::new(&home).join(".claude-relay")))
    }

    /// For the command line, run from a shell where Claude Code set nothing: `$CLAUDE_PLUGIN_DATA`
    /// when set, else the installed plugin's data directory when it exists (the hub of the
    /// sessions lives there), else `~/.claude-relay` as for a channel.
    pub fn for_command_line() -> io::Result<Self> {
        if std::env::var_os("CLAUDE_PLUGIN_DATA").is_some_and(|d| !d.is_empty()) {
            return DataDir::from_env();
        }
        let config = match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                Some(home) => Path::new(&home).join(".claude"),
                None => return DataDir::from_env(),
            },
        };
        let plugin = config.join("plugins").join("data").join(PLUGIN_DATA_NAME);
        if plugin.is_dir() {
            return Ok(DataDir::new(plugin));
        }
        DataDir::from_env()
    }

    /// Creates the directory (and its logs directory) if needed, private to this user (0700).
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [self.root.clone(), self.logs()] {
            fs::create_dir_all(&dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The hub's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.root.join("hub.sock")
    }

    /// Held with an exclusive flock by the one live hub; holds its pid as text.
    pub fn lock(&self) -> PathBuf {
        self.root.join("hub.lock")
    }

    /// Where the daemonized hub's stderr goes (panics, errors before logging starts).
    pub fn hub_stderr(&self) -> PathBuf {
        self.root.join("hub.stderr")
    }

    /// The daily JSON log files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
}
