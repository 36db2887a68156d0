// The end-to-end cases of tests/claude_cli.rs, included once per tested CLI version (into a
// module named after it, with `VERSION` in scope), so that each test's name carries its version:
// `v2_1_332::ask_and_reply_between_two_sessions`.

/// Test 1: The plugin passes the CLI's own strict validation. With a
/// marketplace.json present, validating the repo root checks only the
/// marketplace manifest; commands and hooks are checked when plugin.json is
/// named, so do both.
#[test]
fn plugin_validates_strict() {
    let Some(h) = harness("plugin_validates_strict", VERSION) else {
        return;
    };
    let root = repo_root();
    let manifest = root.join(".claude-plugin/plugin.json");
    for target in [&root, &manifest] {
        let (ok, out) = run_cli(
            &h,
            "validate",
            &["plugin", "validate", "--strict", &target.to_string_lossy()],
        );
        assert!(ok, "strict validation failed:\n{out}");
    }
}

/// Test 2: Installed the way a user installs it (marketplace add + install), the
/// relay MCP server connects. `claude mcp list` exits 0 either way; read it.
#[test]
fn installed_plugin_server_connects() {
    let Some(h) = harness("installed_plugin_server_connects", VERSION) else {
        return;
    };
    let repo = h.root().join("checkout");
    stage_repo(&repo);
    let repo = repo.to_string_lossy().into_owned();
    let steps: [&[&str]; 3] = [
        &["plugin", "marketplace", "add", &repo],
        &["plugin", "install", "relay@claude-relay"],
        &["mcp", "list"],
    ];
    let mut log = String::new();
    for args in steps {
        // One HOME for all three steps: they build on each other's config.
        let (ok, out) = run_cli(&h, "installer", args);
        log.push_str(&out);
        assert!(ok, "command failed:\n{log}");
    }
    let line = log
        .lines()
        .find(|l| l.contains(SOURCE))
        .unwrap_or_else(|| panic!("no {SOURCE} line in `claude mcp list`:\n{log}"));
    assert!(
        line.contains("Connected") && !line.contains("Failed"),
        "relay server not connected:\n{log}\n=== relay logs\n{}",
        h.relay_logs()
    );
}

/// Federated: alpha and beta run on hosts of their own (each with its own hub), joined through a
/// real nats-server. alpha's model asks beta by its bare name; the question reaches beta's model
/// from `alpha@alpha-host`, and the reply comes back from `beta@beta-host`.
#[test]
fn ask_and_reply_across_federated_hosts() {
    let test = "ask_and_reply_across_federated_hosts";
    let Some(mut h) = harness(test, VERSION) else {
        return;
    };
    let Some(nats) = testkit::NatsServer::start(test) else {
        return;
    };
    h.federate(&nats.url(), &[("alpha", "alpha-host"), ("beta", "beta-host")]);
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("FED-Q: which host are you on?"));
    h.mock.script(&ss[1].id, replier("FED-A: beta-host"));
    ss[0].send("START-ASK");
    let (alpha, beta) = (&ss[0], &ss[1]);

    let ask_req = expect(&h, &ss, alpha, "relay_ask result", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let ask = result_json(&ask_req, "relay_ask").unwrap();
    assert_eq!(ask["ok"], true, "relay_ask failed: {ask}");
    let ask_id = ask["ask_id"].as_str().expect("ask_id").to_owned();
    let got = expect(&h, &ss, beta, "the ask from another host", |r| {
        channels_of(r, "ask")
            .iter()
            .any(|c| c.attr("ask_id") == Some(&ask_id))
    });
    let block = channels_of(&got, "ask").remove(0);
    assert_eq!(block.attr("from"), Some("alpha@alpha-host"), "{block:?}");
    assert!(block.content.contains("FED-Q"), "{block:?}");

    let back = expect(&h, &ss, alpha, "the reply from another host", |r| {
        channels_of(r, "reply")
            .iter()
            .any(|c| c.attr("ask_id") == Some(&ask_id))
    });
    let block = channels_of(&back, "reply").remove(0);
    assert_eq!(block.attr("from"), Some("beta@beta-host"), "{block:?}");
    assert!(block.content.contains("FED-A"), "{block:?}");
    assert_eq!(h.hub_pids().len(), 2, "one hub per host");
}

/// Test 3: alpha asks beta; the ask reaches beta's model as a channel block, beta's
/// model replies with the ask_id it saw, the reply reaches alpha's model.
#[test]
fn ask_and_reply_between_two_sessions() {
    let Some(h) = harness("ask_and_reply_between_two_sessions", VERSION) else {
        return;
    };
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("QUESTION-1: what is 6*7?"));
    h.mock.script(&ss[1].id, replier("ANSWER-1: 42"));
    ss[0].send("START-ASK");
    let (alpha, beta) = (&ss[0], &ss[1]);

    let peers_req = expect(&h, &ss, alpha, "relay_peers result", |r| {
        result_json(r, "relay_peers").is_some()
    });
    let peers = result_json(&peers_req, "relay_peers").unwrap();
    assert_eq!(peers["me"], "alpha", "relay_peers: {peers}");
    assert!(
        peer_names(&peers).contains(&"beta".to_owned()),
        "relay_peers: {peers}"
    );
    // beta was started with `--channels plugin:relay@inline`: its channel read that from the
    // real claude process's command line.
    let beta_entry = peers["peers"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == "beta"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(beta_entry["pushes"], "on", "relay_peers: {peers}");

    let ask_req = expect(&h, &ss, alpha, "relay_ask result", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let ask = result_json(&ask_req, "relay_ask").unwrap();
    assert_eq!(ask["ok"], true, "relay_ask failed: {ask}");
    let ask_id = ask["ask_id"].as_str().expect("ask_id").to_owned();

    let got = expect(&h, &ss, beta, "ask pushed from alpha", |r| {
        channels_of(r, "ask")
            .iter()
            .any(|c| c.attr("ask_id") == Some(&ask_id))
    });
    let block = channels_of(&got, "ask").remove(0);
    assert_eq!(block.attr("source"), Some(SOURCE), "{block:?}");
    assert_eq!(block.attr("from"), Some("alpha"), "{block:?}");
    assert!(block.content.contains("QUESTION-1"), "{block:?}");

    let reply_req = expect(&h, &ss, beta, "relay_reply result", |r| {
        result_json(r, "relay_reply").is_some()
    });
    let reply = result_json(&reply_req, "relay_reply").unwrap();
    assert_eq!(reply["ok"], true, "relay_reply failed: {reply}");

    let back = expect(&h, &ss, alpha, "reply pushed from beta", |r| {
        channels_of(r, "reply")
            .iter()
            .any(|c| c.attr("ask_id") == Some(&ask_id))
    });
    let block = channels_of(&back, "reply").remove(0);
    assert_eq!(block.attr("source"), Some(SOURCE), "{block:?}");
    assert_eq!(block.attr("from"), Some("beta"), "{block:?}");
    assert!(block.content.contains("ANSWER-1: 42"), "{block:?}");
    h.assert_legacy_era(&ss);
}

/// Test 3b: `relay ask` from a shell reaches a real session as a channel block from a `cli`
/// peer, the session's model replies, and the command line prints the reply.
#[test]
fn relay_command_line_asks_a_real_session() {
    let Some(h) = harness("relay_command_line_asks_a_real_session", VERSION) else {
        return;
    };
    let ss = h.start_ready(&["beta"], READY);
    h.mock.script(&ss[0].id, replier("ANSWER-CLI: 7"));
    let home = h.root().join("home-shell");
    fs::create_dir_all(&home).expect("shell HOME");
    let mut asking = std::process::Command::new(env!("CARGO_BIN_EXE_relay"))
        .args([
            "ask",
            "beta",
            "QUESTION-CLI: what is 3+4?",
            "--as",
            "ops",
            "--json",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("CLAUDE_PLUGIN_DATA", h.plugin_data_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run relay ask");
    let got = expect(&h, &ss, &ss[0], "ask pushed from the command line", |r| {
        channels_of(r, "ask")
            .iter()
            .any(|c| c.attr("from") == Some("ops") && c.content.contains("QUESTION-CLI"))
    });
    let block = channels_of(&got, "ask").remove(0);
    assert_eq!(block.attr("source"), Some(SOURCE), "{block:?}");
    let deadline = std::time::Instant::now() + STEP;
    let status = loop {
        if let Some(status) = asking.try_wait().expect("relay ask status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = asking.kill();
            let _ = asking.wait();
            h.fail(&ss, "relay ask did not print the reply in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = asking.wait_with_output().expect("relay ask output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.success(),
        "relay ask failed: {status}: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_str(&stdout).expect("relay ask --json output");
    assert_eq!(reply["from"], "beta", "{reply}");
    assert_eq!(reply["text"], "ANSWER-CLI: 7", "{reply}");
}

/// Test 4: A broadcast from alpha reaches beta and gamma; both replies reach alpha.
#[test]
fn broadcast_reaches_all_and_replies_return() {
    let Some(h) = harness("broadcast_reaches_all_and_replies_return", VERSION) else {
        return;
    };
    let mut ss = h.start_ready(&["alpha", "beta", "gamma"], READY);
    h.mock.script(&ss[0].id, |r| {
        if r.last_user_text().contains("START-BROADCAST") {
            return Some(Reply::tool(
                tool("relay_broadcast"),
                json!({"question": "BCAST-Q: which branch are you on?"}),
            ));
        }
        if r.tool_result(&tool("relay_broadcast")).is_some() {
            return Some(Reply::text("broadcast sent"));
        }
        None
    });
    h.mock.script(&ss[1].id, replier("BCAST-A from beta"));
    h.mock.script(&ss[2].id, replier("BCAST-A from gamma"));
    ss[0].send("START-BROADCAST");
    let (alpha, beta, gamma) = (&ss[0], &ss[1], &ss[2]);

    let sent = expect(&h, &ss, alpha, "relay_broadcast result", |r| {
        result_json(r, "relay_broadcast").is_some()
    });
    let sent = result_json(&sent, "relay_broadcast").unwrap();
    assert_eq!(sent["ok"], true, "relay_broadcast failed: {sent}");
    assert_eq!(sent["peer_count"], 2, "relay_broadcast: {sent}");

    for peer in [beta, gamma] {
        let got = expect(&h, &ss, peer, "broadcast pushed from alpha", |r| {
            channels_of(r, "ask")
                .iter()
                .any(|c| c.attr("from") == Some("alpha") && c.content.contains("BCAST-Q"))
        });
        let block = channels_of(&got, "ask").remove(0);
        assert_eq!(block.attr("source"), Some(SOURCE), "{block:?}");
        if let Some(id) = sent["broadcast_id"].as_str() {
            assert_eq!(block.attr("broadcast_id"), Some(id), "{block:?}");
        }
        expect(&h, &ss, peer, "relay_reply ok", |r| {
            result_json(r, "relay_reply").is_some_and(|v| v["ok"] == true)
        });
    }

    // The two replies may arrive in one turn or in two: look at the whole
    // conversation alpha's model has been shown.
    expect(&h, &ss, alpha, "replies from beta and gamma", |r| {
        let replies: Vec<ChannelBlock> = r
            .all_channels()
            .into_iter()
            .filter(|c| c.attr("kind") == Some("reply"))
            .collect();
        ["beta", "gamma"].iter().all(|who| {
            replies.iter().any(|c| {
                c.attr("from") == Some(who) && c.content.contains(&format!("BCAST-A from {who}"))
            })
        })
    });
    h.assert_legacy_era(&ss);
}

/// Test 5: A user types `/relay:relay-rename <name>` (the namespaced form: under
/// `-p` the bare `/relay-rename` is "Unknown command"); the command makes the
/// model call relay_rename, and alpha's relay_peers then shows the new name.
/// relay_rename is left out of `--allowedTools`: the command's own
/// `allowed-tools` front matter must be what grants it.
#[test]
fn slash_command_rename_is_seen_by_peers() {
    let Some(mut h) = harness("slash_command_rename_is_seen_by_peers", VERSION) else {
        return;
    };
    h.allowed_tools.retain(|t| *t != tool("relay_rename"));
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    // The command asks the model to call relay_rename, which newer CLIs load on demand: the
    // model may first have to fetch it with ToolSearch, so the wanted name is kept until then.
    let mut wanted: Option<String> = None;
    h.mock.script(&ss[1].id, move |r| {
        let text = r.last_user_text();
        if text.contains("<command-name>/relay:relay-rename</command-name>") {
            wanted = Some(between(&text, "<command-args>", "</command-args>").trim().to_owned());
        }
        if r.tool_result(&tool("relay_rename")).is_some() {
            wanted = None;
            return Some(Reply::text("renamed"));
        }
        let name = wanted.clone()?;
        Reply::call(r, &tool("relay_rename"), json!({"new_name": name}))
    });
    h.mock.script(&ss[0].id, |r| {
        if r.last_user_text().contains("START-PEERS") {
            return Some(Reply::tool(tool("relay_peers"), json!({})));
        }
        if r.tool_result(&tool("relay_peers")).is_some() {
            return Some(Reply::text("listed"));
        }
        None
    });

    // The bare form does not resolve to the plugin's command under `-p`: 2.1.197 answers
    // "Unknown command" itself, 2.1.332 hands the text to the model with a note that no such
    // command is installed. Either way nothing is renamed (checked at the end), which keeps
    // the docs' advice to type the namespaced form true.
    ss[1].send("/relay-rename beta-bare");
    if ss[1].wait_event(STEP, |e| e["type"] == "result").is_none() {
        h.fail(&ss, "the bare /relay-rename turn did not end");
    }

    ss[1].send("/relay:relay-rename beta-renamed");
    let renamed = expect(&h, &ss, &ss[1], "relay_rename result", |r| {
        r.tool_result(&tool("relay_rename")).is_some()
    });
    let result = result_json(&renamed, "relay_rename").unwrap();
    assert_eq!(result["ok"], true, "relay_rename failed: {result}");
    assert_eq!(result["name"], "beta-renamed", "relay_rename: {result}");

    ss[0].send("START-PEERS");
    let listed = expect(&h, &ss, &ss[0], "relay_peers result", |r| {
        result_json(r, "relay_peers").is_some()
    });
    let peers = result_json(&listed, "relay_peers").unwrap();
    let names = peer_names(&peers);
    assert!(
        names.contains(&"beta-renamed".to_owned())
            && !names.contains(&"beta".to_owned())
            && !names.contains(&"beta-bare".to_owned()),
        "alpha's relay_peers after the rename: {peers}"
    );
}

/// Regression: a rename made as soon as a session is up must stick. The
/// channel follows Claude Code's session file (`~/.claude/sessions/<pid>.json`)
/// to pick up a user's `/rename`, but Claude Code writes that file just AFTER
/// starting the MCP servers; the follower must not take its first sight of the
/// file (name unchanged) for a rename and undo relay_rename.
#[test]
fn early_rename_is_not_reverted() {
    let Some(h) = harness("early_rename_is_not_reverted", VERSION) else {
        return;
    };
    let mut ss = h.start_ready(&["alpha"], READY);
    ss.push(h.spawn("beta"));
    let mut renamed = false;
    h.mock.script(&ss[1].id, move |r| {
        // Until the relay tools are offered, fall through to the default
        // reply, which waits for the MCP server.
        if renamed {
            return None;
        }
        let reply = Reply::call(r, &tool("relay_rename"), json!({"new_name": "beta-early"}))?;
        renamed = r.can_call(&tool("relay_rename"));
        Some(reply)
    });
    h.mock.script(&ss[0].id, |r| {
        if r.last_user_text().contains("START-PEERS") {
            return Some(Reply::tool(tool("relay_peers"), json!({})));
        }
        None
    });
    ss[1].send("hello");
    let done = expect(&h, &ss, &ss[1], "relay_rename result", |r| {
        r.tool_result(&tool("relay_rename")).is_some()
    });
    let result = result_json(&done, "relay_rename").unwrap();
    assert_eq!(result["ok"], true, "relay_rename failed: {result}");

    // Nothing signals "the follower decided not to act": give it a few of its
    // 1 s polls, then look.
    std::thread::sleep(Duration::from_secs(3));
    ss[0].send("START-PEERS");
    let listed = expect(&h, &ss, &ss[0], "relay_peers result", |r| {
        result_json(r, "relay_peers").is_some()
    });
    let peers = result_json(&listed, "relay_peers").unwrap();
    if !peer_names(&peers).contains(&"beta-early".to_owned()) {
        h.fail(
            &ss,
            &format!("beta's rename to beta-early was undone; alpha's relay_peers: {peers}"),
        );
    }
}

/// Test 6: Canary: the same exchange WITHOUT the seeded feature flag must not
/// deliver the push, so the tests above cannot pass vacuously (e.g. if a CLI
/// upgrade started delivering to everyone, or the mock matched too loosely).
/// The ask itself must still succeed: only the push is gated.
#[test]
fn canary_no_push_without_feature_flag() {
    let Some(mut h) = harness("canary_no_push_without_feature_flag", VERSION) else {
        return;
    };
    h.seed_channels = false;
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("CANARY-Q"));
    h.mock.script(&ss[1].id, replier("CANARY-A"));
    ss[0].send("START-ASK");

    let ask_req = expect(&h, &ss, &ss[0], "relay_ask result", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let ask = result_json(&ask_req, "relay_ask").unwrap();
    assert_eq!(ask["ok"], true, "relay_ask failed: {ask}");

    let leaked = h.mock.wait_for(&ss[1].id, CANARY_WAIT, |r| {
        r.all_channels()
            .iter()
            .any(|c| c.content.contains("CANARY-Q"))
    });
    if leaked.is_some() {
        h.fail(
            &ss,
            "beta received a channel push without the seeded feature flag",
        );
    }
}

/// beta runs WITHOUT the channels flag, so its Claude Code would drop pushes, and with waking off
/// (`RELAY_WAKE=off`), so no waiter wakes it. alpha's ask is reported `queued`; the next prompt
/// typed in beta carries the question (from the plugin's prompt hook); beta's relay_reply
/// reaches alpha live; and alpha, whose pushes are on, never gets a message a second time
/// through the hook.
#[test]
fn without_waking_a_session_gets_questions_at_its_next_prompt() {
    let Some(mut h) = harness(
        "without_waking_a_session_gets_questions_at_its_next_prompt",
        VERSION,
    ) else {
        return;
    };
    h.without_channels_flag = vec!["beta"];
    h.session_env = vec![("beta", "RELAY_WAKE", "off")];
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("INBOX-Q"));
    h.mock.script(&ss[1].id, |r: &Request| {
        if let Some((head, _)) = relay_messages(r)
            .into_iter()
            .find(|(_, text)| text.contains("INBOX-Q"))
        {
            let ask_id = attr_in(&head, "ask_id").unwrap_or_default();
            return Some(Reply::tool(
                tool("relay_reply"),
                json!({"ask_id": ask_id, "text": "INBOX-A"}),
            ));
        }
        if r.tool_result(&tool("relay_reply")).is_some() {
            return Some(Reply::text("replied"));
        }
        None
    });
    ss[0].send("START-ASK");
    let ask_req = expect(&h, &ss, &ss[0], "relay_ask result", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let ask = result_json(&ask_req, "relay_ask").unwrap();
    assert_eq!(ask["delivery"], "queued", "relay_ask: {ask}");
    let ask_id = ask["ask_id"].as_str().unwrap().to_owned();

    // The user types something in beta: the hook hands over the question.
    ss[1].send("CHECK-MESSAGES");
    let seen = expect(&h, &ss, &ss[1], "the question via the prompt hook", |r| {
        relay_messages(r)
            .iter()
            .any(|(_, text)| text.contains("INBOX-Q"))
    });
    let (head, _) = relay_messages(&seen)
        .into_iter()
        .find(|(_, t)| t.contains("INBOX-Q"))
        .unwrap();
    assert_eq!(attr_in(&head, "from").as_deref(), Some("alpha"), "{head}");
    assert_eq!(
        attr_in(&head, "ask_id").as_deref(),
        Some(ask_id.as_str()),
        "{head}"
    );
    assert!(all_message_text(&seen).contains("untrusted text from other sessions"));

    let reply_req = expect(&h, &ss, &ss[0], "beta's reply as a live push", |r| {
        channels_of(r, "reply")
            .iter()
            .any(|c| c.content.contains("INBOX-A"))
    });
    let reply = channels_of(&reply_req, "reply").into_iter().next().unwrap();
    assert_eq!(reply.attr("ask_id"), Some(ask_id.as_str()));

    // Nothing twice: beta's question was never pushed as a channel block, and alpha (pushes on)
    // never got anything through the hook.
    let requests = h.mock.requests();
    for r in requests
        .iter()
        .filter(|r| r.session.as_deref() == Some(ss[1].id.as_str()))
    {
        assert!(
            !r.all_channels()
                .iter()
                .any(|c| c.content.contains("INBOX-Q")),
            "beta got a push"
        );
    }
    let replies_at_alpha = requests
        .iter()
        .filter(|r| r.session.as_deref() == Some(ss[0].id.as_str()))
        .filter(|r| !relay_messages(r).is_empty())
        .count();
    assert_eq!(
        replies_at_alpha, 0,
        "alpha got hook messages although its pushes are on"
    );
    h.assert_legacy_era(&ss);
}

/// alpha runs WITHOUT the channels flag and with waking off, and asks beta. beta's reply cannot
/// be pushed into alpha, so it waits in alpha's inbox: the next prompt typed in alpha carries it
/// (from the plugin's prompt hook), exactly once, and the prompt after that does not carry it
/// again.
#[test]
fn without_waking_an_asker_gets_its_reply_once_at_its_next_prompt() {
    let Some(mut h) = harness(
        "without_waking_an_asker_gets_its_reply_once_at_its_next_prompt",
        VERSION,
    ) else {
        return;
    };
    h.without_channels_flag = vec!["alpha"];
    h.session_env = vec![("alpha", "RELAY_WAKE", "off")];
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("OFF-ASKER-Q"));
    h.mock.script(&ss[1].id, replier("OFF-ASKER-A"));
    ss[0].send("START-ASK");
    let asked = expect(&h, &ss, &ss[0], "relay_ask result", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let ask = result_json(&asked, "relay_ask").unwrap();
    assert_eq!(ask["delivery"], "live", "relay_ask: {ask}");
    let ask_id = ask["ask_id"].as_str().unwrap().to_owned();
    expect(&h, &ss, &ss[1], "relay_reply ok", |r| {
        result_json(r, "relay_reply").is_some_and(|v| v["ok"] == true)
    });

    ss[0].send("CHECK-MESSAGES-1");
    let shown = expect(&h, &ss, &ss[0], "the reply via the prompt hook", |r| {
        r.last_user_text().contains("CHECK-MESSAGES-1")
            && relay_messages(r)
                .iter()
                .any(|(_, text)| text.contains("OFF-ASKER-A"))
    });
    let replies: Vec<(String, String)> = relay_messages(&shown)
        .into_iter()
        .filter(|(_, text)| text.contains("OFF-ASKER-A"))
        .collect();
    assert_eq!(replies.len(), 1, "shown once: {replies:?}");
    assert_eq!(attr_in(&replies[0].0, "kind").as_deref(), Some("reply"));
    assert_eq!(
        attr_in(&replies[0].0, "ask_id").as_deref(),
        Some(ask_id.as_str())
    );

    ss[0].send("CHECK-MESSAGES-2");
    let next = expect(&h, &ss, &ss[0], "the next prompt", |r| {
        r.last_user_text().contains("CHECK-MESSAGES-2")
    });
    let again = relay_messages(&next)
        .into_iter()
        .filter(|(_, text)| text.contains("OFF-ASKER-A"))
        .count();
    assert_eq!(again, 1, "the reply is in the transcript once, not shown again");
    assert!(
        !next
            .all_channels()
            .iter()
            .any(|c| c.content.contains("OFF-ASKER-A")),
        "the reply was never pushed"
    );
    h.assert_legacy_era(&ss);
}

/// The relay tools a plain request needs ("ask backend-api ...", answering an ask) are in the
/// model's tool list from the first request on: Claude Code 2.1.332 defers MCP tools behind
/// tool search unless they are marked `anthropic/alwaysLoad`. The rest stay reachable.
#[test]
fn the_relay_tools_are_offered_up_front() {
    let Some(h) = harness("the_relay_tools_are_offered_up_front", VERSION) else {
        return;
    };
    let ss = h.start_ready(&["alpha"], READY);
    // The first request made once the relay's server is connected (on a loaded machine the
    // very first one may come before, offering WaitForMcpServers instead).
    let first = h
        .mock
        .main_requests(&ss[0].id)
        .into_iter()
        .find(|r| r.can_call(&tool("relay_inbox")) || r.is_deferred(&tool("relay_inbox")))
        .unwrap_or_else(|| h.fail(&ss, "no request knows the relay tools"));
    let offered = first.tool_names();
    for short in ["relay_peers", "relay_ask", "relay_reply", "relay_broadcast"] {
        if !offered.contains(&tool(short)) {
            h.fail(
                &ss,
                &format!("{short} is not in the first request's tools: {offered:?}"),
            );
        }
    }
    for short in ["relay_inbox", "relay_rename"] {
        assert!(
            first.can_call(&tool(short)) || first.is_deferred(&tool(short)),
            "{short} is neither offered nor deferred: {offered:?}"
        );
    }
}

/// beta runs as plain `claude`: no channels flag. After its first turn it is idle, with a waiter
/// armed by its `Stop` hook. alpha's ask is reported `woken`, beta's model is shown the question
/// without anyone typing in beta, answers with relay_reply, and the answer reaches alpha.
#[test]
fn an_idle_session_without_the_channels_flag_is_woken_to_answer() {
    let Some(mut h) = harness(
        "an_idle_session_without_the_channels_flag_is_woken_to_answer",
        VERSION,
    ) else {
        return;
    };
    h.without_channels_flag = vec!["beta"];
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("WAKE-Q"));
    h.mock.script(&ss[1].id, relay_message_replier("WAKE-Q", "WAKE-A"));
    waiter_armed(&h, &ss, "beta");
    ss[0].send("START-ASK");
    let asked = expect(&h, &ss, &ss[0], "relay_ask result", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let ask = result_json(&asked, "relay_ask").unwrap();
    assert_eq!(ask["delivery"], "woken", "relay_ask: {ask}");
    let ask_id = ask["ask_id"].as_str().unwrap().to_owned();

    let woken = expect(&h, &ss, &ss[1], "the question, waking beta", |r| {
        relay_messages_in(&r.text_since_last_answer())
            .iter()
            .any(|(_, text)| text.contains("WAKE-Q"))
    });
    let text = woken.last_user_text();
    assert!(text.contains("Stop hook"), "woken by the Stop hook: {text}");
    assert!(text.contains("untrusted text from other sessions"), "{text}");
    let back = expect(&h, &ss, &ss[0], "beta's reply as a live push", |r| {
        channels_of(r, "reply")
            .iter()
            .any(|c| c.content.contains("WAKE-A") && c.attr("ask_id") == Some(&ask_id))
    });
    assert_eq!(channels_of(&back, "reply")[0].attr("from"), Some("beta"));
    assert_eq!(times_shown(&h, &ss[1], "WAKE-Q"), 1, "shown once");
    h.assert_legacy_era(&ss);
}

/// A broadcast to two idle sessions without the flag wakes both, and both replies come back.
#[test]
fn a_broadcast_wakes_every_idle_session() {
    let Some(mut h) = harness("a_broadcast_wakes_every_idle_session", VERSION) else {
        return;
    };
    h.without_channels_flag = vec!["beta", "gamma"];
    let mut ss = h.start_ready(&["alpha", "beta", "gamma"], READY);
    h.mock.script(&ss[0].id, |r| {
        if r.last_user_text().contains("START-BROADCAST") {
            return Some(Reply::tool(
                tool("relay_broadcast"),
                json!({"question": "WAKE-ALL-Q: which branch?"}),
            ));
        }
        if r.tool_result(&tool("relay_broadcast")).is_some() {
            return Some(Reply::text("broadcast sent"));
        }
        None
    });
    h.mock
        .script(&ss[1].id, relay_message_replier("WAKE-ALL-Q", "WAKE-ALL-A from beta"));
    h.mock
        .script(&ss[2].id, relay_message_replier("WAKE-ALL-Q", "WAKE-ALL-A from gamma"));
    waiter_armed(&h, &ss, "beta");
    waiter_armed(&h, &ss, "gamma");
    ss[0].send("START-BROADCAST");
    let sent = expect(&h, &ss, &ss[0], "relay_broadcast result", |r| {
        result_json(r, "relay_broadcast").is_some()
    });
    let sent = result_json(&sent, "relay_broadcast").unwrap();
    assert_eq!(sent["delivery"]["beta"], "woken", "{sent}");
    assert_eq!(sent["delivery"]["gamma"], "woken", "{sent}");
    expect(&h, &ss, &ss[0], "replies from beta and gamma", |r| {
        let replies: Vec<ChannelBlock> = r
            .all_channels()
            .into_iter()
            .filter(|c| c.attr("kind") == Some("reply"))
            .collect();
        ["beta", "gamma"].iter().all(|who| {
            replies
                .iter()
                .any(|c| c.content.contains(&format!("WAKE-ALL-A from {who}")))
        })
    });
}

/// A second question that arrives while beta's woken turn runs is reported `woken` and is shown
/// once: by the waiter armed at that turn's end, or, when a waiter was armed during the turn (a
/// `SessionStart` waiter that reached the hub late), in the turn itself, after its next tool
/// results.
#[test]
fn a_message_during_a_woken_turn_is_delivered_once_by_the_next_waiter() {
    let Some(mut h) = harness(
        "a_message_during_a_woken_turn_is_delivered_once_by_the_next_waiter",
        VERSION,
    ) else {
        return;
    };
    h.without_channels_flag = vec!["beta"];
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    // beta holds its answer to the first question until the second has been asked.
    let (asked_again, hold) = std::sync::mpsc::channel::<()>();
    let mut first = relay_message_replier("TURN-Q1", "TURN-A1");
    let mut second = relay_message_replier("TURN-Q2", "TURN-A2");
    let mut held = Some(hold);
    h.mock.script(&ss[1].id, move |r| {
        let shown = relay_messages_in(&r.text_since_last_answer());
        if shown.iter().any(|(_, text)| text.contains("TURN-Q1"))
            && let Some(hold) = held.take()
        {
            let _ = hold.recv_timeout(STEP);
        }
        // The second question may come while beta answers the first (a waiter armed during the
        // woken turn takes it), beside that answer's tool result: so it is looked for first.
        second(r).or_else(|| first(r))
    });
    let mut asks = 0;
    h.mock.script(&ss[0].id, move |r| {
        if r.last_user_text().contains("ASK-ONE") || r.last_user_text().contains("ASK-TWO") {
            asks += 1;
            let question = if asks == 1 { "TURN-Q1" } else { "TURN-Q2" };
            return Some(Reply::tool(
                tool("relay_ask"),
                json!({"to": "beta", "question": question}),
            ));
        }
        if r.tool_result(&tool("relay_ask")).is_some() {
            return Some(Reply::text("asked"));
        }
        None
    });
    waiter_armed(&h, &ss, "beta");
    ss[0].send("ASK-ONE");
    let first = expect(&h, &ss, &ss[0], "the first relay_ask", |r| {
        result_json(r, "relay_ask").is_some()
    });
    let first_id = result_json(&first, "relay_ask").unwrap()["ask_id"].clone();
    expect(&h, &ss, &ss[1], "the first question, waking beta", |r| {
        relay_messages_in(&r.text_since_last_answer())
            .iter()
            .any(|(_, text)| text.contains("TURN-Q1"))
    });
    ss[0].send("ASK-TWO");
    let second = expect(&h, &ss, &ss[0], "the second relay_ask", |r| {
        result_json(r, "relay_ask").is_some_and(|a| a["ask_id"] != first_id)
    });
    let ask = result_json(&second, "relay_ask").unwrap();
    assert_eq!(ask["delivery"], "woken", "during beta's woken turn: {ask}");
    asked_again.send(()).unwrap();
    expect(&h, &ss, &ss[0], "both answers", |r| {
        let replies = r.all_channels();
        ["TURN-A1", "TURN-A2"]
            .iter()
            .all(|a| replies.iter().any(|c| c.content.contains(a)))
    });
    assert_eq!(times_shown(&h, &ss[1], "TURN-Q1"), 1);
    assert_eq!(times_shown(&h, &ss[1], "TURN-Q2"), 1);
}

/// With the channels flag on, a question is pushed once and never also woken: beta's waiter
/// stands down (its pushes are on), and beta is never shown a `<relay-message>`.
#[test]
fn with_the_flag_on_a_message_is_pushed_and_never_woken() {
    let Some(h) = harness("with_the_flag_on_a_message_is_pushed_and_never_woken", VERSION) else {
        return;
    };
    let mut ss = h.start_ready(&["alpha", "beta"], READY);
    h.mock.script(&ss[0].id, asker("PUSH-Q"));
    h.mock.script(&ss[1].id, replier("PUSH-A"));
    ss[0].send("START-ASK");
    expect(&h, &ss, &ss[0], "beta's reply", |r| {
        channels_of(r, "reply")
            .iter()
            .any(|c| c.content.contains("PUSH-A"))
    });
    let stood_down = testkit::process::poll_until(STEP, || {
        h.relay_logs().contains("\"event\":\"waiter_ended\"")
            && h.relay_logs().contains("pushes are on")
    });
    if !stood_down {
        h.fail(&ss, "beta's waiter did not stand down");
    }
    for r in h.mock.main_requests(&ss[1].id) {
        assert!(
            relay_messages_in(&all_message_text(&r)).is_empty(),
            "beta was shown a relay-message although its pushes are on"
        );
    }
}

/// Killing a session leaves no waiter behind; a hub restart while a waiter waits loses nothing:
/// the waiter comes back to the new hub and still wakes its session.
#[test]
fn waiters_end_with_their_session_and_outlive_a_hub_restart() {
    let Some(mut h) = harness(
        "waiters_end_with_their_session_and_outlive_a_hub_restart",
        VERSION,
    ) else {
        return;
    };
    h.without_channels_flag = vec!["beta", "gamma"];
    let mut ss = h.start_ready(&["alpha", "beta", "gamma"], READY);
    waiter_armed(&h, &ss, "gamma");
    let gamma_waiters = waiter_pids(&ss[2].id);
    assert!(!gamma_waiters.is_empty(), "gamma has a waiter process");
    testkit::process::kill(ss[2].pid(), "KILL");
    for pid in gamma_waiters {
        if !testkit::process::poll_until(Duration::from_secs(5), || testkit::process::process_gone(pid)) {
            h.fail(&ss, &format!("waiter {pid} outlived its session"));
        }
    }

    waiter_armed(&h, &ss, "beta");
    let hub = h.hub_pids();
    let stopped = std::process::Command::new(bins!().relay)
        .args(["hub", "restart"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", h.root())
        .env("CLAUDE_PLUGIN_DATA", h.plugin_data_dir())
        .output()
        .expect("relay hub restart");
    assert!(stopped.status.success(), "{stopped:?}");
    if !testkit::process::poll_until(STEP, || {
        let now = h.hub_pids();
        !now.is_empty() && now != hub
    }) {
        h.fail(&ss, "no new hub");
    }
    waiter_armed(&h, &ss, "beta");
    h.mock.script(&ss[0].id, asker("AFTER-RESTART-Q"));
    h.mock
        .script(&ss[1].id, relay_message_replier("AFTER-RESTART-Q", "AFTER-RESTART-A"));
    ss[0].send("START-ASK");
    expect(&h, &ss, &ss[0], "beta's reply after the restart", |r| {
        channels_of(r, "reply")
            .iter()
            .any(|c| c.content.contains("AFTER-RESTART-A"))
    });
}

/// A person's terminal: plain `claude` (no channels flag, no `-p`) in a tmux pane. A prompt is
/// typed and its turn ends, which arms the session's waiter; then a question comes from the
/// command line (`relay ask`). With nothing typed after it, the terminal shows "Stop hook
/// feedback", then the model answering with relay_reply; the asker, told `woken`, gets the
/// answer.
///
/// Seen (tmux 3.3a, 160×50): 2.1.197 opens on its welcome box, 2.1.332 on a notice that auto mode
/// is now the default permission mode; neither waits for a key, and the seeded config leaves no
/// dialog before the `❯` prompt. On both, within a second of the question being sent, under the
/// first turn the transcript reads `● Stop hook feedback`, then `Called plugin:relay:relay (ctrl+o
/// to expand)` (the relay_reply call, folded), then `● TERMINAL-ANSWERED: ...`, and the prompt
/// below is empty.
#[test]
fn an_interactive_session_in_a_terminal_is_woken_to_answer() {
    const TEST: &str = "an_interactive_session_in_a_terminal_is_woken_to_answer";
    let Some(h) = harness(TEST, VERSION) else {
        return;
    };
    let Some(tmux) = tmux_or_skip(TEST, VERSION) else {
        return;
    };
    let beta = h.start_in_terminal("beta", &tmux);
    let mut answer = relay_message_replier("TERMINAL-Q", "TERMINAL-A");
    h.mock.script(&beta.id, move |r| {
        if r.last_user_text().contains("FIRST-PROMPT") {
            return Some(Reply::text("TERMINAL-READY: nothing to do yet"));
        }
        if r.tool_result(&tool("relay_reply")).is_some() {
            return Some(Reply::text("TERMINAL-ANSWERED: told the asker"));
        }
        answer(r)
    });

    // The empty prompt: a line that is `❯` alone (a dialog's menu marks its choice `❯ 1. ...`).
    let at_prompt = |screen: &str| screen.lines().any(|line| line.trim() == "❯");
    if beta.pane.wait_for_screen(READY, at_prompt).is_none() {
        fail_in_terminal(&h, &beta, "the prompt never showed");
    }
    beta.pane.type_text("FIRST-PROMPT: hello");
    // (Claude Code puts a no-break space after the `❯`.)
    let typed = |screen: &str| {
        screen
            .lines()
            .any(|line| line.starts_with('❯') && line.contains("FIRST-PROMPT: hello"))
    };
    if beta.pane.wait_for_screen(STEP, typed).is_none() {
        fail_in_terminal(&h, &beta, "the typed prompt never showed");
    }
    // A person presses Enter again when nothing happens; so does the test (an Enter on the empty
    // prompt does nothing).
    let sent = (0..3).any(|_| {
        beta.pane.press("Enter");
        h.mock
            .wait_for(&beta.id, Duration::from_secs(10), |r| {
                r.last_user_text().contains("FIRST-PROMPT")
            })
            .is_some()
    });
    if !sent {
        fail_in_terminal(&h, &beta, "the first prompt never reached the model");
    }
    if beta
        .pane
        .wait_for_screen(STEP, |screen| screen.contains("TERMINAL-READY"))
        .is_none()
    {
        fail_in_terminal(&h, &beta, "the first answer never showed");
    }
    // The turn's end armed the Stop hook's waiter, which replaced the one armed at start.
    let replaced = testkit::process::poll_until(STEP, || {
        log_events(&h, "waiter_armed") >= 2 && h.relay_logs().contains("a newer waiter took its place")
    });
    if !replaced {
        fail_in_terminal(&h, &beta, "no waiter was armed at the end of the first turn");
    }
    let before = h.mock.main_requests(&beta.id).len();

    let mut ask = testkit::KillOnDrop::spawn(
        std::process::Command::new(bins!().relay)
            .args(["ask", "beta", "TERMINAL-Q: which branch?", "--json", "--timeout", "60"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", h.root())
            .env("CLAUDE_PLUGIN_DATA", h.plugin_data_dir())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
        "relay ask",
    );
    let status = ask.wait_within(Duration::from_secs(90), testkit::process::POLL);
    let mut out = String::new();
    if let Some(stdout) = ask.child().stdout.as_mut() {
        let _ = std::io::Read::read_to_string(stdout, &mut out);
    }
    if !status.is_some_and(|s| s.success()) {
        fail_in_terminal(&h, &beta, &format!("relay ask ended {status:?}: {out}"));
    }
    let reply: Value = serde_json::from_str(&out).unwrap_or_else(|_| json!({ "not_json": out }));
    assert_eq!(reply["text"], "TERMINAL-A", "{reply}");
    assert_eq!(reply["from"], "beta", "{reply}");
    assert_eq!(reply["delivery"], "woken", "{reply}");

    let Some(screen) = beta
        .pane
        .wait_for_screen(STEP, |screen| screen.contains("TERMINAL-ANSWERED"))
    else {
        fail_in_terminal(&h, &beta, "the woken turn never showed in the terminal");
    };
    // How Claude Code shows the relay_reply call, folded.
    const TOOL_CALL: &str = "Called plugin:relay:relay";
    let at = |text: &str| {
        screen
            .find(text)
            .unwrap_or_else(|| fail_in_terminal(&h, &beta, &format!("{text:?} is not shown")))
    };
    assert!(
        at("TERMINAL-READY") < at("Stop hook feedback")
            && at("Stop hook feedback") < at(TOOL_CALL)
            && at(TOOL_CALL) < at("TERMINAL-ANSWERED"),
        "the woken turn in order after the first:\n{screen}"
    );
    // Nothing was typed: every request since the question answers the waiter's wake-up or a
    // tool's result, none a prompt.
    let since = h.mock.main_requests(&beta.id).split_off(before);
    let woken = &since[0];
    let text = woken.last_user_text();
    assert!(text.contains("Stop hook"), "woken by the Stop hook: {text}");
    assert_eq!(
        relay_messages_in(&text)
            .iter()
            .filter(|(_, question)| question.contains("TERMINAL-Q"))
            .count(),
        1,
        "{text}"
    );
    for r in &since[1..] {
        assert!(
            !r.tool_results().is_empty(),
            "a request after the wake-up that is no tool result: {}",
            r.last_user_text()
        );
    }

    // Ending the terminal's claude leaves no waiter behind (Claude Code starts hooks detached).
    let id = beta.id.clone();
    drop(beta);
    if !testkit::process::poll_until(Duration::from_secs(5), || waiter_pids(&id).is_empty()) {
        panic!("waiters outlived the terminal's claude: {:?}", waiter_pids(&id));
    }
}

/// A one-shot print run, `claude -p "prompt"` (text input, as scripts use it). Claude Code runs
/// `asyncRewake` hooks in the foreground there and waits for them: before the waiter checked for
/// this, such a run never reached the model (its `SessionStart` waiter held it, on 2.1.197 and
/// 2.1.332 alike, for the waiter's whole lifetime). Now the waiter ends at once: while the run's
/// turn is under way its session is listed `queued`, without a waiter, and the run ends with its
/// answer as soon as its turn is done, leaving no waiter behind.
#[test]
fn a_one_shot_print_run_is_not_held_by_its_waiter_and_reports_queued() {
    let Some(h) = harness(
        "a_one_shot_print_run_is_not_held_by_its_waiter_and_reports_queued",
        VERSION,
    ) else {
        return;
    };
    let id = testkit::claude::harness::new_uuid();
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let mut hold = Some(hold);
    h.mock.script(&id, move |r| {
        if !r.last_user_text().contains("ONE-SHOT") {
            return None;
        }
        if let Some(hold) = hold.take() {
            let _ = hold.recv_timeout(STEP);
        }
        Some(Reply::text("ONE-SHOT-DONE"))
    });
    let run = h.spawn_print("oneshot", &id, "ONE-SHOT: say done");
    let runs = std::slice::from_ref(&run);
    if h.mock
        .wait_for(&id, READY, |r| r.last_user_text().contains("ONE-SHOT"))
        .is_none()
    {
        h.fail(runs, "the run never reached the model: something held its start");
    }
    // Its turn is held at the model; its channel registers meanwhile.
    let listed = testkit::process::poll_until(STEP, || {
        peers_of(&h).iter().any(|peer| peer["name"] == "oneshot")
    });
    if !listed {
        h.fail(runs, "the run's channel never registered");
    }
    let peer = peers_of(&h)
        .into_iter()
        .find(|peer| peer["name"] == "oneshot")
        .unwrap();
    assert_eq!(peer["delivery"], "queued", "{peer}");
    assert_eq!(peer["waiter"], false, "{peer}");
    assert!(
        h.relay_logs().contains("runs hooks in the foreground"),
        "the waiter said why it ended:\n{}",
        h.relay_logs()
    );
    release.send(()).unwrap();
    if !testkit::process::poll_until(STEP, || run.has_exited()) {
        h.fail(runs, "the run did not end after its turn");
    }
    let answered = run
        .events()
        .iter()
        .any(|event| event["type"] == "result" && event["result"] == "ONE-SHOT-DONE");
    assert!(answered, "{}", run.diagnostics());
    if !testkit::process::poll_until(Duration::from_secs(5), || waiter_pids(&id).is_empty()) {
        h.fail(runs, "a waiter outlived the run");
    }
}

/// A stream-json session whose input ends (a script, or the Agent SDK, done with it): Claude Code
/// finishes its turn, stops its MCP servers, and then waits for its background hooks before it
/// exits, for up to 30 s (seen on 2.1.197 and 2.1.332: 31 s from start to exit with a waiter
/// that kept waiting). The hub tells the waiter to stand down as soon as the session's channel
/// left, and the one armed by the last turn's `Stop` just after, so the session exits at once.
#[test]
fn a_session_whose_input_ends_exits_without_waiting_for_its_waiter() {
    let Some(mut h) = harness(
        "a_session_whose_input_ends_exits_without_waiting_for_its_waiter",
        VERSION,
    ) else {
        return;
    };
    h.without_channels_flag = vec!["beta"];
    let mut ss = h.start_ready(&["beta"], READY);
    waiter_armed(&h, &ss, "beta");
    ss[0].close_input();
    if !testkit::process::poll_until(Duration::from_secs(15), || ss[0].has_exited()) {
        h.fail(&ss, "beta still runs 15 s after its input ended");
    }
    assert!(
        h.relay_logs().contains("channel left"),
        "the waiter stood down because the channel left:\n{}",
        h.relay_logs()
    );
    if !testkit::process::poll_until(Duration::from_secs(5), || waiter_pids(&ss[0].id).is_empty())
    {
        h.fail(&ss, "a waiter outlived the session");
    }
}
