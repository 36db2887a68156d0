#!/bin/sh
# Sets up claude-relay on this machine, and upgrades it: re-run after `git pull`.
#  1. builds and installs relay, relay-channel and relay-hub (cargo install --path . --locked),
#     and says how to put them on PATH when they are not;
#  2. checks the installed binaries with `relay demo` (two sessions through a private hub);
#  3. replaces a running hub of another version when no session uses it (or says what to do);
#  4. when the `claude` CLI is on PATH, stages the plugin's files as the `claude-relay`
#     marketplace and installs (or updates) the `relay` plugin;
#  5. prints the command that launches Claude Code with the relay's channel turned on.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
cd "$here"

if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo is not installed; get Rust from https://rustup.rs and run ./install.sh again" >&2
    exit 1
fi

echo "==> Building and installing relay, relay-channel and relay-hub (the first build takes minutes)"
cargo install --path . --locked --force
bin_dir="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
echo "    installed in $bin_dir"

# When the binaries are not on PATH: what will not be found, and the line that fixes it.
path_note() {
    case "$bin_dir" in
        "$HOME"/*) shown="\$HOME/${bin_dir#"$HOME"/}" ;;
        *) shown=$bin_dir ;;
    esac
    line="export PATH=\"$shown:\$PATH\""
    case "${SHELL:-}" in
        */zsh) rc="~/.zshrc" ;;
        */bash) rc="~/.bashrc" ;;
        */fish) rc="~/.config/fish/config.fish"; line="fish_add_path $shown" ;;
        *) rc="your shell's rc file (~/.profile for sh)" ;;
    esac
    echo "    note: $bin_dir is not on your PATH."
    echo "    Your shell will not find \`relay\` (relay demo, relay doctor, ...) until it is: add"
    echo "    this line to $rc, then open a new terminal:"
    echo
    echo "        $line"
    echo
    if [ "$bin_dir" = "${CARGO_HOME:-$HOME/.cargo}/bin" ]; then
        echo "    The plugin finds relay-channel there anyway: its launcher looks in cargo's bin directory."
    else
        echo "    The plugin's launcher does not look there: Claude Code needs it on its PATH too (or"
        echo "    RELAY_BIN_DIR=$bin_dir in its environment)."
    fi
}
on_path=true
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) on_path=false; path_note ;;
esac

echo "==> Checking the installed binaries: relay demo (two sessions through a private hub)"
if "$bin_dir/relay" demo >/dev/null; then
    echo "    ok: they asked, replied, broadcast and renamed; run \`relay demo\` to watch"
else
    echo "install.sh: \`$bin_dir/relay demo\` failed (its message is above); \`relay doctor\` says more" >&2
    exit 1
fi

# One `key=value` line of `relay-hub --status` output.
status_field() { printf '%s\n' "$1" | sed -n "s/^$2=//p"; }

# A hub keeps running across an upgrade. Replace one of another version when no session uses
# it; with sessions connected, say exactly what to do.
new_version=$("$bin_dir/relay-hub" --version | sed 's/^relay-hub //')
for data in "$HOME/.claude/plugins/data/relay-claude-relay" "$HOME/.claude-relay"; do
    status=$(CLAUDE_PLUGIN_DATA="$data" "$bin_dir/relay-hub" --status 2>/dev/null) || continue
    running=$(status_field "$status" version)
    pid=$(status_field "$status" pid)
    peers=$(status_field "$status" peers)
    if [ "$running" = "$new_version" ]; then
        continue
    fi
    echo "==> A hub of claude-relay $running (pid $pid) serves $data"
    if [ "$peers" = 0 ]; then
        if CLAUDE_PLUGIN_DATA="$data" "$bin_dir/relay-hub" --stop >/dev/null; then
            echo "    it had no sessions and is stopped; the next session starts a $new_version hub"
        else
            echo "    it has no sessions but did not stop; stop it with: kill $pid"
        fi
    else
        echo "    $peers session(s) still use it, so it keeps running. They go on working; the new"
        echo "    version takes over when they have all ended (the hub exits 5 minutes later). To switch"
        echo "    now, run:  CLAUDE_PLUGIN_DATA=\"$data\" relay-hub --stop"
        echo "    Sessions reconnect to a new hub by themselves; asks pending at that moment fail with"
        echo "    hub_unreachable and are reported in their sessions."
    fi
done

if command -v claude >/dev/null 2>&1; then
    echo "==> Installing the Claude Code plugin"
    # Claude Code copies a directory marketplace whole into its plugin cache, so the marketplace
    # is a staged copy of just the plugin's files, not this checkout (whose target/ can be GBs).
    stage="${XDG_DATA_HOME:-$HOME/.local/share}/claude-relay/marketplace"
    rm -rf "$stage.new"
    mkdir -p "$stage.new"
    cp -R .claude-plugin bin commands hooks README.md LICENSE "$stage.new/"
    rm -rf "$stage"
    mv "$stage.new" "$stage"
    if claude plugin marketplace list 2>/dev/null | grep -q "claude-relay"; then
        claude plugin marketplace update claude-relay >/dev/null
    else
        claude plugin marketplace add "$stage" >/dev/null
    fi
    if claude plugin list 2>/dev/null | grep -q "relay@claude-relay"; then
        claude plugin update relay@claude-relay >/dev/null
    else
        claude plugin install relay@claude-relay >/dev/null
    fi
    echo "    plugin relay@claude-relay is installed (marketplace: $stage)"
else
    echo "==> The claude CLI is not on PATH: skipped the plugin. Once it is, run ./install.sh again."
fi

cat <<'MSG'

Done. Start Claude Code as usual: every session is a relay session, and an idle session is woken
when a message arrives for it.

    claude

For messages pushed the moment they arrive, mid-turn too, start sessions with the channel flag
(Claude Code asks you to confirm it at each start):

    claude --dangerously-load-development-channels plugin:relay@claude-relay

Then, in one session: "ask <other session> what they are working on". /relay:relay-peers lists
the sessions. From a shell: `relay demo` shows two sessions talking, `relay doctor` checks this
installation, `relay --help` lists the rest. More in docs/install.md.
MSG
if [ "$on_path" = false ]; then
    echo "(Until $bin_dir is on your PATH, \`relay\` is $bin_dir/relay: see the note above.)"
fi
