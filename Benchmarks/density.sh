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
source Benchmarks/lib-namespace.sh density
gcc -O2 -Wall -o "$WORK/udpflood" Benchmarks/baselines/udpflood.c
echo "host: $(uname -srm), $(nproc) CPU; tund: $TUND_BIN, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
in_ns timeout 900 python3 Benchmarks/density.py --tund "$TUND_BIN" --flood "$WORK/udpflood" "$@"
