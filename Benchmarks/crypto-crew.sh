#!/bin/bash
# The crypto crew (run by hand, not by CI): boards of 45 full-sized WireGuard packets (1,420 bytes: one
# 64 KB TSO super-packet cut into segments) sealed, then opened, by one thread and by crews of 2..N
# threads whose helpers sleep until a board is posted, as idle data-plane threads do. No network, no
# device: it measures only whether sharing a batch's AEAD work across cores pays, and by how much.
# Bounded: SECONDS per row (3 by default), at most 200,000 boards per row.
# See Benchmarks/README.md, "crypto-crew.sh".
#
#   usage: Benchmarks/crypto-crew.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages libssl-dev pkg-config
swift build -c release --product crypto-crew-bench >&2
"$(swift build -c release --show-bin-path)/crypto-crew-bench" "${1:-3}"
