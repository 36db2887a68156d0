//! Finding other programs on the PATH and asking them their version, within a time limit: a
//! doctor that hangs on a broken `claude` would be worse than none.

use std::{
    ffi::OsStr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::process::Command;

/// The longest any program the doctor runs may take.
pub(super) const RUN_LIMIT: Duration = Duration::from_secs(5);

/// The first executable file called `name` in the directories of `path` (a PATH value).
pub(super) fn find_in_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file that someone may execute.
pub(super) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// What `program --version` printed: the first line of its stdout, or why there is none.
pub(super) async fn version_line(program: &Path) -> Result<String, String> {
    let output = run(program, &["--version"]).await?;
    if !output.status.success() {
        let stderr = output.stderr.lines().next().unwrap_or("").trim().to_owned();
        return Err(format!(
            "`{} --version` exited with {}{}",
            program.display(),
            output.status,
            if stderr.is_empty() {
                String::new()
            } else {
                format!(": {stderr}")
            }
        ));
    }
    output
        .stdout
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("`{} --version` printed nothing", program.display()))
}

/// The version a relay binary reports: the last word of `NAME VERSION`.
pub(super) async fn relay_version(program: &Path) -> Result<String, String> {
    let line = version_line(program).await?;
    line.split_whitespace()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{} --version` printed nothing", program.display()))
}

/// What a finished program printed.
pub(super) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program ARGS` with stdin closed and waits at most [`RUN_LIMIT`] for it to exit and
/// for its output to end (a grandchild holding a pipe open must not keep us waiting past the
/// limit); past that, kills it and says so.
pub(super) async fn run(program: &Path, args: &[&str]) -> Result<Output, String> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropped at the limit, it is killed (and reaped by tokio in the background).
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    // Both pipes are read while waiting: a child that fills one must not block.
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "`{} {}` did not answer within {} s",
                program.display(),
                args.join(" "),
                RUN_LIMIT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot wait for {}: {e}", program.display()))?;
    Ok(Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_program_that_does_not_end_is_killed_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let started = Instant::now();
        let error = run(Path::new("/bin/sh"), &["-c", &script])
            .await
            .err()
            .expect("sleep 30 outlives the limit");
        assert!(error.contains("did not answer within 5 s"), "{error}");
        assert!(started.elapsed() < RUN_LIMIT + Duration::from_secs(2));
        // Killed: gone, or a zombie until tokio reaps it, once the signal has landed.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let dead = || std::fs::read_to_string(&stat).map_or(true, |stat| stat.contains(") Z "));
        let deadline = Instant::now() + Duration::from_secs(2);
        while !dead() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(dead(), "{:?}", std::fs::read_to_string(&stat));
    }

    #[tokio::test]
    async fn output_and_status_are_collected() {
        let output = run(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
        )
        .await
        .expect("sh runs");
        assert_eq!(output.stdout, "out\n");
        assert_eq!(output.stderr, "err\n");
        assert_eq!(output.status.code(), Some(3));
    }
}
