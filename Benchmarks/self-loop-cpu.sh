#!/usr/bin/env bash
# How much CPU tund spends on a tunnel that would send its datagrams into itself (issue: a tunnel whose
# remote lies in its own subnet once spun a core at 100%). Two cases, 10 s each, in a network namespace
# this script creates and deletes:
#   refused   POST of such a tunnel (remote 10.150.0.2 inside the device's 10.150.0.1/24), then one ping
#             into that subnet: refused with 422 (a build without the check accepts it and loops);
#   runtime   a tunnel accepted with an unreachable remote, then a route to the remote through its own
#             device added behind tund's back and one ping sent into it: the worker reads its own
#             datagram back, stops and reports worker.failed.
# Prints tund's CPU time (utime + stime from /proc) before and after each 10 s window.
#   usage: Benchmarks/self-loop-cpu.sh     (as root; TUND_BIN to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 iputils-ping curl coreutils
source Benchmarks/lib-namespace.sh selfloop
in_ns timeout 120 "$TUND_BIN" --listen 127.0.0.1:18090 --database "$WORK/tund.db" 2> "$WORK/tund.log" &
for _ in $(seq 100); do in_ns curl -sf -o /dev/null http://127.0.0.1:18090/readyz && break; sleep 0.1; done
PID="$(ip netns pids "$NS" | head -1)"
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$PID/stat"; }
api() { in_ns curl -s -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:18090$2" -H 'Content-Type: application/json' ${3:+--data-binary "$3"}; }

before=$(cpu_seconds)
code=$(api POST /devices '{"name":"self0","type":"tun","addresses":["10.150.0.1/24"],"worker":{"mode":"tunnel","local":"10.150.0.1:7030","remote":"10.150.0.2:7030"}}')
in_ns ping -c 1 -W 1 10.150.0.5 > /dev/null 2>&1 || true   # one packet into the subnet, as any traffic would
sleep 10
echo "refused: POST answered $code, one ping into 10.150.0.0/24; tund CPU ${before} s -> $(cpu_seconds) s over 10 s"

code=$(api POST /devices '{"name":"loop0","type":"tun","addresses":["10.151.0.1/24"],"worker":{"mode":"tunnel","local":"10.151.0.1:7100","remote":"10.152.0.2:7101"}}')
ip -n "$NS" route add 10.152.0.2/32 dev loop0
before=$(cpu_seconds)
in_ns ping -c 1 -W 1 10.151.0.2 > /dev/null || true
sleep 10
running=$(in_ns curl -s http://127.0.0.1:18090/devices/loop0 | grep -o '"running":[a-z]*')
echo "runtime: POST answered $code, route to the remote added through loop0, one ping sent; tund CPU ${before} s -> $(cpu_seconds) s over 10 s; worker $running"
grep -o 'msg="worker stopped".*' "$WORK/tund.log" | head -1 || true
