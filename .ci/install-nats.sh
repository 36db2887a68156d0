#!/usr/bin/env bash
# Installs Debian's nats-server (/usr/sbin/nats-server), which the federation tests start on a
# free loopback port of their own; the package's own service is not used.
set -euo pipefail
if [ -x /usr/sbin/nats-server ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >/dev/null
/usr/sbin/nats-server --version
