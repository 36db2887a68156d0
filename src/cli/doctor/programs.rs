//! Finding other programs on the PATH and asking them their version, within a time limit: a
//! doctor that hangs on a broken `claude` would be worse than none.

use std::{
    ffi::OsStr,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// The longest any program the doctor runs may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(5);

/// The first executable file called `name` in the directories of `path` (a PATH value).
pub fn find_in_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file that someone may execute.
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// What `program --version` printed: the first line of its stdout, or why there is none.
pub fn version_line(program: &Path) -> Result<String, String> {
    let output = run(program, &["--version"])?;
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
pub fn relay_version(program: &Path) -> Result<String, String> {
    let line = version_line(program)?;
    line.split_whitespace()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{} --version` printed nothing", program.display()))
}

/// What a finished program printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program ARGS` with stdin closed and waits at most [`RUN_LIMIT`] for it to exit and
/// for its output to end; past that, kills it (by its pid) and says so.
pub fn run(program: &Path, args: &[&str]) -> Result<Output, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    // Readers on their own threads: a child that fills one pipe while we wait would block, and
    // a grandchild holding a pipe open must not keep us waiting past the limit.
    let (sender, texts) = mpsc::channel();
    for (index, pipe) in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .enumerate()
    {
        let sender = sender.clone();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = sender.send((index, String::from_utf8_lossy(&bytes).into_owned()));
        });
    }
    let deadline = Instant::now() + RUN_LIMIT;
    let too_slow = || {
        format!(
            "`{} {}` did not answer within {} s",
            program.display(),
            args.join(" "),
            RUN_LIMIT.as_secs()
        )
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(too_slow());
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for {}: {e}", program.display())),
        }
    };
    let mut streams = [String::new(), String::new()];
    for _ in 0..streams.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, text) = texts.recv_timeout(left).map_err(|_| too_slow())?;
        streams[index] = text;
    }
    let [stdout, stderr] = streams;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_does_not_end_is_killed_at_the_limit() {
        let started = Instant::now();
        let error = run(Path::new("/bin/sh"), &["-c", "exec sleep 30"])
            .err()
            .expect("sleep 30 outlives the limit");
        assert!(error.contains("did not answer within 5 s"), "{error}");
        assert!(started.elapsed() < RUN_LIMIT + Duration::from_secs(2));
    }

    #[test]
    fn output_and_status_are_collected() {
        let output = run(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
        )
        .expect("sh runs");
        assert_eq!(output.stdout, "out\n");
        assert_eq!(output.stderr, "err\n");
        assert_eq!(output.status.code(), Some(3));
    }
}
