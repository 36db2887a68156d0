#!/usr/bin/env bash
# Installs the Debian packages the tests drive: nats-server (/usr/sbin/nats-server), which the
# federation tests start on a free loopback port of their own (the package's service is not
# used), and tmux, in which one real-CLI test runs an interactive claude.
set -euo pipefail
missing=()
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v tmux >/dev/null || missing+=(tmux)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
