#!/usr/bin/env bash
# How tund's control plane scales with the number of devices (see Benchmarks/README.md, "scale.sh"): for
# each N in SIZES, create N devices through single POSTs and through one PUT /devices, restart tund to
# ready (re-attach) and into a fresh namespace (re-create), delete them all (one PUT of an empty set, and
# single DELETEs for N <= SINGLE_DELETE_MAX), time GET /devices and GET /metrics, read tund's threads and
# RSS; and make and delete the same N with `ip -batch` in the same run. One table row per N.
#
# Every device, address and route lives in a network namespace this script creates (scale-PID-N-*) and
# deletes on exit (trap); nothing is configured in the machine's own namespace.
#   usage: Benchmarks/scale.sh      (as root; from anywhere)
#   knobs: SIZES ("100 1000 10000"), TUND_BIN (skip the build), POST_DEADLINE (150 s: single POSTs stop
#          there and the rate of those made is shown), IP_DELETE_BUDGET (45 s: `ip -batch link del` runs
#          in chunks of 250 until then), SINGLE_DELETE_MAX (1000), STEP_TIMEOUT (600 s per step),
#          OUT_DIR (/tmp/tund-bench), TUND_ARGS (extra tund flags)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 python3 jq coreutils util-linux
(( EUID == 0 )) || { echo "run as root (creates network namespaces)" >&2; exit 1; }

SIZES=${SIZES:-100 1000 10000}
PORT=${PORT:-18180}
POST_DEADLINE=${POST_DEADLINE:-150}
IP_DELETE_BUDGET=${IP_DELETE_BUDGET:-45}
SINGLE_DELETE_MAX=${SINGLE_DELETE_MAX:-1000}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
TUND_ARGS=${TUND_ARGS:-}
HELPER="$PWD/Benchmarks/scale.py"
OUT="${OUT_DIR:-/tmp/tund-bench}/scale-$(date +%Y%m%d-%H%M%S)-$$"
NS_PREFIX="scale-$$"
for n in $SIZES; do
    [[ "$n" =~ ^[0-9]+$ ]] && (( n >= 1 && n <= 16384 )) || { echo "SIZES: $n is not 1..16384 (the address plan's limit)" >&2; exit 64; }
done

log() { echo "scale.sh: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# Our namespaces, and the processes in them that are not this shell's own children (the supervisors,
# which reap their tund once it is killed: nothing is left to an init that may not reap orphans).
our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS_PREFIX-" || true; }
not_our_children() { local pid; for pid in $(ip netns pids "$1" 2>/dev/null); do [[ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$$" ]] || echo "$pid"; done; }

cleanup() {
    local rc=$? ns
    trap - EXIT INT TERM
    for ns in $(our_namespaces); do not_our_children "$ns" | xargs -r kill -9 2>/dev/null || true; done
    wait 2>/dev/null || true   # the supervisors, once their tund is gone
    for ns in $(our_namespaces); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || log "WARNING: could not delete namespace $ns"
    done
    rm -f "$OUT"/*.db "$OUT"/*.db-wal "$OUT"/*.db-shm 2>/dev/null || true
    (( rc == 0 )) || log "exit $rc; logs in $OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${TUND_BIN:-}" ]]; then
    log "building tund (release)"
    swift build -c release --product tund >&2
    TUND_BIN="$(swift build -c release --show-bin-path)/tund"
fi
[[ -x "$TUND_BIN" ]] || die "no executable tund at $TUND_BIN"
mkdir -p "$OUT"

# A daemon with N devices holds a descriptor per queue: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)

new_ns() { ip netns add "$1"; ip -n "$1" link set lo up; }
delete_ns() { ip netns pids "$1" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del "$1" 2>/dev/null || true; }   # its daemons are stopped already
helper() { local ns=$1; shift; ip netns exec "$ns" timeout --foreground "$STEP_TIMEOUT" python3 "$HELPER" --port "$PORT" "$@"; }
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.4f", b - a}'; }

# start_tund NS DB NAME: tund under its supervisor (scale.py supervise, a child of this shell), ready;
# sets TUND_PID, SUPERVISOR and READY_S (seconds from the process start to /readyz 200).
start_tund() {
    local ns=$1 db=$2 name=$3 result="$OUT/$3.ready.json"
    rm -f "$result"
    # shellcheck disable=SC2086
    ip netns exec "$ns" python3 "$HELPER" supervise --port "$PORT" --result "$result" --log "$OUT/$name.log" \
        --deadline "$STEP_TIMEOUT" -- "$TUND_BIN" --listen "127.0.0.1:$PORT" --database "$db" \
        --max-devices $((N + 64)) --max-body-bytes $((N * 256 + 65536)) --connection-timeout "$STEP_TIMEOUT" $TUND_ARGS &
    SUPERVISOR=$!
    until [[ -e "$result" ]]; do
        kill -0 "$SUPERVISOR" 2>/dev/null || { wait "$SUPERVISOR" || true; tail -5 "$OUT/$name.log" >&2; die "tund ($name) did not become ready"; }
        sleep 0.05
    done
    TUND_PID=$(jq -r .pid "$result")
    READY_S=$(jq -r .ready_s "$result")
}

# stop_tund SIGNAL: TERM (bounded: KILL after 30 s) or KILL, then reap its supervisor.
stop_tund() {
    kill -"$1" "$TUND_PID" 2>/dev/null || true
    local waited=0
    while kill -0 "$TUND_PID" 2>/dev/null && (( waited < 300 )); do sleep 0.1; waited=$((waited + 1)); done
    kill -KILL "$TUND_PID" 2>/dev/null || true
    wait "$SUPERVISOR" 2>/dev/null || true
}

# expect_devices NS N: the kernel (ip -j) has exactly the N devices, each with its address and route.
expect_devices() { helper "$1" kernel --n "$2" > /dev/null || die "kernel state in $1 is not the expected $2 devices"; }
api_count() { helper "$1" probe --pid "$TUND_PID" --repeat 1 | jq -r .devices; }

declare -A R   # this size's results
rate() { if [[ -n "${2:-}" ]]; then awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}'; else echo "-"; fi; }

phase_post() {  # single POSTs, then single DELETEs
    local ns="$NS_PREFIX-$N-post" result
    new_ns "$ns"
    start_tund "$ns" "$OUT/post-$N.db" "post-$N"
    result=$(helper "$ns" post --n "$N" --deadline "$POST_DEADLINE") || die "POST x$N failed"
    R[post_done]=$(jq -r .done <<<"$result"); R[post_s]=$(jq -r .seconds <<<"$result")
    log "N=$N POST: ${R[post_done]} devices in ${R[post_s]} s"
    if [[ "${R[post_done]}" == "$N" ]]; then
        expect_devices "$ns" "$N"
        if (( N <= SINGLE_DELETE_MAX )); then
            result=$(helper "$ns" delete --n "$N") || die "DELETE x$N failed"
            R[delete1_s]=$(jq -r .seconds <<<"$result")
            expect_devices "$ns" 0
            log "N=$N single DELETEs: ${R[delete1_s]} s"
        fi
    fi
    stop_tund TERM
}

phase_put() {  # one PUT, restart (re-attach), fresh namespace (re-create), PUT of none
    local ns="$NS_PREFIX-$N-put" fresh="$NS_PREFIX-$N-fresh" db="$OUT/put-$N.db" result
    new_ns "$ns"
    start_tund "$ns" "$db" "put-$N"
    result=$(helper "$ns" probe --pid "$TUND_PID" --repeat 1) || die "probe failed"
    R[rss0_kib]=$(jq -r .rss_kib <<<"$result"); R[threads0]=$(jq -r .threads <<<"$result")
    result=$(helper "$ns" put --n "$N") || die "PUT /devices of $N failed"
    if [[ $(jq -r '.unsupported // false' <<<"$result") == true ]]; then
        R[put_note]="this tund has no PUT /devices (405): devices made with single POSTs, no apply or delete-all figures"
        helper "$ns" post --n "$N" --deadline "$STEP_TIMEOUT" > /dev/null || die "POST x$N failed"
    else
        [[ $(jq -r .create <<<"$result") == "$N" ]] || die "PUT /devices created $(jq -r .create <<<"$result") of $N: $result"
        R[put_s]=$(jq -r .seconds <<<"$result")
        log "N=$N PUT: $N devices in ${R[put_s]} s ($(jq -r .body_bytes <<<"$result") bytes)"
    fi
    expect_devices "$ns" "$N"
    result=$(helper "$ns" probe --pid "$TUND_PID" --repeat 5) || die "probe failed"
    [[ $(jq -r .devices <<<"$result") == "$N" ]] || die "GET /devices lists $(jq -r .devices <<<"$result"), expected $N"
    R[get_devices_ms]=$(jq -r .get_devices_ms <<<"$result"); R[get_metrics_ms]=$(jq -r .get_metrics_ms <<<"$result")
    R[threads]=$(jq -r .threads <<<"$result"); R[rss_kib]=$(jq -r .rss_kib <<<"$result"); R[fds]=$(jq -r .fds <<<"$result")
    log "N=$N probe: $result"

    stop_tund KILL
    start_tund "$ns" "$db" "put-$N-restart"
    R[restart_s]=$READY_S
    [[ $(api_count "$ns") == "$N" ]] || die "after the restart tund lists other than $N devices"
    expect_devices "$ns" "$N"
    log "N=$N restart (re-attach) to ready: $READY_S s"

    stop_tund KILL
    new_ns "$fresh"
    start_tund "$fresh" "$db" "put-$N-fresh"
    R[fresh_s]=$READY_S
    expect_devices "$fresh" "$N"
    log "N=$N fresh namespace (re-create) to ready: $READY_S s"

    if [[ -z "${R[put_note]:-}" ]]; then
        result=$(helper "$fresh" put --n 0) || die "PUT /devices of none failed"
        [[ $(jq -r .delete <<<"$result") == "$N" ]] || die "PUT of none deleted $(jq -r .delete <<<"$result") of $N"
        R[delete_all_s]=$(jq -r .seconds <<<"$result")
        expect_devices "$fresh" 0
        log "N=$N PUT of none (delete all): ${R[delete_all_s]} s"
    fi
    stop_tund TERM
}

phase_ip() {  # the same N with ip -batch: create, then link del in chunks within IP_DELETE_BUDGET
    local ns="$NS_PREFIX-$N-ip" t0 start chunk deleted=0 spent=0
    new_ns "$ns"
    python3 "$HELPER" batch --n "$N" > "$OUT/create-$N.batch"
    t0=$EPOCHREALTIME
    timeout --foreground "$STEP_TIMEOUT" ip -n "$ns" -batch "$OUT/create-$N.batch" || die "ip -batch create failed"
    R[ip_create_s]=$(seconds_since "$t0")
    expect_devices "$ns" "$N"
    log "N=$N ip -batch create: ${R[ip_create_s]} s"
    start=$EPOCHREALTIME
    while (( deleted < N )) && awk -v s="$spent" -v b="$IP_DELETE_BUDGET" 'BEGIN {exit !(s < b)}'; do
        chunk=$(( N - deleted < 250 ? N - deleted : 250 ))
        for ((i = deleted; i < deleted + chunk; i++)); do echo "link del sc$i"; done > "$OUT/delete.batch"
        timeout --foreground "$STEP_TIMEOUT" ip -n "$ns" -batch "$OUT/delete.batch" || die "ip -batch delete failed"
        deleted=$((deleted + chunk))
        spent=$(seconds_since "$start")
    done
    R[ip_deleted]=$deleted; R[ip_delete_s]=$spent
    (( deleted < N )) || expect_devices "$ns" 0
    log "N=$N ip -batch link del: $deleted devices in $spent s"
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); host: $(uname -srm), $(nproc) CPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "tund: $TUND_BIN, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(ip -V); descriptors: $FD_LIMIT"
    echo "SIZES='$SIZES' POST_DEADLINE=$POST_DEADLINE IP_DELETE_BUDGET=$IP_DELETE_BUDGET SINGLE_DELETE_MAX=$SINGLE_DELETE_MAX TUND_ARGS='$TUND_ARGS'"
} | tee "$OUT/meta.txt"
echo

HEADER=$(printf '%6s %11s %10s %10s %10s %10s %10s %8s %8s %7s %8s %11s %11s' \
    N "post dev/s" "put dev/s" "restart s" "fresh s" "put[] s" "delete s" "GET /dev" "GET /met" threads "RSS MiB" "ipb add/s" "ipb del/s")
ROWS=()
NOTES=()
declare -A PER_DEVICE_MS   # "post N" etc -> ms per device
for N in $SIZES; do
    R=()
    if (( FD_LIMIT < N + 1024 )); then
        NOTES+=("N=$N skipped: the descriptor limit ($FD_LIMIT) is below N + 1024 (each device holds one)")
        continue
    fi
    SECONDS=0
    phase_post
    phase_put
    phase_ip
    for ns in $(ip netns list | awk '{print $1}' | grep "^$NS_PREFIX-$N-" || true); do delete_ns "$ns"; done
    rm -f "$OUT"/*-"$N".db*

    post_rate=$(rate "${R[post_done]}" "${R[post_s]}")
    (( R[post_done] < N )) && { post_rate="$post_rate*"; NOTES+=("N=$N post*: POST_DEADLINE ${POST_DEADLINE}s reached after ${R[post_done]} of $N devices; the rate is of those"); }
    ipdel_rate=$(rate "${R[ip_deleted]}" "${R[ip_delete_s]}")
    (( R[ip_deleted] < N )) && { ipdel_rate="$ipdel_rate*"; NOTES+=("N=$N ipb del/s*: IP_DELETE_BUDGET ${IP_DELETE_BUDGET}s reached after ${R[ip_deleted]} of $N deletions (the rest went with the namespace); the rate is of those"); }
    [[ -n "${R[put_note]:-}" ]] && NOTES+=("N=$N: ${R[put_note]}")
    (( N > SINGLE_DELETE_MAX )) && NOTES+=("N=$N delete s: single DELETEs skipped above SINGLE_DELETE_MAX=$SINGLE_DELETE_MAX (about 20 ms each, bound by the kernel)")
    PER_DEVICE_MS["post $N"]=$(awk -v n="${R[post_done]}" -v s="${R[post_s]}" 'BEGIN {printf "%.3f", 1000 * s / n}')
    [[ -n "${R[put_s]:-}" ]] && PER_DEVICE_MS["put $N"]=$(awk -v n="$N" -v s="${R[put_s]}" 'BEGIN {printf "%.3f", 1000 * s / n}')
    PER_DEVICE_MS["ipb $N"]=$(awk -v n="$N" -v s="${R[ip_create_s]}" 'BEGIN {printf "%.3f", 1000 * s / n}')
    row=$(printf '%6s %11s %10s %10s %10s %10s %10s %8s %8s %7s %8s %11s %11s' "$N" "$post_rate" \
        "$(rate "$N" "${R[put_s]:-}")" "${R[restart_s]}" "${R[fresh_s]}" "${R[delete_all_s]:--}" "${R[delete1_s]:--}" \
        "${R[get_devices_ms]}" "${R[get_metrics_ms]}" "${R[threads]}" "$(awk -v k="${R[rss_kib]}" 'BEGIN {printf "%.1f", k / 1024}')" \
        "$(rate "$N" "${R[ip_create_s]}")" "$ipdel_rate")
    ROWS+=("$row")
    printf '%s\n' "N=$N $(declare -p R)" >> "$OUT/results.txt"
    log "N=$N done in ${SECONDS}s (idle daemon: ${R[threads0]} threads, $((R[rss0_kib] / 1024)) MiB; with N: ${R[fds]} descriptors)"
    echo "$HEADER"; printf '%s\n' "${ROWS[@]}"; echo
done

echo "$HEADER" | tee "$OUT/table.txt"
printf '%s\n' "${ROWS[@]}" | tee -a "$OUT/table.txt"
echo
echo "post/put dev/s: devices created per second by N single POSTs on one keep-alive connection / by one PUT /devices"
echo "restart s: SIGKILL, start, /readyz 200 (re-attach); fresh s: same database, new empty namespace (re-create)"
echo "put[] s: one PUT {\"devices\":[]} deleting all N; delete s: N single DELETEs; GET: median ms of 5 on one connection"
echo "threads, RSS: tund's, from /proc/PID/status with N devices; ipb: ip -batch in its own namespace (tuntap add, link set up, addr add, route add / link del)"
for note in "${NOTES[@]}"; do echo "$note"; done
first=${SIZES%% *}; last=${SIZES##* }
if [[ "$first" != "$last" ]]; then
    line="per-device create cost, N=$last vs N=$first:"
    for kind in post put ipb; do
        a=${PER_DEVICE_MS["$kind $first"]:-}; b=${PER_DEVICE_MS["$kind $last"]:-}
        [[ -n "$a" && -n "$b" ]] && line+=" $kind $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx (%.3f -> %.3f ms)", b / a, a, b}');"
    done
    echo "${line%;}"
fi
echo "logs: $OUT"
