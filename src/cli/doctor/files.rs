//! The data directory and the hub's socket: private to this user. The directory holds the logs
//! (who asked whom, when) and the socket; the hub also refuses connections from other users, so a
//! socket open to others is a warning, a directory open to others a failure.

use std::{
    fs,
    io::{self, ErrorKind},
    os::unix::fs::{FileTypeExt, MetadataExt},
};

use crate::{cli::doctor::Check, paths::DataDir};

const DATA_DIR: &str = "data-dir";
const SOCKET: &str = "socket";

/// The effective uid of this process, without a libc binding: the kernel reports it as the peer
/// of either end of a socket pair this process makes.
pub(super) async fn own_uid() -> io::Result<u32> {
    let (one, _other) = tokio::net::UnixStream::pair()?;
    Ok(one.peer_cred()?.uid())
}

pub(super) fn check(data: &DataDir, uid: u32) -> Vec<Check> {
    vec![data_dir(data, uid), socket(data, uid)]
}

fn data_dir(data: &DataDir, uid: u32) -> Check {
    let dir = data.root();
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Check::pass(
                DATA_DIR,
                format!(
                    "{} does not exist yet; the first session creates it (mode 0700)",
                    dir.display()
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                DATA_DIR,
                format!("cannot read {}: {e}", dir.display()),
                format!(
                    "make {} readable by you, or point CLAUDE_PLUGIN_DATA at another directory",
                    dir.display()
                ),
            );
        }
    };
    if !meta.is_dir() {
        return Check::fail(
            DATA_DIR,
            format!("{} is not a directory", dir.display()),
            format!(
                "move it away (`mv {0} {0}.old`); the first session creates the directory",
                dir.display()
            ),
        );
    }
    if meta.uid() != uid {
        return Check::fail(
            DATA_DIR,
            format!(
                "{} belongs to uid {}, not to you (uid {uid})",
                dir.display(),
                meta.uid()
            ),
            format!("`sudo chown -R {uid} {}`", dir.display()),
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o700 {
        return Check::fail(
            DATA_DIR,
            format!("{} has mode {mode:04o}, not 0700", dir.display()),
            format!("chmod 700 {}", dir.display()),
        );
    }
    Check::pass(DATA_DIR, format!("{} (mode 0700, yours)", dir.display()))
}

fn socket(data: &DataDir, uid: u32) -> Check {
    let path = data.socket();
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Check::pass(
                SOCKET,
                format!("no socket at {} (no hub running)", path.display()),
            );
        }
        Err(e) => {
            return Check::fail(
                SOCKET,
                format!("cannot read {}: {e}", path.display()),
                format!("check the permissions of {}", data.root().display()),
            );
        }
    };
    if !meta.file_type().is_socket() {
        return Check::fail(
            SOCKET,
            format!("{} is not a socket", path.display()),
            format!(
                "`rm {}`; a starting hub would remove it too",
                path.display()
            ),
        );
    }
    if meta.uid() != uid {
        return Check::fail(
            SOCKET,
            format!(
                "{} belongs to uid {}, not to you (uid {uid}): another user's hub serves it",
                path.display(),
                meta.uid()
            ),
            "use a data directory of your own (unset CLAUDE_PLUGIN_DATA, or point it at one)",
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o177 != 0 {
        return Check::warn(
            SOCKET,
            format!(
                "{} has mode {mode:04o}, not 0600: other users may connect (the hub refuses them)",
                path.display()
            ),
            Some(format!(
                "chmod 600 {} (a hub creates it 0600; `relay hub restart` makes a new one)",
                path.display()
            )),
        );
    }
    Check::pass(
        SOCKET,
        format!("{} (mode {mode:04o}, yours)", path.display()),
    )
}
