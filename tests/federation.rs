//! Hubs of several hosts federated through a real `nats-server`: each host is a world of its
//! own (data directory, hub, host name), and their real channels ask, reply and broadcast across
//! hosts.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Channel, NatsServer, World, bins, wait_for};

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
