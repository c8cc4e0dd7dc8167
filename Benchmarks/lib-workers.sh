#!/bin/bash
# Helpers for Benchmarks/workers.sh (sourced, not run). See Benchmarks/README.md, "Worker benchmarks".
#
# SAFETY: every namespace made here is named "$NS_PREFIX-*" (NS_PREFIX=wb-<pid of workers.sh>); every device,
# address and route lives inside one of them. Nothing is configured in the machine's own namespace. Teardown
# kills the processes inside a namespace by pid (`ip netns pids`: SIGTERM, then SIGKILL) before deleting it.
# Every process started here runs under `timeout`.

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "workers.sh: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# Namespaces

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

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
    ns_exists "$1" || return 0
    kill_ns_processes "$1"
    ip netns del "$1" 2>/dev/null || log "WARNING: could not delete namespace $1"
}

# All namespaces of this run (and of earlier runs of this script whose process is gone).
delete_all_ns() {
    local ns owner
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^wb-' || true); do
        if [[ "$ns" == "$NS_PREFIX"-* ]]; then
            delete_ns "$ns"
        elif [[ "$ns" =~ ^wb-([0-9]+)- ]]; then
            owner=${BASH_REMATCH[1]}
            kill -0 "$owner" 2>/dev/null || { log "removing stale namespace $ns (its run $owner is gone)"; delete_ns "$ns"; }
        fi
    done
}

# A fresh namespace: lo up, IPv6 off (new tun devices then send no RS/MLD, so the counters see only the load,
# and socat's connected UDP socket is not killed by an early ICMP port-unreachable).
new_ns() {  # NS
    delete_ns "$1"
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# Two namespaces $NS_A / $NS_B joined by a veth pair va (10.201.0.1/24) <-> vb (10.201.0.2/24). The pair is
# created inside NS_A with its peer moved straight into NS_B.
veth_pair() {
    new_ns "$NS_A"; new_ns "$NS_B"
    ip -n "$NS_A" link add va type veth peer name vb netns "$NS_B"
    ip -n "$NS_A" addr add 10.201.0.1/24 dev va
    ip -n "$NS_B" addr add 10.201.0.2/24 dev vb
    ip -n "$NS_A" link set va up
    ip -n "$NS_B" link set vb up
    sleep 0.3
}

# Pids of the processes in NS whose command name is COMM.
ns_pids_named() {  # NS COMM
    local p
    for p in $(ip netns pids "$1" 2>/dev/null); do
        [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "$2" ]] && echo "$p"
    done
    return 0
}

# ---------------------------------------------------------------------------------------------------------
# CPU time, in ns, from the scheduler's own accounting (/proc/PID/task/TID/schedstat, first field =
# sum_exec_runtime). getrusage()/stat are tick-based; schedstat is exact.

# FIELD 1 = time on the CPU, FIELD 2 = time spent runnable but waiting for a CPU (run-queue delay).
# Sum over every thread of every pid given.
sched_pids() {  # FIELD PID...
    local f=$1 p t sum=0 a b
    shift
    for p in "$@"; do
        for t in /proc/"$p"/task/*; do
            read -r a b _ 2>/dev/null < "$t/schedstat" || continue
            if [[ "$f" == 1 ]]; then sum=$((sum + a)); else sum=$((sum + b)); fi
        done
    done
    echo "$sum"
}

# Sum over the given thread ids of process PID.
sched_tids() {  # FIELD PID TID...
    local f=$1 p=$2 t sum=0 a b
    shift 2
    for t in "$@"; do
        read -r a b _ 2>/dev/null < "/proc/$p/task/$t/schedstat" || continue
        if [[ "$f" == 1 ]]; then sum=$((sum + a)); else sum=$((sum + b)); fi
    done
    echo "$sum"
}

cpu_ns_pids() { sched_pids 1 "$@"; }
cpu_ns_tids() { sched_tids 1 "$@"; }

tids_of() { ls "/proc/$1/task" 2>/dev/null | sort -n; }

# ---------------------------------------------------------------------------------------------------------
# tund

# Starts tund in NS with a fresh database under DIR; sets TUND_PID (the tund process itself, not timeout).
tund_start() {  # NS DIR
    local ns=$1 dir=$2 i
    mkdir -p "$dir"
    rm -f "$dir"/tund.db*
    ip netns exec "$ns" timeout -k 5 "$TUND_LIFETIME" "${TUND_WRAP[@]}" "$TUND" --listen "127.0.0.1:$TUND_PORT" \
        --database "$dir/tund.db" $TUND_ARGS > "$dir/tund.log" 2>&1 &
    for ((i = 0; i < 100; i++)); do
        if [[ "$(api "$ns" GET /readyz -o /dev/null -w '%{http_code}' 2>/dev/null)" == 200 ]]; then
            TUND_PID=$(ns_pids_named "$ns" "$(basename "$TUND")" | head -1)
            [[ -n "$TUND_PID" ]] || die "tund answers in $ns but its pid was not found"
            return 0
        fi
        sleep 0.1
    done
    cat "$dir/tund.log" >&2
    die "tund did not become ready in $ns within 10 s (log: $dir/tund.log)"
}

# curl against tund in NS: api NS METHOD PATH [curl args...]
api() {
    local ns=$1 method=$2 path=$3
    shift 3
    ip netns exec "$ns" curl -sS --max-time 5 -X "$method" "http://127.0.0.1:$TUND_PORT$path" "$@"
}

# POST /devices with BODY; dies unless 201.
tund_create() {  # NS BODY LOGDIR
    local code
    code=$(api "$1" POST /devices -H 'Content-Type: application/json' -d "$2" -o "$3/create.json" -w '%{http_code}')
    [[ "$code" == 201 ]] || { cat "$3/create.json" >&2; die "POST /devices in $1 answered $code for $2"; }
}

tund_stats() { api "$1" GET "/devices/$2/stats"; }  # NS DEV

# Errors and warnings in a tund log (anything not level=info / level=debug).
tund_log_problems() {  # LOG
    grep -v -E 'level=(info|debug)' "$1" 2>/dev/null | head -20 || true
}

# ---------------------------------------------------------------------------------------------------------
# Kernel counters

# UDP datagrams dropped because a socket's receive buffer was full, in NS (all sockets of the namespace).
udp_rcvbuf_errors() {  # NS
    ip netns exec "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

tx_dropped() { ip -n "$1" -s -j link show "$2" | jq '.[0].stats64.tx.dropped'; }  # NS DEV

# ---------------------------------------------------------------------------------------------------------
# Raw data: one line per measurement in $OUT/raw.tsv: section variant candidate run metric value

record() {  # SECTION VARIANT CANDIDATE RUN METRIC VALUE
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$OUT/raw.tsv"
}

# Rotates the words of LIST left by N: rotate 1 "a b c" -> "b c a" (the order of candidates in run N).
rotate() {  # N LIST...
    local n=$1
    shift
    local -a items=("$@")
    local k=${#items[@]} i out=()
    for ((i = 0; i < k; i++)); do out+=("${items[(i + n) % k]}"); done
    echo "${out[@]}"
}

# ---------------------------------------------------------------------------------------------------------
# iperf3 (server in NS_B bound to ADDR, client in NS_A), one run each, JSON kept.

IPERF_PORT=5201

iperf_server() {  # NS ADDR
    ip netns exec "$1" timeout -k 2 $((DUR + 30)) iperf3 -s -1 -B "$2" -p "$IPERF_PORT" > /dev/null 2>&1 &
    IPERF_SRV=$!
    sleep 0.5
}

iperf_client() {  # NS ADDR JSONFILE ARGS...
    local ns=$1 addr=$2 json=$3
    shift 3
    ip netns exec "$ns" timeout --foreground -k 2 $((DUR + 20)) iperf3 -c "$addr" -p "$IPERF_PORT" -t "$DUR" -J "$@" \
        > "$json" 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do kill -0 "$IPERF_SRV" 2>/dev/null || break; sleep 0.1; done
    kill "$IPERF_SRV" 2>/dev/null || true      # a server whose client never came (its timeout would end it too)
    wait "$IPERF_SRV" 2>/dev/null || true
}

# ping COUNT packets at INTERVAL from NS to ADDR; records rtt_p50_us / rtt_p99_us / rtt_avg_us / loss_pct.
ping_rtt() {  # NS ADDR OUTFILE SECTION VARIANT CANDIDATE RUN
    local ns=$1 addr=$2 file=$3
    ip netns exec "$ns" timeout --foreground -k 2 $((PING_COUNT / 50 + 15)) \
        ping -n -c "$PING_COUNT" -i "$PING_INTERVAL" -W 1 "$addr" > "$file" 2>&1 || true
    python3 - "$file" <<'EOF' | while read -r metric value; do record "$4" "$5" "$6" "$7" "$metric" "$value"; done
import re, statistics, sys
text = open(sys.argv[1]).read()
rtts = sorted(float(x) * 1000 for x in re.findall(r"time=([0-9.]+) ms", text))
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
if rtts:
    print("rtt_p50_us", round(statistics.median(rtts), 1))
    print("rtt_p99_us", round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))], 1))
    print("rtt_avg_us", round(sum(rtts) / len(rtts), 1))
if m:
    sent, got = int(m.group(1)), int(m.group(2))
    print("ping_loss_pct", round(100.0 * (sent - got) / sent, 2) if sent else 100)
EOF
}
