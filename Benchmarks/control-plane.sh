#!/bin/bash
# Control-plane benchmark: create N tun devices (address + route + link up each) through tund's HTTP API,
# against the same work done by a shell loop of `ip` commands and by one `ip -batch`, interleaved in the
# same run; then delete them all (tund DELETE vs `ip link del` loop vs `ip -batch`). Prints a table with
# median/min/max and the ratios. See Benchmarks/README.md.
#
#   usage: Benchmarks/control-plane.sh [N] [RUNS]      (defaults 200 and 5; run as root)
#
# Env knobs: TUND_BIN (skip the build), OUT_DIR (/tmp/tund-bench), IPV6=off (disable IPv6 in the benchmark
# namespaces), SETTLE (seconds to sleep after each namespace deletion, 1), STEP_TIMEOUT (seconds per step),
# TUND_DB_DIR (where tund's SQLite database goes; default the run directory under OUT_DIR), TUND_ARGS (extra
# tund arguments).
#
# SAFETY: every device, address and route lives in a network namespace this script creates (tbench-<pid>-*)
# and deletes afterwards, also on failure or Ctrl-C (trap EXIT): processes inside it are killed by pid
# (`ip netns pids`) first. Nothing is configured in the machine's own namespace. Every loop is bounded in
# count, every command in time (`timeout`). Foreground steps use `timeout --foreground` so that Ctrl-C reaches
# them (plain `timeout` moves its child to another process group, and bash would then carry on after the step
# instead of running the INT trap); a step that outlives its timeout and any process left inside a namespace
# is killed by pid in the namespace teardown.
set -euo pipefail

N="${1:-200}"
RUNS="${2:-5}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CLIENT="$HERE/api_client.py"
OUT_BASE="${OUT_DIR:-/tmp/tund-bench}"
OUT="$OUT_BASE/control-plane-$(date +%Y%m%d-%H%M%S)-$$"
IPV6="${IPV6:-on}"
SETTLE="${SETTLE:-1}"
STEP_TIMEOUT="${STEP_TIMEOUT:-$((120 + N / 2))}"
PORT=18080                       # inside each fresh namespace, so it is always free
NS_PREFIX="tbench-$$"
TUND_ARGS="${TUND_ARGS:-}"

die() { echo "control-plane.sh: ERROR: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ "$N" =~ ^[0-9]+$ ]] && (( N >= 1 && N <= 4608 )) || die "N must be 1..4608 (address scheme 10.220+2k.x.1/24), got '$N'"
[[ "$RUNS" =~ ^[0-9]+$ ]] && (( RUNS >= 1 && RUNS <= 100 )) || die "RUNS must be 1..100, got '$RUNS'"
[[ "$IPV6" == on || "$IPV6" == off ]] || die "IPV6 must be on or off"
(( EUID == 0 )) || die "run as root (creates network namespaces and tun devices)"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/deps.sh"
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 python3 coreutils
for tool in ip python3 timeout; do command -v "$tool" >/dev/null || die "$tool not found"; done
[[ -n "${BASH_VERSINFO:-}" && "${BASH_VERSINFO[0]}" -ge 5 ]] || die "bash 5 needed (EPOCHREALTIME)"

# ---------------------------------------------------------------------------------------------------------
# Namespaces: creation, and teardown that kills every process inside before deleting.

kill_ns_processes() {  # NS
    local ns=$1 pids i
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z "$pids" ]] && return 0
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do          # up to 5 s for a clean exit
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z "$pids" ]] && return 0
        sleep 0.1
    done
    log "WARNING: processes in $ns ignored SIGTERM for 5 s, sending SIGKILL: $pids"
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
}

delete_ns() {  # NS
    local ns=$1
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$ns" || return 0
    kill_ns_processes "$ns"
    ip netns del "$ns" 2>/dev/null || log "WARNING: could not delete namespace $ns"
}

cleanup() {
    local rc=$? ns
    trap - EXIT INT TERM
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NS_PREFIX}-" || true); do
        delete_ns "$ns"
    done
    if (( rc != 0 )); then echo "control-plane.sh: FAILED (exit $rc); raw data and logs in $OUT" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of earlier runs of this script whose process is gone (tbench-<pid>-...).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^tbench-' || true); do
    owner=${ns#tbench-}; owner=${owner%%-*}
    if [[ "$owner" =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then
        log "removing leftover namespace $ns"
        delete_ns "$ns"
    fi
done

new_ns() {  # NS
    local ns=$1
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    if [[ "$IPV6" == off ]]; then
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
}

# ---------------------------------------------------------------------------------------------------------
# Build (or take) the tund binary.

if [[ -z "${TUND_BIN:-}" ]]; then
    command -v swift >/dev/null || die "swift not found; build tund elsewhere and set TUND_BIN"
    log "building tund (release) in $ROOT"
    (cd "$ROOT" && timeout 3600 swift build -c release --product tund) >&2 || die "swift build failed"
    TUND_BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/tund"
fi
[[ -x "$TUND_BIN" ]] || die "no executable tund at $TUND_BIN"
mkdir -p "$OUT"
RAW="$OUT/raw.tsv"
printf 'run\top\tcandidate\tseconds\n' > "$RAW"

# ---------------------------------------------------------------------------------------------------------
# The work. Address scheme (the same in the `ip -batch` baseline below): cpI, 10.(220+2*(I/256)).(I%256).1/24, up,
# route 10.(221+2*(I/256)).(I%256).0/24 dev cpI.

gen_create() {  # N -> ip -batch lines
    local i
    for ((i = 0; i < $1; i++)); do
        echo "tuntap add dev cp$i mode tun"
        echo "addr add 10.$((220 + 2 * (i / 256))).$((i % 256)).1/24 dev cp$i"
        echo "link set cp$i up"
        echo "route add 10.$((221 + 2 * (i / 256))).$((i % 256)).0/24 dev cp$i"
    done
}
gen_delete() { local i; for ((i = 0; i < $1; i++)); do echo "link del cp$i"; done; }

# These run in a child bash under `timeout`; each prints the seconds spent in the work itself.
create_loop() {  # NS N
    local ns=$1 n=$2 i t0
    t0=$EPOCHREALTIME
    for ((i = 0; i < n; i++)); do
        ip -n "$ns" tuntap add dev "cp$i" mode tun
        ip -n "$ns" addr add "10.$((220 + 2 * (i / 256))).$((i % 256)).1/24" dev "cp$i"
        ip -n "$ns" link set "cp$i" up
        ip -n "$ns" route add "10.$((221 + 2 * (i / 256))).$((i % 256)).0/24" dev "cp$i"
    done
    echo "$EPOCHREALTIME - $t0" | awk '{printf "%.6f\n", $1 - $3}'
}
delete_loop() {  # NS N
    local ns=$1 n=$2 i t0
    t0=$EPOCHREALTIME
    for ((i = 0; i < n; i++)); do ip -n "$ns" link del "cp$i"; done
    echo "$EPOCHREALTIME - $t0" | awk '{printf "%.6f\n", $1 - $3}'
}
run_batch() {  # NS FILE
    local t0
    t0=$EPOCHREALTIME
    ip -n "$1" -batch "$2"
    echo "$EPOCHREALTIME - $t0" | awk '{printf "%.6f\n", $1 - $3}'
}
timed() {  # FUNCTION ARGS... -> seconds on stdout
    timeout --foreground "$STEP_TIMEOUT" bash -c "set -e; $(declare -f create_loop delete_loop run_batch); $*"
}

# Checks the namespace's kernel state against the expected one: with N=0, no cp device/address/route at all;
# otherwise exactly N tun links cp0..cp(N-1) of type tun, each UP, with its address and its extra route.
verify() {  # NS N LABEL
    local ns=$1 n=$2 label=$3 out s="$OUT/state"
    timeout --foreground 30 ip -n "$ns" -d -j link show > "$s.links" || die "$label: ip link show failed"
    timeout --foreground 30 ip -n "$ns" -4 -j addr show > "$s.addrs" || die "$label: ip addr show failed"
    timeout --foreground 30 ip -n "$ns" -4 -j route show > "$s.routes" || die "$label: ip route show failed"
    if ! out=$(python3 - "$n" "$s.links" "$s.addrs" "$s.routes" <<'PY'
import json, sys
n = int(sys.argv[1]); links, addrs, routes = (json.loads(open(p).read() or "[]") for p in sys.argv[2:5])
tun = {l["ifname"]: l for l in links if l.get("linkinfo", {}).get("info_kind") == "tun"}
up = {name for name, l in tun.items() if "UP" in l.get("flags", [])}
have_addr = {(a["ifname"], f'{i["local"]}/{i["prefixlen"]}') for a in addrs for i in a.get("addr_info", []) if a["ifname"].startswith("cp")}
have_route = {(r["dst"], r.get("dev")) for r in routes if r.get("protocol") != "kernel" and str(r.get("dev", "")).startswith("cp")}
problems = []
for i in range(n):
    name, a, c = f"cp{i}", 220 + 2 * (i // 256), i % 256
    link = tun.get(name)
    if link is None: problems.append(f"{name} missing"); continue
    if link["linkinfo"].get("info_data", {}).get("type") != "tun": problems.append(f"{name} is not a tun device")
    if name not in up: problems.append(f"{name} not UP")
    if (name, f"10.{a}.{c}.1/24") not in have_addr: problems.append(f"{name} lacks 10.{a}.{c}.1/24")
    if (f"10.{a + 1}.{c}.0/24", name) not in have_route: problems.append(f"{name} lacks route 10.{a + 1}.{c}.0/24")
if len(tun) != n: problems.append(f"{len(tun)} tun/tap links, expected {n}")
if len(have_addr) != n: problems.append(f"{len(have_addr)} cp* IPv4 addresses, expected {n}")
if len(have_route) != n: problems.append(f"{len(have_route)} extra routes via cp*, expected {n}")
print(f"devices={len(tun)} up={len(up)} addrs={len(have_addr)} routes={len(have_route)}")
if problems:
    print("; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
    sys.exit(1)
PY
    ); then
        die "$label: kernel state is wrong in $ns: $out"
    fi
    echo "$label: $out" >> "$OUT/verify.log"
}

record() {  # RUN OP CANDIDATE SECONDS
    [[ "$4" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$3 $2 run $1: no time measured (got '$4')"
    printf '%s\t%s\t%s\t%s\n' "$@" >> "$RAW"
    log "run $1 $2 $3: $(awk -v s="$4" -v n="$N" 'BEGIN {printf "%.1f ms, %.0f dev/s", s * 1000, n / s}')"
}

# ---------------------------------------------------------------------------------------------------------
# Candidates: each gets a fresh namespace, creates, verifies, deletes, verifies, and its namespace goes.

candidate_ip_loop() {  # RUN
    local run=$1 ns="$NS_PREFIX-$1-loop" t
    new_ns "$ns"
    t=$(timed create_loop "$ns" "$N") || die "ip loop create failed (run $run)"
    verify "$ns" "$N" "run $run ip-loop create"; record "$run" create ip-loop "$t"
    t=$(timed delete_loop "$ns" "$N") || die "ip loop delete failed (run $run)"
    verify "$ns" 0 "run $run ip-loop delete"; record "$run" delete ip-loop "$t"
    delete_ns "$ns"; sleep "$SETTLE"
}

candidate_ip_batch() {  # RUN
    local run=$1 ns="$NS_PREFIX-$1-batch" t
    new_ns "$ns"
    t=$(timed run_batch "$ns" "$OUT/create_$N.batch") || die "ip -batch create failed (run $run)"
    verify "$ns" "$N" "run $run ip-batch create"; record "$run" create ip-batch "$t"
    t=$(timed run_batch "$ns" "$OUT/delete_$N.batch") || die "ip -batch delete failed (run $run)"
    verify "$ns" 0 "run $run ip-batch delete"; record "$run" delete ip-batch "$t"
    delete_ns "$ns"; sleep "$SETTLE"
}

candidate_tund() {  # RUN
    local run=$1 ns="$NS_PREFIX-$1-tund" dir="$OUT/run$1" t t0 t1 count
    local db_dir="${TUND_DB_DIR:-$dir}"
    mkdir -p "$dir" "$db_dir"
    rm -f "$db_dir/tund-$$-$run.db"*
    new_ns "$ns"
    # The daemon is started and ready before any clock runs; `timeout` bounds its life.
    # shellcheck disable=SC2086
    ip netns exec "$ns" timeout $((STEP_TIMEOUT * 3)) "$TUND_BIN" --listen "127.0.0.1:$PORT" \
        --database "$db_dir/tund-$$-$run.db" $TUND_ARGS > "$dir/tund.log" 2>&1 &
    ip netns exec "$ns" timeout --foreground 30 python3 "$CLIENT" --port "$PORT" --deadline 20 --pid $! wait-ready 2>> "$dir/client.log" \
        || { tail -20 "$dir/tund.log" >&2; die "tund did not become ready (run $run); log: $dir/tund.log"; }

    t0=$EPOCHREALTIME
    t=$(ip netns exec "$ns" timeout --foreground "$STEP_TIMEOUT" python3 "$CLIENT" --port "$PORT" --n "$N" --deadline "$STEP_TIMEOUT" create 2>> "$dir/client.log") \
        || { tail -5 "$dir/client.log" >&2; tail -20 "$dir/tund.log" >&2; die "tund create failed (run $run); logs in $dir"; }
    t1=$EPOCHREALTIME
    verify "$ns" "$N" "run $run tund create"
    count=$(ip netns exec "$ns" timeout --foreground 30 python3 "$CLIENT" --port "$PORT" count 2>> "$dir/client.log") || die "GET /devices failed (run $run)"
    [[ "$count" == "$N" ]] || die "GET /devices lists $count devices after create, expected $N (run $run)"
    record "$run" create tund-api "$t"
    record "$run" create tund-api+client-start "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')"

    t0=$EPOCHREALTIME
    t=$(ip netns exec "$ns" timeout --foreground "$STEP_TIMEOUT" python3 "$CLIENT" --port "$PORT" --n "$N" --deadline "$STEP_TIMEOUT" delete 2>> "$dir/client.log") \
        || { tail -5 "$dir/client.log" >&2; tail -20 "$dir/tund.log" >&2; die "tund delete failed (run $run); logs in $dir"; }
    t1=$EPOCHREALTIME
    verify "$ns" 0 "run $run tund delete"
    count=$(ip netns exec "$ns" timeout --foreground 30 python3 "$CLIENT" --port "$PORT" count 2>> "$dir/client.log") || die "GET /devices failed (run $run)"
    [[ "$count" == 0 ]] || die "GET /devices lists $count devices after delete, expected 0 (run $run)"
    record "$run" delete tund-api "$t"
    record "$run" delete tund-api+client-start "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')"

    # tund's own errors, if any, are worth seeing.
    if grep -qE 'level=(error|critical|warning)' "$dir/tund.log"; then
        log "WARNING: tund logged warnings/errors in run $run:"; grep -E 'level=(error|critical|warning)' "$dir/tund.log" | head -5 >&2
    fi
    delete_ns "$ns"   # SIGTERM to tund first (kill_ns_processes), then the namespace
    rm -f "$db_dir/tund-$$-$run.db"*
    sleep "$SETTLE"
}

# ---------------------------------------------------------------------------------------------------------

gen_create "$N" > "$OUT/create_$N.batch"
gen_delete "$N" > "$OUT/delete_$N.batch"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -srm), $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "iproute2: $(ip -V)"; echo "python: $(python3 --version 2>&1)"
    echo "tund: $TUND_BIN ($(stat -c '%y' "$TUND_BIN" | cut -d. -f1))"
    echo "N=$N RUNS=$RUNS IPV6=$IPV6 SETTLE=$SETTLE TUND_ARGS='$TUND_ARGS' db_dir=${TUND_DB_DIR:-$OUT/runI}"
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2
log "results in $OUT"

CANDIDATES=(tund ip_loop ip_batch)
for ((run = 1; run <= RUNS; run++)); do
    order=()
    for ((k = 0; k < 3; k++)); do order+=("${CANDIDATES[$(((run - 1 + k) % 3))]}"); done   # rotate the order per run
    log "run $run/$RUNS: ${order[*]}"
    for c in "${order[@]}"; do "candidate_$c" "$run"; done
done

# ---------------------------------------------------------------------------------------------------------
# Summary table.

python3 - "$RAW" "$N" "$RUNS" "$OUT/meta.txt" "$OUT" > "$OUT/summary.txt" <<'PY'
import collections, glob, re, statistics, sys
raw, n, runs, meta, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
data = collections.defaultdict(dict)   # (op, candidate) -> {run: seconds}
for line in open(raw).read().splitlines()[1:]:
    run, op, cand, sec = line.split("\t")
    data[(op, cand)][int(run)] = float(sec)
print(open(meta).read().rstrip())
print()
print(f"{'op':<7} {'candidate':<24} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'dev/s':>8}   dev/s min..max")
for op in ("create", "delete"):
    for cand in ("tund-api", "ip-loop", "ip-batch", "tund-api+client-start"):
        v = list(data[(op, cand)].values())
        if not v: continue
        med = statistics.median(v)
        print(f"{op:<7} {cand:<24} {med*1000:>10.1f} {min(v)*1000:>9.1f} {max(v)*1000:>9.1f} {n/med:>8.0f}   {n/max(v):.0f}..{n/min(v):.0f}")
print()
print("ratios: time(tund-api) / time(other); > 1 means tund is slower. 'paired' = median of the per-run ratios")
print("(the candidates of one run ran back to back, so paired ratios cancel most of the VM's drift).")
for op in ("create", "delete"):
    t = data[(op, "tund-api")]
    for other in ("ip-loop", "ip-batch"):
        o = data[(op, other)]
        if not t or not o: continue
        of_medians = statistics.median(t.values()) / statistics.median(o.values())
        paired = [t[r] / o[r] for r in sorted(t) if r in o]
        print(f"  {op:<7} tund-api vs {other:<9} ratio of medians {of_medians:6.2f}   paired median {statistics.median(paired):6.2f} "
              f"[{min(paired):.2f}..{max(paired):.2f}]   ({'tund faster' if of_medians < 1 else 'tund slower'} by {max(of_medians, 1/of_medians):.2f}x)")
# Server side: tund logs each request's handler time (duration_ms); the rest of the client's time is HTTP,
# the client itself and scheduling.
handler = collections.defaultdict(list)   # op -> per-run sums (s)
per_request = collections.defaultdict(list)
for path in sorted(glob.glob(f"{out}/run*/tund.log")):
    sums = collections.Counter()
    for line in open(path, errors="replace"):
        m = re.search(r"duration_ms=([0-9.]+) method=(POST|DELETE) path=/devices\S* status=(201|204)", line)
        if m:
            op = "create" if m.group(2) == "POST" else "delete"
            sums[op] += float(m.group(1)) / 1000
            per_request[op].append(float(m.group(1)))
    for op, total in sums.items():
        handler[op].append(total)
if handler:
    print()
    print("tund handler time (from its request log, duration_ms), summed per run; share of the client-measured time:")
    for op in ("create", "delete"):
        if handler[op] and data[(op, "tund-api")]:
            med = statistics.median(handler[op]); client = statistics.median(data[(op, "tund-api")].values())
            print(f"  {op:<7} median {med*1000:8.1f} ms ({100*med/client:.0f}% of {client*1000:.1f} ms); per request p50 "
                  f"{statistics.median(per_request[op]):.2f} ms, max {max(per_request[op]):.2f} ms")
PY
echo
cat "$OUT/summary.txt"
echo
echo "raw: $RAW   verify log: $OUT/verify.log   tund/client logs: $OUT/run*/"
