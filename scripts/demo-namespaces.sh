#!/usr/bin/env bash
# Shows devices in other network namespaces and tund-cni end to end, printing each command and what it
# answered. Run as root after `swift build -c release` (and `apt-get install containernetworking-plugins`
# for host-local). Not a test: the same behaviour is asserted in Tests/e2e/test_netns.py and test_cni.py.
#
# SAFETY: runs itself under `unshare --net` (a private namespace that vanishes with it); the namespaces
# it adds with `ip netns add` get names unique to this run and are deleted on exit. tund runs under
# `timeout`. Nothing is configured in the machine's own namespace.
set -euo pipefail
if [ "${DEMO_INSIDE:-}" != 1 ]; then
    exec env DEMO_INSIDE=1 unshare --net -- "$0" "$@"
fi
cd "$(dirname "$0")/.."
BIN="${BIN:-$(pwd)/.build/release}"
ip link set lo up
WORK="$(mktemp -d)"
NS1="demo-$$-ns1" NS2="demo-$$-ns2" C1="demo-$$-c1" C2="demo-$$-c2"
cleanup() {
    kill "$(cat "$WORK/pid" 2>/dev/null)" 2>/dev/null || true
    for ns in "$NS1" "$NS2" "$C1" "$C2"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
API=http://127.0.0.1:18700

show() { echo "\$ $*"; "$@" 2>&1 | sed 's/^/  /'; }
start() {
    timeout 300 "$BIN/tund" --listen 127.0.0.1:18700 --database "$WORK/tund.db" 2>>"$WORK/tund.log" &
    echo $! > "$WORK/pid"
    for _ in $(seq 100); do curl -sf -o /dev/null "$API/readyz" && return; sleep 0.05; done
    echo "tund did not become ready; see $WORK/tund.log" >&2
    exit 1
}
post() { curl -s -X POST -H 'Content-Type: application/json' --data "$1" "$API/devices"; }
state() { curl -s "$API/devices/$1" | jq -c '{name, ifname, netns, state: (.state | {present, ifindex, reason})}'; }

for ns in "$NS1" "$NS2" "$C1" "$C2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
start

echo "== 1. a tap in $NS1 with an address and a responder"
show post "{\"name\": \"vm1-net\", \"ifname\": \"eth0\", \"netns\": \"$NS1\", \"type\": \"tap\", \"addresses\": [\"10.61.0.1/24\"], \"worker\": {\"mode\": \"responder\"}}"
show ip -n "$NS1" -br addr show eth0
show ip -br link
show ip netns exec "$NS1" ping -c 2 -W 1 10.61.0.2

echo "== 2. SIGKILL and restart: re-attached in $NS1"
kill -9 "$(cat "$WORK/pid")"; wait "$(cat "$WORK/pid")" 2>/dev/null || true
start
show state vm1-net
show ip netns exec "$NS1" ping -c 1 -W 1 10.61.0.2

echo "== 3. deleted inside $NS1 behind tund's back: repaired there"
show ip -n "$NS1" link del eth0
for _ in $(seq 50); do ip -n "$NS1" link show eth0 >/dev/null 2>&1 && break; sleep 0.1; done
show ip -n "$NS1" -br addr show eth0
show sh -c "curl -s $API/devices/vm1-net | jq -c .drift"

echo "== 4. two namespaces, each with an eth0"
show post "{\"name\": \"pod2-eth0\", \"ifname\": \"eth0\", \"netns\": \"$NS2\", \"type\": \"tun\", \"addresses\": [\"10.62.0.1/24\"]}"
show ip -n "$NS2" -br addr show eth0
show "$BIN/tundctl" devices list --server "$API"

echo "== 5. ip netns del $NS1: the device is stranded, the rest untouched"
curl -sN --max-time 3 "$API/events" > "$WORK/events.txt" &
sleep 0.3
show ip netns del "$NS1"
for _ in $(seq 50); do curl -s "$API/devices/vm1-net" | grep -q namespace_missing && break; sleep 0.1; done
show state vm1-net
show state pod2-eth0
show sh -c "grep -A1 'event: namespace.missing' $WORK/events.txt | head -2"
show curl -s "$API/healthz"
show curl -s -o /dev/null -w '%{http_code}\n' -X DELETE "$API/devices/vm1-net"

echo "== 6. tund-cni as a runtime calls it, with host-local"
CONFIG="{\"cniVersion\": \"1.0.0\", \"name\": \"demo\", \"type\": \"tund-cni\", \"server\": \"$API\", \"device\": {\"type\": \"tap\", \"policy\": \"report\", \"worker\": {\"mode\": \"none\"}}, \"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.88.0.0/24\", \"dataDir\": \"$WORK/ipam\"}}"
cni() {  # COMMAND CONTAINER NETNS [CONFIG]
    local status=0
    CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
        "$BIN/tund-cni" <<< "${4:-$CONFIG}" || status=$?
    echo "(exit $status)"
}
ID1=aaaaaaaaaaaa1111 ID2=bbbbbbbbbbbb2222
echo "\$ CNI_COMMAND=ADD CNI_CONTAINERID=$ID1 CNI_NETNS=/run/netns/$C1 CNI_IFNAME=eth0 tund-cni <<< CONFIG"
FIRST="$(CNI_COMMAND=ADD CNI_CONTAINERID=$ID1 CNI_NETNS=/run/netns/$C1 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$BIN/tund-cni" <<< "$CONFIG")"
echo "  $FIRST"
show ip -n "$C1" -br addr show eth0
show cni ADD "$ID2" "$C2"
show ls "$WORK/ipam/demo"
show cni DEL "$ID2" "$C2"
show ls "$WORK/ipam/demo"
show cni DEL "$ID2" "$C2"
# CHECK gets the ADD result back as prevResult, as runtimes pass it.
CHECK_CONFIG="$(jq -c --argjson prev "$FIRST" '. + {prevResult: $prev}' <<< "$CONFIG")"
show cni CHECK "$ID1" "$C1" "$CHECK_CONFIG"
show ip -n "$C1" addr del 10.88.0.2/24 dev eth0
show cni CHECK "$ID1" "$C1" "$CHECK_CONFIG"
