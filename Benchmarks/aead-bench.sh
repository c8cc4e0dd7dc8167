#!/bin/bash
# AEAD micro-benchmark (run by hand, not by CI): ChaCha20-Poly1305 seal and open for 64, 512, 1424 and 8192
# byte packets: OpenSSL's default provider through its dispatch table, one reused context (WireGuardCrypto.
# ChaChaPoly's way); OpenSSL EVP with one reused context; OpenSSL EVP with a fresh context per packet (an
# allocating per-call API's way); and libsodium when it installs.
# Bounded: at most 2,000,000 packets and BYTES (400 MB) per variant, size and operation; about a minute.
# See Benchmarks/README.md, "WireGuard's AEAD".
#
#   usage: Benchmarks/aead-bench.sh        (BYTES=400000000 by default; PIN=1 runs on CPU 1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
# shellcheck source=../scripts/deps.sh
. "$ROOT/scripts/deps.sh"
ensure_debian_packages gcc libc6-dev libssl-dev pkg-config
SODIUM=0
if ensure_debian_packages libsodium-dev 2>/dev/null; then SODIUM=1; fi

OUT_DIR="${OUT_DIR:-/tmp/tund-bench}"
mkdir -p "$OUT_DIR"
BIN="$OUT_DIR/aead_bench"
FLAGS=()
LIBS=(-lcrypto)
if [ "$SODIUM" = 1 ]; then FLAGS+=(-DWITH_SODIUM); LIBS+=(-lsodium); fi
gcc -O2 -Wall -Wextra "${FLAGS[@]}" -o "$BIN" "$HERE/baselines/aead_bench.c" "${LIBS[@]}"

echo "# $(openssl version); libsodium: $([ "$SODIUM" = 1 ] && dpkg-query -W -f='${Version}' libsodium-dev || echo absent); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
if [ "${PIN:-0}" = 1 ]; then
    taskset -c 1 "$BIN" "${BYTES:-400000000}"
else
    "$BIN" "${BYTES:-400000000}"
fi
