#!/usr/bin/env bash
# Host density and fairness of the data plane (see Benchmarks/density.py): thousands of devices on a few
# threads, and one flooded device sharing a thread with many others. In a network namespace this script
# creates and deletes; nothing is configured outside it.
#   usage: Benchmarks/density.sh [--devices N] [--others N] [--seconds S] [--sections "density fairness"]
#          (as root; TUND_BIN to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 iputils-ping python3 gcc libc6-dev
(( EUID == 0 )) || { echo "run as root (creates a network namespace)" >&2; exit 1; }
if [ -z "${TUND_BIN:-}" ]; then
    swift build -c release --product tund >&2
    TUND_BIN="$(swift build -c release --show-bin-path)/tund"
fi
WORK="$(mktemp -d)"
NS="density-$$"
cleanup() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$WORK/udpflood" Benchmarks/baselines/udpflood.c
ip netns add "$NS"
ip -n "$NS" link set lo up
echo "host: $(uname -srm), $(nproc) CPU; tund: $TUND_BIN, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
ip netns exec "$NS" timeout 900 python3 Benchmarks/density.py --tund "$TUND_BIN" --flood "$WORK/udpflood" "$@"
