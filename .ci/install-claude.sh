#!/bin/sh
# Install the pinned Claude Code CLI used by tests/claude_cli.rs, and print the
# path of its `claude` executable on stdout (the only line printed there).
#
# The tests drive undocumented internals (the channel feature flag), so the
# version is pinned; bump it deliberately together with the tests.
#
# Idempotent: if the pinned version is already in the cache dir, nothing is
# downloaded. The cache dir is $CLAUDE_CLI_CACHE_DIR, or by default
# $HOME/.cache/claude-relay/claude-cli (the tests look there too).
set -eu

version="${CLAUDE_CLI_VERSION:-2.1.197}"
prefix="${CLAUDE_CLI_CACHE_DIR:-${HOME}/.cache/claude-relay/claude-cli}"
bin="$prefix/node_modules/.bin/claude"
pkg_json="$prefix/node_modules/@anthropic-ai/claude-code/package.json"

installed_version() {
    [ -f "$pkg_json" ] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pkg_json" | head -n 1
}

if [ "$(installed_version)" != "$version" ] || [ ! -x "$bin" ]; then
    mkdir -p "$prefix"
    # Progress and warnings go to stderr so stdout stays just the path.
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$version" >&2
fi

if [ ! -x "$bin" ]; then
    echo "install-claude.sh: $bin missing after npm install" >&2
    exit 1
fi
# Smoke check without touching the network or the user's config.
"$bin" --version >&2
echo "$bin"
