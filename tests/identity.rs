//! How a channel names itself, follows the user's `/rename`, and reports its git branch.

use std::{fs, path::PathBuf};

use serde_json::json;
use testkit::{RawPeer, World, bins, wait_for};

/// Claude Code's session file for the channel's parent: this test process.
fn session_file(relay: &World) -> PathBuf {
    let dir = relay.home.join(".claude").join("sessions");
    fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.json", std::process::id()))
}

/// The name a lone unnamed channel registers under, given its session file's content.
fn name_with_session_file(content: Option<&str>, env_name: &str) -> String {
    let mut relay = World::new(bins!());
    if let Some(content) = content {
        fs::write(session_file(&relay), content).unwrap();
    }
    let mut channel = relay.spawn_channel(env_name, &[]);
    channel.initialize();
    let registered = relay.registered(&mut channel);
    registered["me"].as_str().unwrap().to_owned()
}

#[test]
fn the_name_falls_back_from_env_to_session_file_to_directory() {
    // No env name, no session file: the slug of the working directory's basename.
    assert_eq!(name_with_session_file(None, ""), "unnamed");
    // A derived name in the session file is not the user's choice.
    let derived = r#"{"pid": 1, "name": "unnamed-7f", "nameSource": "derived"}"#;
    assert_eq!(name_with_session_file(Some(derived), ""), "unnamed");
    // A chosen name wins over the directory; RELAY_SESSION_NAME wins over both.
    let chosen = r#"{"pid": 1, "name": "Backend API"}"#;
    assert_eq!(name_with_session_file(Some(chosen), ""), "backend-api");
    assert_eq!(name_with_session_file(Some(chosen), "pinned"), "pinned");
}

/// Only one channel may be a child of this test here: every child of one parent follows the
/// same session file. The other side is a raw hub connection.
#[test]
fn a_rename_in_the_session_file_is_followed() {
    let mut relay = World::new(bins!());
    relay.start_hub();
    let mut watcher = RawPeer::connect(&relay);
    watcher.hello("watcher");
    let names = |watcher: &mut RawPeer| -> Vec<String> {
        let answer = watcher.request(json!({"op": "peers"}));
        answer["result"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let file = session_file(&relay);
    fs::write(
        &file,
        r#"{"pid": 1, "name": "api-3c", "nameSource": "derived"}"#,
    )
    .unwrap();
    let mut api = relay.spawn_channel("", &[]);
    api.initialize();
    assert_eq!(relay.registered(&mut api)["me"], "unnamed");

    // The user types `/rename backend-api`: Claude Code rewrites the file.
    fs::write(&file, r#"{"pid": 1, "name": "backend-api"}"#).unwrap();
    wait_for("the rename to reach the hub", || {
        names(&mut watcher) == ["backend-api"]
    });
    assert_eq!(api.ok("relay_peers", json!({}))["me"], "backend-api");

    // A rename to a name another session holds is refused, logged, and the old name stays.
    fs::write(&file, r#"{"pid": 1, "name": "watcher"}"#).unwrap();
    wait_for("the refused rename to be logged", || {
        relay.logged("session_rename_not_followed", |l| l["wanted"] == "watcher")
    });
    assert_eq!(api.ok("relay_peers", json!({}))["me"], "backend-api");
    assert_eq!(names(&mut watcher), ["backend-api"]);
}

/// Claude Code writes the session file just after the channel starts; a relay_rename that
/// comes before the follower first sees the file must not be undone by it.
#[test]
fn a_rename_is_not_undone_by_an_older_session_file() {
    let mut relay = World::new(bins!());
    let mut api = relay.spawn_channel("", &[]);
    api.initialize();
    relay.registered(&mut api);
    // Written when the session started, a while before the rename below.
    let file = session_file(&relay);
    fs::write(&file, r#"{"pid": 1, "name": "from-file"}"#).unwrap();
    let started = std::time::SystemTime::now() - std::time::Duration::from_secs(2);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(started)
        .unwrap();
    api.ok("relay_rename", json!({"new_name": "early"}));
    wait_for("the follower to see the file", || {
        relay.logged("session_file_older_than_rename", |_| true)
            || relay.logged("followed_session_rename", |_| true)
    });
    assert_eq!(api.ok("relay_peers", json!({}))["me"], "early");
}

#[test]
fn the_git_branch_is_reported() {
    let mut relay = World::new(bins!());
    let work = relay.workdir("repo-session");
    fs::create_dir_all(work.join(".git")).unwrap();
    fs::write(work.join(".git/HEAD"), "ref: refs/heads/feature/login\n").unwrap();
    let mut repo = relay.channel("repo-session");
    let mut other = relay.channel("other");
    let peers = other.ok("relay_peers", json!({}));
    assert_eq!(peers["peers"][0]["name"], "repo-session");
    assert_eq!(peers["peers"][0]["git_branch"], "feature/login");
    repo.ok("relay_peers", json!({}));
}
