#!/bin/bash
# WireGuard throughput (run by hand, not by CI): iperf3 TCP with 1 and 4 streams and 64-byte UDP packets/s
# through pairs of WireGuard endpoints in two namespaces joined by a veth, with each endpoint's CPU time.
# See Benchmarks/README.md, "wireguard.sh".
#
# Pairs (A <-> B; tunnel 10.100.0.1/24 <-> 10.100.0.2/24 over the veth 10.201.0.1/24 <-> 10.201.0.2/24):
#   veth          no tunnel: iperf3 straight over the veth (the ceiling)
#   tund-tund     tund's wireguard worker on both sides
#   debian-debian Debian's wireguard-go on both sides
#   modern-modern upstream wireguard-go 0.0.20250522 on both sides, if WG_MODERN names it (default:
#                 ../shared/bench/bin/wireguard-go-modern; skipped, saying so, when absent)
#   tund-debian   tund on A, Debian's wireguard-go on B
#   tund-clear    tund's clear `tunnel` worker on both sides (no encryption: what wireguard costs)
# Every run: a fresh pair, each measurement DUR seconds; RUNS runs in rotated order; medians.
#
#   usage: Benchmarks/wireguard.sh      (as root; RUNS=3 DUR=10 by default; TUND_BIN skips the build)
#   Knobs (env): OFFLOAD=0 makes tund's devices without offloads (by default they have them, as a
#   deployment that wants speed would); CANDIDATES and TESTS ("tcp1 tcp4 udp64") pick a subset;
#   SPREAD=on|off|auto is tund's --spread-crypto (default auto); TUNNEL_MTU is every tunnel device's
#   MTU, the same for all pairs (default 1408, tund's default for wireguard devices; wg-quick picks 1420).
#
# SAFETY: every namespace is "wgb-<pid>-*" and deleted on exit (processes killed by pid first); every
# device, address and route lives in one. wireguard-go runs only as `ip netns exec NS wireguard-go -f IF`.
# Everything runs under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
RUNS="${RUNS:-3}"
# tund's devices with offloads (TSO/GRO on the device, UDP GSO/GRO on the socket) unless OFFLOAD=0.
TUND_OFFLOAD=$([ "${OFFLOAD:-1}" = 0 ] && echo false || echo true)
DUR="${DUR:-10}"
TUNNEL_MTU="${TUNNEL_MTU:-1408}"
WG_MODERN="${WG_MODERN:-$ROOT/../shared/bench/bin/wireguard-go-modern}"
[[ "$RUNS" =~ ^[0-9]+$ ]] && (( RUNS >= 1 && RUNS <= 20 )) || { echo "RUNS must be 1..20" >&2; exit 1; }
[[ "$DUR" =~ ^[0-9]+$ ]] && (( DUR >= 2 && DUR <= 120 )) || { echo "DUR must be 2..120 seconds" >&2; exit 1; }
[[ "$TUNNEL_MTU" =~ ^[0-9]+$ ]] && (( TUNNEL_MTU >= 1280 && TUNNEL_MTU <= 1440 )) || { echo "TUNNEL_MTU must be 1280..1440" >&2; exit 1; }
(( EUID == 0 )) || { echo "run as root (creates network namespaces)" >&2; exit 1; }

source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" "${BENCHMARK_PACKAGES[@]}" wireguard-go wireguard-tools
for tool in ip iperf3 wg wireguard-go jq curl timeout python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found after installing the packages" >&2; exit 1; }
done
if [ -z "${TUND_BIN:-}" ]; then
    swift build -c release --product tund >&2
    TUND_BIN="$(swift build -c release --show-bin-path)/tund"
fi
TUND="$TUND_BIN"
TUND_PORT=18900
TUND_ARGS="--log-level warning --spread-crypto ${SPREAD:-auto}"
TUND_WRAP=()
TUND_LIFETIME=$(( RUNS * 6 * (3 * DUR + 60) + 300 ))
OUT="${OUT_DIR:-/tmp/tund-bench}/wireguard-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$OUT"
NS_PREFIX="wgb-$$"
source Benchmarks/lib-workers.sh
trap 'for ns in $(ip netns list | awk "{print \$1}" | grep "^$NS_PREFIX-" || true); do delete_ns "$ns"; done' EXIT

CANDIDATES="${CANDIDATES:-veth tund-tund debian-debian modern-modern tund-debian tund-clear}"
[ -x "$WG_MODERN" ] || { echo "note: no upstream wireguard-go at $WG_MODERN: modern-modern is skipped" >&2; CANDIDATES="${CANDIDATES/modern-modern /}"; }

keypair() {  # sets PRIV PUB
    PRIV=$(wg genkey)
    PUB=$(wg pubkey <<< "$PRIV")
}

wireguard_go() {  # NS BINARY IFNAME PRIVATE PEER_PUBLIC PEER_ENDPOINT(or "") TUNNEL_ADDRESS PEER_TUNNEL
    local ns=$1 binary=$2 ifname=$3 key
    ip netns exec "$ns" env LOG_LEVEL=error timeout -k 5 "$TUND_LIFETIME" "$binary" -f "$ifname" > /dev/null 2>&1 &
    for _ in $(seq 100); do ip -n "$ns" link show "$ifname" > /dev/null 2>&1 && break; sleep 0.05; done
    key="$OUT/key-$ns-$ifname"
    (umask 077; echo "$4" > "$key")
    ip netns exec "$ns" wg set "$ifname" private-key "$key" listen-port 51820 peer "$5" allowed-ips "$8/32" ${6:+endpoint "$6"}
    rm -f "$key"
    ip -n "$ns" addr add "$7/24" dev "$ifname"
    ip -n "$ns" link set "$ifname" mtu "$TUNNEL_MTU" up
}

tund_wireguard() {  # NS DIR PRIVATE PEER_PUBLIC PEER_ENDPOINT TUNNEL_ADDRESS PEER_TUNNEL
    tund_start "$1" "$2"
    tund_create "$1" "{\"name\": \"wg0\", \"type\": \"tun\", \"mtu\": $TUNNEL_MTU, \"offload\": $TUND_OFFLOAD, \"addresses\": [\"$6/24\"],
        \"worker\": {\"mode\": \"wireguard\", \"listen_port\": 51820, \"private_key\": \"$3\",
        \"peers\": [{\"public_key\": \"$4\", \"endpoint\": \"$5\", \"allowed_ips\": [\"$7/32\"]}]}}" "$2"
}

tund_clear() {  # NS DIR LOCAL REMOTE TUNNEL_ADDRESS
    tund_start "$1" "$2"
    tund_create "$1" "{\"name\": \"tn0\", \"type\": \"tun\", \"mtu\": $TUNNEL_MTU, \"offload\": $TUND_OFFLOAD, \"addresses\": [\"$5/24\"],
        \"worker\": {\"mode\": \"tunnel\", \"local\": \"$3:7000\", \"remote\": \"$4:7000\"}}" "$2"
}

# Sets up CANDIDATE between NS_A and NS_B; sets TARGET (the address iperf3 connects to) and PIDS (the
# endpoint processes whose CPU is counted).
setup() {  # CANDIDATE DIR
    local a_priv a_pub b_priv b_pub
    keypair; a_priv=$PRIV; a_pub=$PUB
    keypair; b_priv=$PRIV; b_pub=$PUB
    TARGET=10.100.0.2
    case "$1" in
        veth) TARGET=10.201.0.2 ;;
        tund-tund)
            tund_wireguard "$NS_A" "$2/a" "$a_priv" "$b_pub" 10.201.0.2:51820 10.100.0.1 10.100.0.2
            tund_wireguard "$NS_B" "$2/b" "$b_priv" "$a_pub" 10.201.0.1:51820 10.100.0.2 10.100.0.1 ;;
        debian-debian)
            wireguard_go "$NS_A" wireguard-go wga "$a_priv" "$b_pub" 10.201.0.2:51820 10.100.0.1 10.100.0.2
            wireguard_go "$NS_B" wireguard-go wgb "$b_priv" "$a_pub" 10.201.0.1:51820 10.100.0.2 10.100.0.1 ;;
        modern-modern)
            wireguard_go "$NS_A" "$WG_MODERN" wga "$a_priv" "$b_pub" 10.201.0.2:51820 10.100.0.1 10.100.0.2
            wireguard_go "$NS_B" "$WG_MODERN" wgb "$b_priv" "$a_pub" 10.201.0.1:51820 10.100.0.2 10.100.0.1 ;;
        tund-debian)
            tund_wireguard "$NS_A" "$2/a" "$a_priv" "$b_pub" 10.201.0.2:51820 10.100.0.1 10.100.0.2
            wireguard_go "$NS_B" wireguard-go wgb "$b_priv" "$a_pub" 10.201.0.1:51820 10.100.0.2 10.100.0.1 ;;
        tund-clear)
            tund_clear "$NS_A" "$2/a" 10.201.0.1 10.201.0.2 10.100.0.1
            tund_clear "$NS_B" "$2/b" 10.201.0.2 10.201.0.1 10.100.0.2 ;;
    esac
    # The tunnel answers (the first packet makes the handshake) before anything is timed.
    for _ in $(seq 50); do ip netns exec "$NS_A" ping -c 1 -W 1 "$TARGET" > /dev/null 2>&1 && break; done
    ip netns exec "$NS_A" ping -c 1 -W 1 "$TARGET" > /dev/null 2>&1 || die "$1: $TARGET does not answer through the tunnel"
    PIDS="$(ip netns pids "$NS_A" | tr '\n' ' ') $(ip netns pids "$NS_B" | tr '\n' ' ')"
}

# What each side saw after a test, to find where packets were lost: the links' counters, the kernel's
# UDP counters (RcvbufErrors: a socket that overflowed) and, where tund runs, its device's stats.
snapshot() {  # DIR TEST
    local side ns device
    for side in a b; do
        ns=$NS_A; [ "$side" = b ] && ns=$NS_B
        { ip -n "$ns" -s link show; ip netns exec "$ns" cat /proc/net/snmp; } > "$1/$2-$side-counters.txt" 2>&1 || true
        for device in wg0 tn0; do
            api "$ns" GET "/devices/$device/stats" -o "$1/$2-$side-$device-stats.json" -f 2>/dev/null || rm -f "$1/$2-$side-$device-stats.json"
        done
    done
}

measure() {  # CANDIDATE RUN DIR
    local candidate=$1 run=$2 dir=$3 before after json
    for test in ${TESTS:-tcp1 tcp4 udp64}; do
        json="$dir/$test.json"
        iperf_server "$NS_B" "$TARGET"
        before=$(cpu_ns_pids $PIDS)
        case $test in
            tcp1) iperf_client "$NS_A" "$TARGET" "$json" ;;
            tcp4) iperf_client "$NS_A" "$TARGET" "$json" -P 4 ;;
            udp64) iperf_client "$NS_A" "$TARGET" "$json" -u -l 64 -b 0 ;;
        esac
        after=$(cpu_ns_pids $PIDS)
        snapshot "$dir" "$test"
        python3 - "$json" "$test" "$(( after - before ))" "$DUR" <<'EOF' | while read -r metric value; do record "$test" - "$candidate" "$run" "$metric" "$value"; done
import json, sys
path, test, cpu_ns, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    end = json.load(open(path))["end"]
except Exception:
    sys.exit(0)
if test == "udp64":
    received = end["sum"]["packets"] - end["sum"]["lost_packets"]
    print("pps", round(received / duration))
    print("cpu_ns_per_packet", round(cpu_ns / max(received, 1)))
else:
    bits = end["sum_received"]["bits_per_second"]
    print("gbit_s", round(bits / 1e9, 3))
    print("cpu_ns_per_byte", round(cpu_ns / max(bits * duration / 8, 1), 3))
EOF
    done
}

: > "$OUT/raw.tsv"
for ((run = 1; run <= RUNS; run++)); do
    for candidate in $(rotate $((run - 1)) $CANDIDATES); do
        log "run $run: $candidate"
        NS_A="$NS_PREFIX-$candidate-a"; NS_B="$NS_PREFIX-$candidate-b"
        veth_pair
        dir="$OUT/$candidate-$run"
        mkdir -p "$dir"
        setup "$candidate" "$dir"
        measure "$candidate" "$run" "$dir"
        delete_ns "$NS_A"; delete_ns "$NS_B"
    done
done

python3 - "$OUT/raw.tsv" "$CANDIDATES" <<'EOF' | tee "$OUT/summary.txt"
import collections, statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
values = collections.defaultdict(list)
for test, _, candidate, run, metric, value in rows:
    values[(test, candidate, metric)].append(float(value))
def med(test, candidate, metric):
    v = values.get((test, candidate, metric))
    return statistics.median(v) if v else None
print(f"{'pair':<14} {'TCP1 Gbit/s':>11} {'TCP4 Gbit/s':>11} {'UDP64 kpps':>10} {'ns CPU/B TCP1':>13} {'ns CPU/pkt UDP64':>16}")
for candidate in sys.argv[2].split():
    t1, t4, u = med("tcp1", candidate, "gbit_s"), med("tcp4", candidate, "gbit_s"), med("udp64", candidate, "pps")
    c1, cu = med("tcp1", candidate, "cpu_ns_per_byte"), med("udp64", candidate, "cpu_ns_per_packet")
    fmt = lambda x, f: f.format(x) if x is not None else "-"
    print(f"{candidate:<14} {fmt(t1, '{:.2f}'):>11} {fmt(t4, '{:.2f}'):>11} {fmt(u / 1000 if u else None, '{:.1f}'):>10} "
          f"{fmt(c1, '{:.2f}'):>13} {fmt(cu, '{:.0f}'):>16}")
print(f"medians of {len(set(r[3] for r in rows))} runs; CPU = both endpoints' processes (all threads), from schedstat")
EOF
echo "raw data and logs: $OUT"
