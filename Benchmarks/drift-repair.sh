#!/usr/bin/env bash
# How long tund takes to put back what someone else removed: `ip link del`, `ip addr del`, `ip route del`,
# `ip link set mtu`. A benchmark (run by hand), not a test. Runs tund in a private network namespace
# (unshare --net) that vanishes with the run; bounded: ITERATIONS per case, 10 s per repair at most.
#   usage: Benchmarks/drift-repair.sh [ITERATIONS]     (default 20; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
ITERATIONS="${1:-20}"
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 python3 util-linux
if [ -z "${TUND_BIN:-}" ]; then
    swift build -c release --product tund >/dev/null
    TUND_BIN="$(swift build -c release --show-bin-path)/tund"
fi
export TUND_BIN ITERATIONS
exec unshare --net -- python3 Benchmarks/drift_repair.py
