//! Hubs of several hosts federated through a real `nats-server`: each host is a world of its
//! own (data directory, hub, host name), and their real channels ask, reply and broadcast across
//! hosts.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use testkit::{Channel, KillOnDrop, NatsServer, World, bins, wait_for};

/// A world that stands for host `host` of the federation served by `nats`.
fn host(nats: &NatsServer, host: &str) -> World {
    World::new(bins!())
        .with_env("RELAY_NATS_URL", &nats.url())
        .with_env("RELAY_HOST", host)
}

/// The peers `channel` lists, as `name@host`.
fn listed(channel: &mut Channel) -> Vec<String> {
    let peers = channel.ok("relay_peers", json!({}));
    peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|peer| {
            format!(
                "{}@{}",
                peer["name"].as_str().unwrap(),
                peer["host"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Waits until `channel` lists `address`.
fn sees(channel: &mut Channel, address: &str) {
    wait_for(&format!("{} to see {address}", channel.name), || {
        listed(channel).iter().any(|peer| peer == address)
    });
}

/// Two hosts that see each other: `laptop`, with session `web`, and `buildbox`, with `api`.
fn pair(nats: &NatsServer) -> (World, World, Channel, Channel) {
    let mut laptop = host(nats, "laptop");
    let mut buildbox = host(nats, "buildbox");
    let mut web = laptop.channel("web");
    let mut api = buildbox.channel("api");
    sees(&mut web, "api@buildbox");
    sees(&mut api, "web@laptop");
    (laptop, buildbox, web, api)
}

fn ask_id(asked: &Value) -> String {
    asked["ask_id"].as_str().expect("an ask id").to_owned()
}

#[test]
fn an_ask_crosses_hosts_and_its_reply_comes_back() {
    let Some(nats) = NatsServer::start("an_ask_crosses_hosts_and_its_reply_comes_back") else {
        return;
    };
    let (_laptop, _buildbox, mut web, mut api) = pair(&nats);

    let question = "Did the \"auth token\" shape change? ünïcödé </channel>";
    let asked = web.ok("relay_ask", json!({"to": "api", "question": question}));
    assert_eq!(asked["delivery"], "live", "{asked}");
    let ask_id = ask_id(&asked);

    let incoming = api.push_of("ask").1;
    assert_eq!(incoming["content"], question);
    assert_eq!(incoming["meta"]["from"], "web@laptop");
    assert_eq!(incoming["meta"]["ask_id"], ask_id);

    let answer = "Yes: `sub` is a string now.";
    api.ok("relay_reply", json!({"ask_id": ask_id, "text": answer}));
    let reply = web.push_of("reply").1;
    assert_eq!(reply["content"], answer);
    assert_eq!(reply["meta"]["from"], "api@buildbox");
    assert_eq!(reply["meta"]["ask_id"], ask_id);

    // Answered once: a second reply is refused as on one host.
    let (code, message) = api.err("relay_reply", json!({"ask_id": ask_id, "text": "again"}));
    assert_eq!(code, "unknown_ask", "{message}");
}

/// The federation as `relay status --json` of `world` shows it.
fn federation_status(world: &World) -> Value {
    world.relay(&["status", "--json"]).json()["federation"].clone()
}

#[test]
fn a_broadcast_reaches_every_host_and_the_replies_stream_back() {
    let Some(nats) =
        NatsServer::start("a_broadcast_reaches_every_host_and_the_replies_stream_back")
    else {
        return;
    };
    let mut hosts: Vec<World> = ["one", "two", "three"]
        .iter()
        .map(|name| host(&nats, name))
        .collect();
    let mut asker = hosts[0].channel("lead");
    let mut local = hosts[0].channel("docs");
    let mut api = hosts[1].channel("api");
    let mut web = hosts[2].channel("web");
    for address in ["api@two", "web@three"] {
        sees(&mut asker, address);
    }
    sees(&mut api, "lead@one");
    sees(&mut web, "lead@one");

    let sent = asker.ok(
        "relay_broadcast",
        json!({"question": "what are you working on?"}),
    );
    let mut asked: Vec<&str> = sent["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|peer| peer.as_str().unwrap())
        .collect();
    asked.sort();
    assert_eq!(asked, ["api@two", "docs", "web@three"], "{sent}");
    let broadcast_id = sent["broadcast_id"].as_str().unwrap();

    for (session, answer) in [
        (&mut local, "docs"),
        (&mut api, "the api"),
        (&mut web, "the web"),
    ] {
        let question = session.push_of("ask").1;
        assert_eq!(question["meta"]["broadcast_id"], broadcast_id);
        let ask_id = question["meta"]["ask_id"].as_str().unwrap().to_owned();
        session.ok("relay_reply", json!({"ask_id": ask_id, "text": answer}));
    }
    let mut from: Vec<String> = (0..3)
        .map(|_| {
            let reply = asker.push_of("reply").1;
            assert_eq!(reply["meta"]["broadcast_id"], broadcast_id);
            reply["meta"]["from"].as_str().unwrap().to_owned()
        })
        .collect();
    from.sort();
    assert_eq!(from, ["api@two", "docs", "web@three"]);
    let status = federation_status(&hosts[0]);
    assert_eq!(status["connected"], true, "{status}");
    assert_eq!(status["hosts"], json!(["three", "two"]), "{status}");
    hosts.clear();
}

#[test]
fn a_bare_name_is_the_local_session_else_the_only_remote_one_else_ambiguous() {
    let Some(nats) = NatsServer::start(
        "a_bare_name_is_the_local_session_else_the_only_remote_one_else_ambiguous",
    ) else {
        return;
    };
    let mut here = host(&nats, "here");
    let mut east = host(&nats, "east");
    let mut west = host(&nats, "west");
    let mut asker = here.channel("asker");
    let mut api_east = east.channel("api");
    let _api_west = west.channel("api");
    let mut solo = west.channel("solo");
    for address in ["api@east", "api@west", "solo@west"] {
        sees(&mut asker, address);
    }

    let (code, message) = asker.err("relay_ask", json!({"to": "api", "question": "which?"}));
    assert_eq!(code, "ambiguous_peer", "{message}");
    assert!(
        message.contains("api@east") && message.contains("api@west"),
        "{message}"
    );

    let asked = asker.ok("relay_ask", json!({"to": "api@east", "question": "you?"}));
    let question = api_east.push_of("ask").1;
    assert_eq!(question["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(question["meta"]["from"], "asker@here");

    asker.ok("relay_ask", json!({"to": "solo", "question": "only you"}));
    assert_eq!(solo.push_of("ask").1["meta"]["from"], "asker@here");

    // A session of this host wins over those of others.
    let mut api_here = here.channel("api");
    asker.ok("relay_ask", json!({"to": "api", "question": "local?"}));
    assert_eq!(api_here.push_of("ask").1["meta"]["from"], "asker");

    for (to, code) in [
        ("ghost", "peer_not_found"),
        ("api@nowhere", "peer_not_found"),
        ("ghost@east", "peer_not_found"),
        ("a@b@c", "bad_args"),
    ] {
        let (got, message) = asker.err("relay_ask", json!({"to": to, "question": "?"}));
        assert_eq!(got, code, "{to}: {message}");
    }
}

/// A hub killed mid-ask: the ask fails with `peer_gone` (once), and the session comes back with
/// the hub its channel starts again.
#[test]
fn a_killed_hub_fails_the_asks_pending_on_its_sessions_which_come_back_with_the_next_hub() {
    let Some(nats) = NatsServer::start(
        "a_killed_hub_fails_the_asks_pending_on_its_sessions_which_come_back_with_the_next_hub",
    ) else {
        return;
    };
    let (_laptop, mut buildbox, mut web, mut api) = pair(&nats);

    let asked = web.ok(
        "relay_ask",
        json!({"to": "api", "question": "still there?"}),
    );
    api.push_of("ask");
    let hub = buildbox.hub_pid().expect("buildbox's hub");
    testkit::kill(hub, "KILL");
    buildbox.wait_hub_gone(hub, Duration::from_secs(5));

    let failure = web.push_of("error").1;
    assert_eq!(failure["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(failure["meta"]["code"], "peer_gone");

    buildbox.registered(&mut api);
    sees(&mut web, "api@buildbox");
    let asked = web.ok("relay_ask", json!({"to": "api", "question": "back?"}));
    assert_eq!(api.push_of("ask").1["meta"]["ask_id"], asked["ask_id"]);
    assert!(
        web.push_within(Duration::from_millis(500)).is_none(),
        "the first ask failed once"
    );
}

#[test]
fn a_hub_that_stops_says_bye_and_its_host_is_forgotten_at_once() {
    let Some(nats) =
        NatsServer::start("a_hub_that_stops_says_bye_and_its_host_is_forgotten_at_once")
    else {
        return;
    };
    let (laptop, buildbox, mut web, mut api) = pair(&nats);
    let asked = web.ok("relay_ask", json!({"to": "api", "question": "stopping?"}));
    api.push_of("ask");
    buildbox.relay(&["hub", "stop"]);
    let failure = web.push_of("error").1;
    assert_eq!(failure["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(failure["meta"]["code"], "peer_gone");
    let said_bye = |line: &Value| line["host"] == "buildbox";
    wait_for("laptop's hub to hear buildbox's bye", || {
        laptop.logged("federation_host_left", said_bye)
    });
    assert!(
        !laptop.logged("federation_host_gone", said_bye),
        "forgotten for its bye, not for its silence"
    );
}

#[test]
fn a_session_that_leaves_fails_the_asks_other_hosts_made_of_it() {
    let Some(nats) =
        NatsServer::start("a_session_that_leaves_fails_the_asks_other_hosts_made_of_it")
    else {
        return;
    };
    let (_laptop, _buildbox, mut web, mut api) = pair(&nats);

    let asked = web.ok(
        "relay_ask",
        json!({"to": "api", "question": "before you go?"}),
    );
    api.push_of("ask");
    api.kill();
    let failure = web.push_of("error").1;
    assert_eq!(failure["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(failure["meta"]["code"], "peer_gone");
    wait_for("api@buildbox to leave web's list", || {
        !listed(&mut web).iter().any(|peer| peer == "api@buildbox")
    });
}

/// A question queued on another host (its target's pushes are off) is withdrawn there when its
/// asker leaves, as on one host: nobody is left to read the answer, and a reply is told so.
#[test]
fn a_question_queued_on_another_host_is_withdrawn_when_its_asker_leaves() {
    let Some(nats) =
        NatsServer::start("a_question_queued_on_another_host_is_withdrawn_when_its_asker_leaves")
    else {
        return;
    };
    let (_laptop, mut buildbox, mut web, _api) = pair(&nats);
    let mut quiet = buildbox.spawn_channel("quiet", &[("RELAY_CHANNELS", "off")]);
    quiet.initialize();
    buildbox.registered(&mut quiet);
    sees(&mut web, "quiet@buildbox");
    let asked = web.ok(
        "relay_ask",
        json!({"to": "quiet", "question": "still there?"}),
    );
    assert_eq!(asked["delivery"], "queued", "{asked}");
    web.kill();
    // The hub writes its log lines within 50 ms, not as it logs them.
    wait_for("buildbox to withdraw the question", || {
        buildbox.logged("queued_question_withdrawn", |line| {
            line["ask_id"] == asked["ask_id"]
        })
    });
    let taken = quiet.ok("relay_inbox", json!({}));
    assert_eq!(taken["messages"], json!([]), "{taken}");
    let (code, message) = quiet.err(
        "relay_reply",
        json!({"ask_id": asked["ask_id"], "text": "yes"}),
    );
    assert_eq!(code, "unknown_ask", "{message}");
    assert!(message.contains("web@laptop"), "{message}");
}

#[test]
fn an_ask_survives_a_short_outage_of_the_server_and_the_federation_comes_back() {
    let Some(mut nats) = NatsServer::start(
        "an_ask_survives_a_short_outage_of_the_server_and_the_federation_comes_back",
    ) else {
        return;
    };
    let (mut laptop, buildbox, mut web, mut api) = pair(&nats);

    let asked = web.ok(
        "relay_ask",
        json!({"to": "api", "question": "across an outage?"}),
    );
    let ask_id = ask_id(&asked);
    api.push_of("ask");
    nats.stop();
    wait_for("laptop's hub to see the server gone", || {
        federation_status(&laptop)["connected"] == false
    });
    // The local relay keeps working, and asks afar fail at once with a clear code.
    let mut docs = laptop.channel("docs");
    docs.ok(
        "relay_ask",
        json!({"to": "web", "question": "local still?"}),
    );
    web.push_of("ask");
    let (code, message) = web.err("relay_ask", json!({"to": "api@buildbox", "question": "?"}));
    assert_eq!(code, "host_unreachable", "{message}");

    nats.resume();
    for world in [&laptop, &buildbox] {
        wait_for("the hubs to reconnect", || {
            federation_status(world)["connected"] == true
        });
    }
    api.ok(
        "relay_reply",
        json!({"ask_id": ask_id, "text": "still here"}),
    );
    let reply = web.push_of("reply").1;
    assert_eq!(reply["meta"]["ask_id"], ask_id);
    assert_eq!(reply["content"], "still here");
}

#[test]
fn a_long_outage_fails_the_asks_afar_once_and_the_rosters_come_back() {
    let Some(mut nats) =
        NatsServer::start("a_long_outage_fails_the_asks_afar_once_and_the_rosters_come_back")
    else {
        return;
    };
    let (_laptop, _buildbox, mut web, mut api) = pair(&nats);

    let asked = web.ok(
        "relay_ask",
        json!({"to": "api", "question": "long outage?"}),
    );
    api.push_of("ask");
    nats.stop();
    let failure = web.push_of("error").1;
    assert_eq!(failure["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(failure["meta"]["code"], "peer_gone");
    assert!(
        web.push_within(Duration::from_millis(500)).is_none(),
        "the ask failed once"
    );

    nats.resume();
    sees(&mut web, "api@buildbox");
    sees(&mut api, "web@laptop");
    let asked = web.ok("relay_ask", json!({"to": "api", "question": "back?"}));
    assert_eq!(api.push_of("ask").1["meta"]["ask_id"], asked["ask_id"]);
}

const SERVER_WITH_PASSWORD: &str = "authorization { user: relay, password: \"s3cret-pw\" }";

/// Writes `json` as a credentials file of `world`, with `mode`, and points its hub at it.
fn with_credentials(world: World, json: &str, mode: u32) -> World {
    let path = world.dir.path().join("nats-credentials.json");
    fs::write(&path, json).expect("write the credentials file");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    world.with_env("RELAY_NATS_CREDENTIALS", path.to_str().unwrap())
}

/// Waits until the federation of `world`'s hub is in a state `wanted` accepts, and returns it.
fn federation_until(world: &World, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    wait_for(what, || {
        last = federation_status(world);
        wanted(&last)
    });
    last
}

#[test]
fn hubs_with_the_right_credentials_federate_and_never_log_them() {
    let test = "hubs_with_the_right_credentials_federate_and_never_log_them";
    let kinds = [
        (
            SERVER_WITH_PASSWORD,
            r#"{"user": "relay", "password": "s3cret-pw"}"#,
        ),
        (
            "authorization { token: \"s3cret-pw\" }",
            r#"{"token": "s3cret-pw"}"#,
        ),
    ];
    for (server, credentials) in kinds {
        let Some(nats) = NatsServer::with_config(test, server) else {
            return;
        };
        let mut laptop = with_credentials(host(&nats, "laptop"), credentials, 0o600);
        let mut buildbox = with_credentials(host(&nats, "buildbox"), credentials, 0o600);
        let mut web = laptop.channel("web");
        let mut api = buildbox.channel("api");
        sees(&mut web, "api@buildbox");
        let asked = web.ok(
            "relay_ask",
            json!({"to": "api", "question": "authenticated?"}),
        );
        assert_eq!(api.push_of("ask").1["meta"]["ask_id"], asked["ask_id"]);
        for world in [&laptop, &buildbox] {
            // Each hub writes its lines within 50 ms: scan them once the ask's are there.
            wait_for("the hub to log the ask", || {
                world
                    .log_lines()
                    .iter()
                    .any(|line| line["component"] == "hub" && line["ask_id"] == asked["ask_id"])
            });
            for line in world.log_lines() {
                assert!(!line.to_string().contains("s3cret-pw"), "logged: {line}");
            }
        }
    }
}

#[test]
fn wrong_credentials_are_refused_by_the_server_and_shown() {
    let Some(nats) = NatsServer::with_config(
        "wrong_credentials_are_refused_by_the_server_and_shown",
        SERVER_WITH_PASSWORD,
    ) else {
        return;
    };
    let wrong = r#"{"user": "relay", "password": "not-it"}"#;
    let mut laptop = with_credentials(host(&nats, "laptop"), wrong, 0o600);
    let mut web = laptop.channel("web");
    let status = federation_until(&laptop, "the server's refusal", |status| {
        status["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("authorization"))
    });
    assert_eq!(status["connected"], false, "{status}");
    // This host's relay works on; other hosts cannot be reached.
    let (code, message) = web.err("relay_ask", json!({"to": "api@buildbox", "question": "?"}));
    assert_eq!(code, "host_unreachable", "{message}");
    let doctor = laptop.relay(&["doctor", "--json"]).json();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "federation")
        .cloned()
        .expect("a federation check");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("authorization"),
        "{check}"
    );
}

#[test]
fn a_credentials_file_others_can_read_or_a_url_with_credentials_is_refused() {
    let Some(nats) = NatsServer::with_config(
        "a_credentials_file_others_can_read_or_a_url_with_credentials_is_refused",
        SERVER_WITH_PASSWORD,
    ) else {
        return;
    };
    let credentials = r#"{"user": "relay", "password": "s3cret-pw"}"#;
    let mut open = with_credentials(host(&nats, "open"), credentials, 0o644);
    let mut web = open.channel("web");
    let status = federation_status(&open);
    let error = status["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("0644") && error.contains("chmod 600"),
        "{status}"
    );
    // The hub serves its own host all the same.
    let mut docs = open.channel("docs");
    docs.ok("relay_ask", json!({"to": "web", "question": "local?"}));
    web.push_of("ask");

    let url = nats.url().replace("nats://", "nats://relay:s3cret-pw@");
    let mut in_url = host(&nats, "in-url").with_env("RELAY_NATS_URL", &url);
    in_url.start_hub();
    let status = federation_status(&in_url);
    let error = status["error"].as_str().unwrap_or_default();
    assert!(error.contains("holds credentials"), "{status}");
    assert!(!status.to_string().contains("s3cret-pw"), "{status}");
}

/// Two network namespaces joined by a veth pair, `10.201.N.1` in the first and `10.201.N.2` in
/// the second: separate network stacks, as two machines have. Deleted (with the pair) on drop.
struct Namespaces {
    names: [String; 2],
    subnet: u32,
}

impl Namespaces {
    /// `None` when they cannot be made (not root): the test is skipped, or fails under CI.
    fn new(test: &str) -> Option<Namespaces> {
        let id = std::process::id();
        let names = [format!("relay-a-{id}"), format!("relay-b-{id}")];
        let subnet = id % 250;
        let (va, vb) = (
            format!("rva{}", id % 100_000),
            format!("rvb{}", id % 100_000),
        );
        let (a, b) = (&names[0], &names[1]);
        let steps: Vec<Vec<String>> = [
            format!("netns add {a}"),
            format!("netns add {b}"),
            format!("link add {va} netns {a} type veth peer name {vb} netns {b}"),
            format!("-n {a} addr add 10.201.{subnet}.1/24 dev {va}"),
            format!("-n {b} addr add 10.201.{subnet}.2/24 dev {vb}"),
            format!("-n {a} link set {va} up"),
            format!("-n {b} link set {vb} up"),
            format!("-n {a} link set lo up"),
            format!("-n {b} link set lo up"),
        ]
        .iter()
        .map(|step| step.split(' ').map(str::to_owned).collect())
        .collect();
        let namespaces = Namespaces { names, subnet };
        for step in steps {
            let status = Command::new("ip")
                .args(&step)
                .stderr(Stdio::null())
                .status();
            if !status.is_ok_and(|status| status.success()) {
                testkit::skip_unless_ci(
                    test,
                    "network namespaces",
                    &format!("`ip {}` failed (not root?)", step.join(" ")),
                );
                return None;
            }
        }
        Some(namespaces)
    }

    fn address(&self, which: usize) -> String {
        format!("10.201.{}.{}", self.subnet, which + 1)
    }

    /// `command` run in namespace `which` (0 or 1), with `command`'s environment.
    fn exec(&self, which: usize, world: &World, exe: &str, cwd: &std::path::Path) -> Command {
        let mut command = world.command("ip", cwd);
        command.args(["netns", "exec", &self.names[which], exe]);
        command
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

#[test]
fn hubs_in_separate_network_namespaces_federate_across_a_veth_link() {
    let test = "hubs_in_separate_network_namespaces_federate_across_a_veth_link";
    let Some(namespaces) = Namespaces::new(test) else {
        return;
    };
    // The server listens only on the first namespace's address of the link.
    let server_log = tempfile::tempdir().expect("temp dir");
    let mut server = KillOnDrop::spawn(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &namespaces.names[0],
                "/usr/sbin/nats-server",
            ])
            .args(["-a", &namespaces.address(0), "-p", "4222", "-l"])
            .arg(server_log.path().join("nats.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "nats-server in a namespace",
    );
    let url = format!("nats://{}:4222", namespaces.address(0));
    let mut sessions = Vec::new();
    let mut worlds = Vec::new();
    for (which, (host, name)) in [("alpha", "web"), ("beta", "api")].into_iter().enumerate() {
        let mut world = World::new(bins!())
            .with_env("RELAY_NATS_URL", &url)
            .with_env("RELAY_HOST", host);
        let cwd = world.workdir(name);
        let mut command = namespaces.exec(which, &world, world.bins().channel, &cwd);
        command.env("RELAY_SESSION_NAME", name);
        let mut channel = Channel::spawn_command(command, name);
        channel.initialize();
        world.registered(&mut channel);
        sessions.push(channel);
        worlds.push(world);
    }
    let (web, api) = sessions.split_at_mut(1);
    let (web, api) = (&mut web[0], &mut api[0]);
    sees(web, "api@beta");
    let asked = web.ok(
        "relay_ask",
        json!({"to": "api", "question": "across the link?"}),
    );
    let question = api.push_of("ask").1;
    assert_eq!(question["meta"]["from"], "web@alpha");
    api.ok(
        "relay_reply",
        json!({"ask_id": asked["ask_id"], "text": "yes"}),
    );
    assert_eq!(web.push_of("reply").1["meta"]["from"], "api@beta");
    drop(sessions);
    drop(worlds);
    server.kill();
}

#[test]
fn renames_delivery_modes_and_deadlines_cross_hosts_as_on_one() {
    let Some(nats) =
        NatsServer::start("renames_delivery_modes_and_deadlines_cross_hosts_as_on_one")
    else {
        return;
    };
    let (laptop, mut buildbox, mut web, mut api) = pair(&nats);
    api.ok("relay_rename", json!({"new_name": "api-v2"}));
    sees(&mut web, "api-v2@buildbox");
    let peers = laptop.relay(&["peers"]);
    assert!(
        peers.stdout.contains("HOST") && peers.stdout.contains("buildbox"),
        "{}",
        peers.stdout
    );

    // The asker's hub owns the deadline; a reply after it is refused as on one host.
    let asked = web.ok(
        "relay_ask",
        json!({"to": "api-v2@buildbox", "question": "quick?", "timeout_secs": 1}),
    );
    let question = api.push_of("ask").1;
    let failure = web.push_of("error").1;
    assert_eq!(failure["meta"]["ask_id"], asked["ask_id"]);
    assert_eq!(failure["meta"]["code"], "timeout");
    let (code, message) = api.err(
        "relay_reply",
        json!({"ask_id": question["meta"]["ask_id"], "text": "too late"}),
    );
    assert_eq!(code, "unknown_ask", "{message}");

    // A session of another host whose pushes are off is told queued, as locally.
    let mut quiet = buildbox.spawn_channel("quiet", &[("RELAY_CHANNELS", "off")]);
    quiet.initialize();
    buildbox.registered(&mut quiet);
    sees(&mut web, "quiet@buildbox");
    let asked = web.ok("relay_ask", json!({"to": "quiet", "question": "queued?"}));
    assert_eq!(asked["delivery"], "queued", "{asked}");
}

/// A broadcast that also goes to another host answers its caller when that host's hub has (3 s
/// at most); a local session that replies meanwhile has its reply follow the broadcast's answer,
/// never precede it, and a host that does not answer is listed as skipped.
#[test]
fn a_local_reply_to_a_broadcast_waits_for_its_answer_while_another_host_is_slow() {
    let Some(nats) = NatsServer::start(
        "a_local_reply_to_a_broadcast_waits_for_its_answer_while_another_host_is_slow",
    ) else {
        return;
    };
    let (mut laptop, buildbox, _web, _api) = pair(&nats);
    let mut docs = laptop.channel("docs");
    let mut lead = testkit::RawPeer::connect(&laptop);
    assert_eq!(lead.hello("lead")["type"], "ok");
    let stopped = buildbox.hub_pid().expect("buildbox's hub");
    testkit::kill(stopped, "STOP");
    lead.send(&json!({"id": 7, "op": "broadcast", "question": "anyone?", "exclude_self": true, "timeout_secs": 60}));
    let question = docs.push_of("ask").1;
    docs.ok(
        "relay_reply",
        json!({"ask_id": question["meta"]["ask_id"], "text": "docs here"}),
    );
    let first = lead.read().expect("the broadcast's answer");
    testkit::kill(stopped, "CONT");
    assert_eq!(first["id"], 7, "the answer comes first: {first}");
    let skipped = first["result"]["skipped"].to_string();
    assert!(skipped.contains("api@buildbox"), "{first}");
    let reply = lead.read().expect("the reply");
    assert_eq!(reply["type"], "reply", "{reply}");
    assert_eq!(reply["text"], "docs here");
    laptop.note_hub();
}
