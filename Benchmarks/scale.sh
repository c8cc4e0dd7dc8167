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
#   knobs: SIZES ("100 1000 10000"), TUND_BIN (skip the build), STEP_BUDGET (80 s: what each step of
#          tund's may take -- the POSTs, a PUT, a start to ready; single POSTs stop there and show the rate
#          of those made, a PUT or a start that takes longer shows ">80" and the steps that need it are
#          skipped, saying why), IP_DELETE_BUDGET (45 s: `ip -batch link del` runs in chunks of 250 until
#          then), SINGLE_DELETE_MAX (1000), OUT_DIR (/tmp/tund-bench), TUND_ARGS (extra tund flags).
#          With the defaults a size takes at most about 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 python3 jq coreutils util-linux
(( EUID == 0 )) || { echo "run as root (creates network namespaces)" >&2; exit 1; }

SIZES=${SIZES:-100 1000 10000}
PORT=${PORT:-18180}
STEP_BUDGET=${STEP_BUDGET:-80}
IP_DELETE_BUDGET=${IP_DELETE_BUDGET:-45}
SINGLE_DELETE_MAX=${SINGLE_DELETE_MAX:-1000}
STEP_TIMEOUT=$((STEP_BUDGET + 120))   # a hard stop for any one helper or ip call
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

# start_tund NS DB NAME: tund under its supervisor (scale.py supervise, a child of this shell), ready
# within STEP_BUDGET; sets TUND_PID, SUPERVISOR and READY_S (seconds from the process start to /readyz
# 200). Status 1 when it was not ready in time: the supervisor has killed and reaped it.
start_tund() {
    local ns=$1 db=$2 name=$3 result="$OUT/$3.ready.json"
    rm -f "$result"
    # shellcheck disable=SC2086
    ip netns exec "$ns" python3 "$HELPER" supervise --port "$PORT" --result "$result" --log "$OUT/$name.log" \
        --deadline "$STEP_BUDGET" -- "$TUND_BIN" --listen "127.0.0.1:$PORT" --database "$db" \
        --max-devices $((N + 64)) --max-body-bytes $((N * 256 + 65536)) --connection-timeout "$STEP_TIMEOUT" $TUND_ARGS &
    SUPERVISOR=$!
    until [[ -e "$result" ]]; do
        if ! kill -0 "$SUPERVISOR" 2>/dev/null; then
            wait "$SUPERVISOR" || true
            log "tund ($name) was not ready within ${STEP_BUDGET}s: $(tail -1 "$OUT/$name.log" | cut -c1-200)"
            return 1
        fi
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
# rate COUNT SECONDS: devices per second; "<R" for a step over its budget (">B" seconds), "-" for none.
rate() {
    case "${2:-}" in
        "") echo "-" ;;
        ">"*) awk -v n="$1" -v s="${2#>}" 'BEGIN {printf "<%.0f", n / s}' ;;
        *) awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}' ;;
    esac
}
# per_device_ms COUNT SECONDS: ms per device, nothing when not measured.
per_device_ms() { [[ "${2:-}" =~ ^[0-9.]+$ ]] && awk -v n="$1" -v s="$2" 'BEGIN {printf "%.3f", 1000 * s / n}' || true; }

phase_post() {  # single POSTs, then single DELETEs
    local ns="$NS_PREFIX-$N-post" result
    new_ns "$ns"
    start_tund "$ns" "$OUT/post-$N.db" "post-$N" || die "a tund with no devices did not start"
    result=$(helper "$ns" post --n "$N" --deadline "$STEP_BUDGET") || die "POST x$N failed"
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

# put_all NS COUNT: one PUT /devices of sc0..sc(COUNT-1) within STEP_BUDGET; sets R[KEY] (seconds, or
# ">BUDGET"). Status 1 (tund then killed) when it took longer, 2 when this tund has no PUT /devices.
put_all() {
    local ns=$1 count=$2 key=$3 result
    result=$(helper "$ns" put --n "$count" --deadline "$STEP_BUDGET") || die "PUT /devices of $count failed"
    if [[ $(jq -r '.unsupported // false' <<<"$result") == true ]]; then return 2; fi
    if [[ $(jq -r '.timed_out // false' <<<"$result") == true ]]; then
        R[$key]=">$STEP_BUDGET"; stop_tund KILL; return 1
    fi
    local expected=create; (( count == 0 )) && expected=delete
    [[ $(jq -r ".$expected" <<<"$result") == "$N" ]] || die "PUT /devices: $expected $(jq -r ".$expected" <<<"$result") of $N: $result"
    R[$key]=$(jq -r .seconds <<<"$result")
    log "N=$N PUT of $count: ${R[$key]} s ($(jq -r .body_bytes <<<"$result") bytes)"
}

phase_put() {  # one PUT, restart (re-attach), fresh namespace (re-create), PUT of none
    local ns="$NS_PREFIX-$N-put" fresh="$NS_PREFIX-$N-fresh" db="$OUT/put-$N.db" result status=0
    new_ns "$ns"
    start_tund "$ns" "$db" "put-$N" || die "a tund with no devices did not start"
    result=$(helper "$ns" probe --pid "$TUND_PID" --repeat 1) || die "probe failed"
    R[rss0_kib]=$(jq -r .rss_kib <<<"$result"); R[threads0]=$(jq -r .threads <<<"$result")
    put_all "$ns" "$N" put_s || status=$?
    if (( status == 2 )); then
        NOTES+=("N=$N: this tund has no PUT /devices (405): its devices were made with single POSTs; no put or put[] figures")
        result=$(helper "$ns" post --n "$N" --deadline "$STEP_BUDGET") || die "POST x$N failed"
        if [[ $(jq -r .complete <<<"$result") != true ]]; then
            NOTES+=("N=$N: restart, fresh, GET, threads and RSS not measured: the POSTs standing in for PUT took over ${STEP_BUDGET}s")
            stop_tund KILL; return 0
        fi
    elif (( status == 1 )); then
        NOTES+=("N=$N: the PUT of $N took over ${STEP_BUDGET}s; restart, fresh, put[], GET, threads and RSS not measured")
        return 0
    fi
    expect_devices "$ns" "$N"
    result=$(helper "$ns" probe --pid "$TUND_PID" --repeat 5) || die "probe failed"
    [[ $(jq -r .devices <<<"$result") == "$N" ]] || die "GET /devices lists $(jq -r .devices <<<"$result"), expected $N"
    R[get_devices_ms]=$(jq -r .get_devices_ms <<<"$result"); R[get_metrics_ms]=$(jq -r .get_metrics_ms <<<"$result")
    R[threads]=$(jq -r .threads <<<"$result"); R[rss_kib]=$(jq -r .rss_kib <<<"$result"); R[fds]=$(jq -r .fds <<<"$result")
    log "N=$N probe: $result"

    stop_tund KILL
    if start_tund "$ns" "$db" "put-$N-restart"; then
        R[restart_s]=$READY_S
        [[ $(api_count "$ns") == "$N" ]] || die "after the restart tund lists other than $N devices"
        expect_devices "$ns" "$N"
        log "N=$N restart (re-attach) to ready: $READY_S s"
        stop_tund KILL
    else
        R[restart_s]=">$STEP_BUDGET"
    fi

    new_ns "$fresh"
    if ! start_tund "$fresh" "$db" "put-$N-fresh"; then
        R[fresh_s]=">$STEP_BUDGET"
        (( status == 0 )) && NOTES+=("N=$N put[] not measured: the fresh daemon was not ready within ${STEP_BUDGET}s")
        return 0
    fi
    R[fresh_s]=$READY_S
    expect_devices "$fresh" "$N"
    log "N=$N fresh namespace (re-create) to ready: $READY_S s"
    if (( status == 0 )); then
        put_all "$fresh" 0 delete_all_s && expect_devices "$fresh" 0 || true
    fi
    [[ "${R[delete_all_s]:-}" == ">"* ]] || stop_tund TERM
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
    echo "SIZES='$SIZES' STEP_BUDGET=$STEP_BUDGET IP_DELETE_BUDGET=$IP_DELETE_BUDGET SINGLE_DELETE_MAX=$SINGLE_DELETE_MAX TUND_ARGS='$TUND_ARGS'"
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
    (( R[post_done] < N )) && { post_rate="$post_rate*"; NOTES+=("N=$N post*: STEP_BUDGET ${STEP_BUDGET}s reached after ${R[post_done]} of $N devices; the rate is of those"); }
    ipdel_rate=$(rate "${R[ip_deleted]}" "${R[ip_delete_s]}")
    (( R[ip_deleted] < N )) && { ipdel_rate="$ipdel_rate*"; NOTES+=("N=$N ipb del/s*: IP_DELETE_BUDGET ${IP_DELETE_BUDGET}s reached after ${R[ip_deleted]} of $N deletions (the rest went with the namespace); the rate is of those"); }
    (( N > SINGLE_DELETE_MAX )) && NOTES+=("N=$N delete s: single DELETEs skipped above SINGLE_DELETE_MAX=$SINGLE_DELETE_MAX (about 20 ms each, bound by the kernel)")
    PER_DEVICE_MS["post $N"]=$(per_device_ms "${R[post_done]}" "${R[post_s]}")
    PER_DEVICE_MS["put $N"]=$(per_device_ms "$N" "${R[put_s]:-}")
    PER_DEVICE_MS["ipb $N"]=$(per_device_ms "$N" "${R[ip_create_s]}")
    rss_mib=-; [[ -n "${R[rss_kib]:-}" ]] && rss_mib=$(awk -v k="${R[rss_kib]}" 'BEGIN {printf "%.1f", k / 1024}')
    row=$(printf '%6s %11s %10s %10s %10s %10s %10s %8s %8s %7s %8s %11s %11s' "$N" "$post_rate" \
        "$(rate "$N" "${R[put_s]:-}")" "${R[restart_s]:--}" "${R[fresh_s]:--}" "${R[delete_all_s]:--}" "${R[delete1_s]:--}" \
        "${R[get_devices_ms]:--}" "${R[get_metrics_ms]:--}" "${R[threads]:--}" "$rss_mib" \
        "$(rate "$N" "${R[ip_create_s]}")" "$ipdel_rate")
    ROWS+=("$row")
    printf '%s\n' "N=$N $(declare -p R)" >> "$OUT/results.txt"
    log "N=$N done in ${SECONDS}s (idle daemon: ${R[threads0]} threads, $((R[rss0_kib] / 1024)) MiB; with N: ${R[fds]:--} descriptors)"
    echo "$HEADER"; printf '%s\n' "${ROWS[@]}"; echo
done

echo "$HEADER" | tee "$OUT/table.txt"
printf '%s\n' "${ROWS[@]}" | tee -a "$OUT/table.txt"
echo
echo "post/put dev/s: devices created per second by N single POSTs on one keep-alive connection / by one PUT /devices"
echo "restart s: SIGKILL, start, /readyz 200 (re-attach); fresh s: same database, new empty namespace (re-create); >B: over the step budget"
echo "put[] s: one PUT {\"devices\":[]} deleting all N; delete s: N single DELETEs; GET: median ms of 5 on one connection"
echo "threads, RSS: tund's, from /proc/PID/status with N devices; ipb: ip -batch in its own namespace (tuntap add, link set up, addr add, route add / link del)"
for note in "${NOTES[@]}"; do echo "$note"; done
first=${SIZES%% *}; last=${SIZES##* }
if [[ "$first" != "$last" ]]; then
    line="per-device create cost, N=$last vs N=$first:"
    for kind in post put ipb; do
        a=${PER_DEVICE_MS["$kind $first"]:-}; b=${PER_DEVICE_MS["$kind $last"]:-}   # post: of those made within the budget
        [[ -n "$a" && -n "$b" ]] && line+=" $kind $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx (%.3f -> %.3f ms)", b / a, a, b}');"
    done
    echo "${line%;}"
fi
echo "logs: $OUT"
