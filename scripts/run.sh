#!/usr/bin/env bash
# Builds tund (release) and runs it on 127.0.0.1:8080 with its database in ./var/tund.db.
# Installs missing Debian packages first. Extra arguments go to tund (e.g. --listen 127.0.0.1:9090).
# tund configures the network of the namespace it runs in: it needs root (or CAP_NET_ADMIN) and /dev/net/tun.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}"
swift build -c release --product tund
mkdir -p var
exec "$(swift build -c release --show-bin-path)/tund" --listen 127.0.0.1:8080 --database ./var/tund.db "$@"
