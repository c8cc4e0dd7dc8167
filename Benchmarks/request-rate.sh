#!/usr/bin/env bash
# Requests per second of `GET /devices/NAME/stats` (run by hand, not by CI): tund against a minimal C
# libmicrohttpd server (Benchmarks/baselines/mhd_stats.c) started with tund's daemon flags and options and
# answering every GET with the same status, headers and body, in the same run. See Benchmarks/README.md,
# "request-rate.sh".
#
# Three candidates, all in one network namespace this script creates, all loaded the same way
# (`wrk -t$WRK_THREADS -c$CONNECTIONS -d${DUR}s` on 127.0.0.1 inside the namespace):
#   tund-info     tund at its default --log-level info (one request log line per request), device rr0
#   tund-warning  a second tund (own database) at --log-level warning (no request log line), device rr1
#   c-mhd         mhd_stats answering with the body tund-info gave for /devices/rr0/stats
# Each run executes the three back to back in an order rotated per run; the table gives req/s per run,
# the medians, and the paired ratio (median of the per-run ratios tund/c-mhd; < 1 means tund is slower).
#
#   usage: Benchmarks/request-rate.sh        (as root, from anywhere; RUNS=5 DUR=5 by default, ~1.5 min + build)
#
# Knobs (env): RUNS (5), DUR (5 s per wrk run), WRK_THREADS (2), CONNECTIONS (16), TUND_BIN (skip the
# build), TUND_ARGS (extra arguments for both tunds, e.g. "--http-threads 1"), OUT_DIR (/tmp/tund-bench).
#
# SAFETY: everything runs in the network namespace reqrate-<pid> (lib-namespace.sh), with IPv6 off inside
# it so no packet reaches the tun devices and their counters (and so the body) stay put; nothing is
# configured in the machine's own namespace. On exit, error or Ctrl-C its processes are killed by pid and
# it is deleted, which removes the devices. tund, the C server and every wrk run under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
RUNS="${RUNS:-5}"
DUR="${DUR:-5}"
WRK_THREADS="${WRK_THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
TUND_ARGS="${TUND_ARGS:-}"
OUT="${OUT_DIR:-/tmp/tund-bench}/request-rate-$(date +%Y%m%d-%H%M%S)-$$"
[[ "$RUNS" =~ ^[0-9]+$ ]] && (( RUNS >= 1 && RUNS <= 50 )) || { echo "RUNS must be 1..50" >&2; exit 1; }
[[ "$DUR" =~ ^[0-9]+$ ]] && (( DUR >= 1 && DUR <= 120 )) || { echo "DUR must be 1..120 seconds" >&2; exit 1; }
LIFETIME=$(( 3 * RUNS * (DUR + 35) + 120 ))   # bound on tund and the C server
PORT_INFO=18110
PORT_WARNING=18111
PORT_C=18112

source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" "${BENCHMARK_PACKAGES[@]}"
for tool in ip curl wrk gcc pkg-config python3 timeout; do
    command -v "$tool" >/dev/null || { echo "$tool not found after installing the packages" >&2; exit 1; }
done
# Builds tund (swift build -c release) unless TUND_BIN is set; makes NS, WORK, in_ns, and the exit trap.
source Benchmarks/lib-namespace.sh reqrate
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -o "$WORK/mhd_stats" Benchmarks/baselines/mhd_stats.c $(pkg-config --cflags --libs libmicrohttpd)
in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

wait_ready() {  # PORT PATH: polls until it answers 200, at most 10 s
    for _ in $(seq 100); do
        in_ns curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0
        sleep 0.1
    done
    echo "nothing answers on 127.0.0.1:$1$2 in the namespace; see $OUT" >&2
    exit 1
}

start_tund() {  # LEVEL PORT DEVICE
    # shellcheck disable=SC2086
    in_ns timeout "$LIFETIME" "$TUND_BIN" --listen "127.0.0.1:$2" --database "$WORK/$1.db" --log-level "$1" $TUND_ARGS \
        2> "$OUT/tund-$1.log" &
    wait_ready "$2" /readyz
    local code
    code=$(in_ns curl -s -o "$OUT/create-$3.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "{\"name\":\"$3\",\"type\":\"tun\"}" "http://127.0.0.1:$2/devices")
    [ "$code" = 201 ] || { echo "creating $3 answered $code: $(cat "$OUT/create-$3.json")" >&2; exit 1; }
}

start_tund info "$PORT_INFO" rr0
start_tund warning "$PORT_WARNING" rr1
in_ns curl -sf -o "$OUT/body.json" "http://127.0.0.1:$PORT_INFO/devices/rr0/stats"
in_ns timeout "$LIFETIME" "$WORK/mhd_stats" "$OUT/body.json" "$PORT_C" 2 "$LIFETIME" 2> "$OUT/mhd_stats.log" &
wait_ready "$PORT_C" /devices/rr0/stats

# The C server must answer what tund answers: same status line, headers (but Date) and body.
answer() { in_ns curl -s -i "http://127.0.0.1:$1/devices/rr0/stats" | grep -av '^Date: '; }
answer "$PORT_INFO" > "$OUT/answer-tund.txt"
answer "$PORT_C" > "$OUT/answer-c.txt"
cmp -s "$OUT/answer-tund.txt" "$OUT/answer-c.txt" || {
    echo "the C server's answer differs from tund's:" >&2
    diff "$OUT/answer-tund.txt" "$OUT/answer-c.txt" >&2 || true
    exit 1
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm), $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "tund: $TUND_BIN ($("$TUND_BIN" --version 2>/dev/null || echo '?')) $TUND_ARGS"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (modified)')"
    echo "libmicrohttpd: $(pkg-config --modversion libmicrohttpd), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "load: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DUR}s, $RUNS runs; body $(wc -c < "$OUT/body.json") bytes"
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

CANDIDATES=(tund-info c-mhd tund-warning)
declare -A URL=(
    [tund-info]="http://127.0.0.1:$PORT_INFO/devices/rr0/stats"
    [tund-warning]="http://127.0.0.1:$PORT_WARNING/devices/rr1/stats"
    [c-mhd]="http://127.0.0.1:$PORT_C/devices/rr0/stats"
)
: > "$OUT/raw.tsv"
for run in $(seq "$RUNS"); do
    for i in 0 1 2; do
        candidate="${CANDIDATES[$(( (i + run - 1) % 3 ))]}"
        log="$OUT/wrk-run$run-$candidate.txt"
        in_ns timeout $(( DUR + 30 )) wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DUR}s" "${URL[$candidate]}" > "$log"
        rate=$(awk '/^Requests\/sec:/ { print $2 }' "$log")
        [ -n "$rate" ] || { echo "wrk printed no rate for $candidate; see $log" >&2; exit 1; }
        if grep -q -e 'Non-2xx' -e 'Socket errors' "$log"; then
            echo "wrk saw errors against $candidate in run $run:" >&2
            grep -e 'Non-2xx' -e 'Socket errors' "$log" >&2
            exit 1
        fi
        printf '%s\t%s\t%s\n' "$run" "$candidate" "$rate" >> "$OUT/raw.tsv"
        echo "run $run: $candidate $rate req/s" >&2
    done
done

python3 - "$OUT/raw.tsv" <<'EOF' | tee "$OUT/summary.txt"
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    run, candidate, rate = line.split("\t")
    rates.setdefault(candidate, {})[int(run)] = float(rate)
info, warning, c = rates["tund-info"], rates["tund-warning"], rates["c-mhd"]
print(f"{'run':>4} {'tund-info':>11} {'tund-warning':>13} {'c-mhd':>11} {'info/c':>7} {'warning/c':>10}")
for run in sorted(c):
    print(f"{run:>4} {info[run]:>11.0f} {warning[run]:>13.0f} {c[run]:>11.0f} {info[run] / c[run]:>7.2f} {warning[run] / c[run]:>10.2f}")
median = statistics.median
print(f"{'med':>4} {median(info.values()):>11.0f} {median(warning.values()):>13.0f} {median(c.values()):>11.0f}"
      f" {median(info[r] / c[r] for r in c):>7.2f} {median(warning[r] / c[r] for r in c):>10.2f}")
print("req/s of GET /devices/NAME/stats; ratios are tund/c-mhd per run, 'med' row: medians (ratios: paired, the median of the per-run ratios)")
print(f"tund-info / c-mhd (request log at info): {median(info[r] / c[r] for r in c):.2f}x paired, "
      f"{median(info.values()) / median(c.values()):.2f}x of medians")
print(f"tund-warning / c-mhd (--log-level warning): {median(warning[r] / c[r] for r in c):.2f}x paired, "
      f"{median(warning.values()) / median(c.values()):.2f}x of medians")
EOF
echo "raw data and logs: $OUT" >&2
