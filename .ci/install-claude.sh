#!/bin/sh
# Installs every Claude Code CLI version listed in .ci/claude-versions, each into its own
# directory, for the end-to-end tests (tests/claude_cli.rs runs each test once per version).
#
# The tests drive undocumented internals (the channel feature flag, hook wake-ups), so the
# versions are pinned; add a newer one to .ci/claude-versions deliberately, then run the suite.
#
# Idempotent: a version already in the cache dir is not downloaded again. The cache dir is
# $CLAUDE_CLI_CACHE_DIR, or by default $HOME/.cache/claude-relay/claude-cli; version V lives in
# CACHE/V/node_modules/.bin/claude (the tests look there too). Prints each installed executable's
# path on stdout, one per line.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
cache="${CLAUDE_CLI_CACHE_DIR:-${HOME}/.cache/claude-relay/claude-cli}"

installed_version() {
    [ -f "$1" ] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n 1
}

grep -v '^[[:space:]]*#' "$here/claude-versions" | grep -v '^[[:space:]]*$' | while read -r version; do
    prefix="$cache/$version"
    bin="$prefix/node_modules/.bin/claude"
    pkg_json="$prefix/node_modules/@anthropic-ai/claude-code/package.json"
    if [ "$(installed_version "$pkg_json")" != "$version" ] || [ ! -x "$bin" ]; then
        mkdir -p "$prefix"
        # Progress and warnings go to stderr so stdout stays just the paths.
        npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
            "@anthropic-ai/claude-code@$version" >&2
    fi
    if [ ! -x "$bin" ]; then
        echo "install-claude.sh: $bin missing after npm install" >&2
        exit 1
    fi
    # Smoke check without touching the network or the user's config.
    DISABLE_AUTOUPDATER=1 "$bin" --version >&2
    echo "$bin"
done
