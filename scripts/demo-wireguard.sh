#!/usr/bin/env bash
# Shows tund's wireguard worker talking to Debian's wireguard-go, printing each command and its answer, then a
# bounded flood of initiations with bad MAC1 while pings cross the session, and the drops it counts.
# Run as root after `swift build -c release` (and `apt-get install wireguard-go wireguard-tools`). Not a
# test: the same behaviour is asserted in Tests/e2e/test_wireguard.py.
#
# SAFETY: runs itself under `unshare --net` (a private namespace that vanishes with it). wireguard-go
# runs only as `ip netns exec NS wireguard-go -f IFNAME` in a namespace this script adds and deletes.
set -euo pipefail
if [ "${DEMO_INSIDE:-}" != 1 ]; then
    exec env DEMO_INSIDE=1 unshare --net -- "$0" "$@"
fi
cd "$(dirname "$0")/.."
BIN="${BIN:-$(pwd)/.build/release}"
WORK="$(mktemp -d)"
PEER="demo-$$-wg"
API=http://127.0.0.1:18800
cleanup() {
    ip netns pids "$PEER" 2>/dev/null | xargs -r kill 2>/dev/null || true
    kill "$(cat "$WORK/pid" 2>/dev/null)" 2>/dev/null || true
    ip netns del "$PEER" 2>/dev/null || true
}
trap cleanup EXIT
show() { echo "\$ $*"; "$@" 2>&1 | sed 's/^/  /'; }

ip link set lo up
ip netns add "$PEER"
ip link add vdemo type veth peer name eth0 netns "$PEER"
ip addr add 10.99.0.1/24 dev vdemo && ip link set vdemo up
ip -n "$PEER" link set lo up && ip -n "$PEER" addr add 10.99.0.2/24 dev eth0 && ip -n "$PEER" link set eth0 up

echo "== wireguard-go in $PEER"
ip netns exec "$PEER" env LOG_LEVEL=error timeout 120 wireguard-go -f wgdemo > /dev/null 2>&1 &
for _ in $(seq 100); do ip -n "$PEER" link show wgdemo > /dev/null 2>&1 && break; sleep 0.05; done
PEER_PRIVATE=$(wg genkey); PEER_PUBLIC=$(wg pubkey <<< "$PEER_PRIVATE")
(umask 077; echo "$PEER_PRIVATE" > "$WORK/peer.key")
ip netns exec "$PEER" wg set wgdemo private-key "$WORK/peer.key" listen-port 51820
ip -n "$PEER" addr add 10.100.0.2/24 dev wgdemo && ip -n "$PEER" link set wgdemo up

echo "== tund, and a wireguard device whose peer is wireguard-go"
timeout 120 "$BIN/tund" --listen 127.0.0.1:18800 --database "$WORK/tund.db" 2> "$WORK/tund.log" &
echo $! > "$WORK/pid"
for _ in $(seq 100); do curl -sf -o /dev/null "$API/readyz" && break; sleep 0.05; done
BODY="{\"name\": \"wg0\", \"type\": \"tun\", \"addresses\": [\"10.100.0.1/24\"], \"worker\": {\"mode\": \"wireguard\", \"listen_port\": 51820, \"peers\": [{\"public_key\": \"$PEER_PUBLIC\", \"endpoint\": \"10.99.0.2:51820\", \"allowed_ips\": [\"10.100.0.2/32\"]}]}}"
show sh -c "curl -s -X POST -H 'Content-Type: application/json' --data '$BODY' $API/devices | jq -c .worker"
TUND_PUBLIC=$(curl -s "$API/devices/wg0" | jq -r .worker.public_key)
show ip netns exec "$PEER" wg set wgdemo peer "$TUND_PUBLIC" allowed-ips 10.100.0.1/32 endpoint 10.99.0.1:51820

echo "== traffic both ways"
show ping -c 3 -i 0.2 10.100.0.2
show ip netns exec "$PEER" ping -c 3 -i 0.2 10.100.0.1
show ip netns exec "$PEER" wg show wgdemo
show ip netns exec "$PEER" ping -c 5 -i 0.2 -s 1000 10.100.0.1
show ip netns exec "$PEER" wg show wgdemo transfer
show sh -c "curl -s $API/devices/wg0/stats | jq -c '.peers'"
show sh -c "curl -s $API/metrics | grep '^tund_wireguard_peer'"

echo "== a flood of handshake initiations with bad MAC1 (at most 200,000 datagrams or 4 s), data still flowing"
# 148-byte type-1 messages of random bytes: their MAC1 cannot verify.
FLOOD='import os, socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent, deadline = 0, time.monotonic() + 4
while sent < 200000 and time.monotonic() < deadline:
    sock.sendto(b"\x01\x00\x00\x00" + os.urandom(144), ("10.99.0.1", 51820))
    sent += 1
print("initiations sent:", sent)'
ip netns exec "$PEER" timeout 10 python3 -c "$FLOOD" &
FLOODER=$!
show ip netns exec "$PEER" ping -c 10 -i 0.3 10.100.0.1
wait "$FLOODER"
show sh -c "curl -s $API/devices/wg0/stats | jq -c '{wireguard_dropped, peer: .peers[0] | {handshakes_completed, dropped}}'"
show sh -c "curl -s $API/metrics | grep '^tund_wireguard_dropped_total'"
