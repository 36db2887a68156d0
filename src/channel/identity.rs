//! Who this session is: its name, working directory and git branch.
//!
//! The name is, first that applies: `RELAY_SESSION_NAME`; the name the user gave the Claude Code
//! session (in `~/.claude/sessions/<claude pid>.json`, unless Claude Code derived it itself);
//! the slug of the working directory's basename; `session`.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::protocol::{MAX_NAME_LEN, validate_name};

/// The name used when nothing better is known.
pub(crate) const FALLBACK_NAME: &str = "session";

/// The part of Claude Code's per-session file that the relay reads.
#[derive(Debug, Deserialize)]
struct SessionFile {
    name: Option<String>,
    #[serde(rename = "nameSource")]
    name_source: Option<String>,
}

/// The session file Claude Code keeps for the `claude` process with pid `claude_pid`.
pub(crate) fn session_file(home: &Path, claude_pid: u32) -> PathBuf {
    home.join(".claude")
        .join("sessions")
        .join(format!("{claude_pid}.json"))
}

/// The name the user chose for the session, if the file says there is one. Names Claude Code
/// derived itself (`"nameSource": "derived"`, like `api-7f`) are not the user's choice.
pub(crate) fn chosen_name(session_file: &Path) -> Option<String> {
    let text = fs::read_to_string(session_file).ok()?;
    let file: SessionFile = serde_json::from_str(&text).ok()?;
    if file.name_source.as_deref() == Some("derived") {
        return None;
    }
    usable_name(file.name.as_deref()?)
}

/// Waits up to `grace` for `session_file` to appear, then returns the chosen name in it.
pub(crate) async fn await_chosen_name(session_file: &Path, grace: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + grace;
    while !session_file.exists() {
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    chosen_name(session_file)
}

/// `raw` as a session name: itself when valid, else its slug (cut to the length limit), else
/// nothing.
pub(crate) fn usable_name(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if validate_name(raw).is_ok() {
        return Some(raw.to_owned());
    }
    let slug = slug::slugify(raw);
    let slug = slug[..slug.len().min(MAX_NAME_LEN)]
        .trim_end_matches('-')
        .to_owned();
    (!slug.is_empty()).then_some(slug)
}

/// Picks the session's name; see the module docs for the order.
pub(crate) fn initial_name(
    env_name: Option<&str>,
    session_file: Option<&Path>,
    cwd: &Path,
) -> String {
    env_name
        .and_then(usable_name)
        .or_else(|| session_file.and_then(chosen_name))
        .or_else(|| {
            cwd.file_name()
                .and_then(|base| usable_name(&base.to_string_lossy()))
        })
        .unwrap_or_else(|| FALLBACK_NAME.to_owned())
}

/// The git branch checked out in `cwd` (or the short commit when detached); empty outside a
/// repository. Reads `.git/HEAD` directly: starting `git` would cost more than the whole channel
/// start.
pub(crate) fn git_branch(cwd: &Path) -> String {
    let Some(git_dir) = cwd.ancestors().find_map(git_dir_of) else {
        return String::new();
    };
    let Ok(head) = fs::read_to_string(git_dir.join("HEAD")) else {
        return String::new();
    };
    let head = head.trim();
    match head.strip_prefix("ref: ") {
        Some(reference) => reference
            .strip_prefix("refs/heads/")
            .unwrap_or(reference)
            .to_owned(),
        None => head.chars().take(7).collect(),
    }
}

/// The git directory of a work tree at `dir`: `.git` itself, or where a `.git` file (a linked
/// worktree or submodule) points.
fn git_dir_of(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let pointer = fs::read_to_string(&dot_git).ok()?;
    let target = pointer.trim().strip_prefix("gitdir:")?.trim();
    Some(dir.join(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_name_comes_first_then_chosen_name_then_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("123.json");
        let cwd = Path::new("/home/u/Code/My Project (old)");
        fs::write(&file, r#"{"pid":123,"name":"backend-api"}"#).unwrap();
        assert_eq!(initial_name(Some("from-env"), Some(&file), cwd), "from-env");
        assert_eq!(initial_name(None, Some(&file), cwd), "backend-api");
        assert_eq!(initial_name(None, None, cwd), "my-project-old");
        assert_eq!(initial_name(None, None, Path::new("/")), FALLBACK_NAME);
        assert_eq!(
            initial_name(Some("  "), None, Path::new("/")),
            FALLBACK_NAME
        );
    }

    #[test]
    fn derived_names_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("1.json");
        fs::write(&file, r#"{"name":"api-7f","nameSource":"derived"}"#).unwrap();
        assert_eq!(chosen_name(&file), None);
        fs::write(&file, r#"{"name":"My Feature"}"#).unwrap();
        assert_eq!(chosen_name(&file).as_deref(), Some("my-feature"));
        fs::write(&file, "not json").unwrap();
        assert_eq!(chosen_name(&file), None);
    }

    #[test]
    fn unusable_names_are_slugged_or_dropped() {
        assert_eq!(usable_name("Café Ñandú").as_deref(), Some("cafe-nandu"));
        assert_eq!(usable_name("!!! ???"), None);
        assert_eq!(usable_name(&"é".repeat(100)).unwrap().len(), MAX_NAME_LEN);
    }

    #[test]
    fn reads_the_branch_from_head() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("src/deep")).unwrap();
        fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/x\n").unwrap();
        assert_eq!(git_branch(&repo.join("src/deep")), "feature/x");
        fs::write(repo.join(".git/HEAD"), "0123456789abcdef\n").unwrap();
        assert_eq!(git_branch(&repo), "0123456");
        let worktree = dir.path().join("wt");
        fs::create_dir_all(dir.path().join("gitdirs/wt")).unwrap();
        fs::create_dir_all(&worktree).unwrap();
        fs::write(worktree.join(".git"), "gitdir: ../gitdirs/wt\n").unwrap();
        fs::write(
            dir.path().join("gitdirs/wt/HEAD"),
            "ref: refs/heads/wt-branch\n",
        )
        .unwrap();
        assert_eq!(git_branch(&worktree), "wt-branch");
        assert_eq!(git_branch(Path::new("/")), "");
    }
}
