//! The binaries: `relay-hub` and `relay-channel` next to this `relay` and of its version (a
//! channel starts the hub from its own directory, and `relay` starts one from its own), and the
//! `relay-channel` the plugin's launcher would run.

use std::{
    env,
    path::{Path, PathBuf},
};

use crate::{
    cli::doctor::{Check, programs},
    protocol::VERSION,
};

const LAUNCHER: &str = "launcher";

const INSTALL_FIX: &str = "run ./install.sh in the claude-relay checkout: it installs relay, relay-hub and relay-channel side by side";

pub(super) async fn check(plugin_root: Option<&Path>) -> Vec<Check> {
    let dir = env::current_exe()
        .map_err(|e| e.to_string())
        .and_then(|exe| {
            exe.parent()
                .map(Path::to_owned)
                .ok_or_else(|| format!("{} has no directory", exe.display()))
        });
    vec![
        sibling(&dir, "relay-hub").await,
        sibling(&dir, "relay-channel").await,
        launcher(plugin_root).await,
    ]
}

async fn sibling(dir: &Result<PathBuf, String>, name: &'static str) -> Check {
    let dir = match dir {
        Ok(dir) => dir,
        Err(why) => {
            return Check::fail(
                name,
                format!("cannot tell where this relay is: {why}"),
                INSTALL_FIX,
            );
        }
    };
    let path = dir.join(name);
    if !programs::is_executable(&path) {
        return Check::fail(
            name,
            format!("no {name} next to this relay (in {})", dir.display()),
            INSTALL_FIX,
        );
    }
    match programs::relay_version(&path).await {
        Ok(version) if version == VERSION => {
            Check::pass(name, format!("{} ({version})", path.display()))
        }
        Ok(version) => Check::fail(
            name,
            format!(
                "{} is version {version}, this relay is {VERSION}",
                path.display()
            ),
            INSTALL_FIX,
        ),
        Err(why) => Check::fail(name, why, INSTALL_FIX),
    }
}

/// Where the launcher `bin/relay-channel` looks, in its order: `$RELAY_BIN_DIR`, the plugin's
/// own release build, the PATH (but not the launcher itself), cargo's bin directory.
fn launcher_candidates(plugin_root: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let var = |key| env::var_os(key).filter(|value| !value.is_empty());
    let mut candidates = Vec::new();
    if let Some(dir) = var("RELAY_BIN_DIR") {
        candidates.push((Path::new(&dir).join("relay-channel"), "$RELAY_BIN_DIR"));
    }
    if let Some(root) = plugin_root {
        candidates.push((
            root.join("target/release/relay-channel"),
            "the plugin's own release build",
        ));
    }
    let itself = plugin_root.map(|root| root.join("bin/relay-channel"));
    if let Some(found) = programs::find_in_path("relay-channel", var("PATH").as_deref())
        && Some(&found) != itself.as_ref()
    {
        candidates.push((found, "PATH"));
    }
    let cargo_home = var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        candidates.push((
            cargo_home.join("bin/relay-channel"),
            "cargo's bin directory",
        ));
    }
    candidates
}

async fn launcher(plugin_root: Option<&Path>) -> Check {
    let candidates = launcher_candidates(plugin_root);
    let Some((path, source)) = candidates
        .iter()
        .find(|(path, _)| programs::is_executable(path))
    else {
        return Check::fail(
            LAUNCHER,
            "the plugin's launcher finds no relay-channel ($RELAY_BIN_DIR, the plugin's release build, PATH, ~/.cargo/bin), so the sessions' relay server cannot start",
            format!("{INSTALL_FIX}; and put ~/.cargo/bin on the PATH Claude Code starts with"),
        );
    };
    let running = format!(
        "with this shell's environment the plugin's launcher runs {} (from {source})",
        path.display()
    );
    let fix = || {
        Some(format!(
            "{INSTALL_FIX}; or take {} out of the way, then restart the sessions",
            path.display()
        ))
    };
    match programs::relay_version(path).await {
        Ok(version) if version == VERSION => Check::pass(LAUNCHER, format!("{running}, {version}")),
        Ok(version) => Check::warn(
            LAUNCHER,
            format!("{running}, version {version}, but this relay is {VERSION}"),
            fix(),
        ),
        Err(why) => Check::warn(
            LAUNCHER,
            format!("{running}, whose version is unknown: {why}"),
            fix(),
        ),
    }
}
