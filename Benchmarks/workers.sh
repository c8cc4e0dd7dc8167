#!/bin/bash
# Packet-worker benchmark (run by hand, not by CI): tund's workers against baselines, interleaved in the
# same run, printed as one table with ratios. Everything it needs is in this repository (the C baselines in
# Benchmarks/baselines/) or installed from Debian by this script. See Benchmarks/README.md, "Worker benchmarks".
#
#   1. count    tund `count` mode vs a minimal C read() loop (tunread) on a tun fed by the same UDP flood
#               (udpflood: sendmmsg, 64-byte payload, FLOWS flows, DUR s): packets read per second, the tun's
#               tx_dropped, CPU ns per packet. Variants sq (1 queue) and mq2 (2 queues, IFF_MULTI_QUEUE).
#   2. tunnel   two tund daemons in `tunnel` mode (UDP over a veth 10.201.0.1 <-> 10.201.0.2) vs socat's
#               TUN<->UDP tunnel vs OpenVPN 2.6 p2p without crypto, with the bare veth as the ceiling:
#               iperf3 TCP (-t DUR), iperf3 UDP 64-byte (-u -l 64 -b 0), ping RTT through the tunnel, and
#               the tunnel processes' CPU.
#   3. ping     RTT of ping through tund's `responder` vs the bare veth and loopback.
#
#   usage: Benchmarks/workers.sh            (as root; RUNS=3 DUR=10 by default, ~10 min)
#
# Knobs (env): RUNS (3), DUR (10 s per load run), SECTIONS ("count tunnel ping"), COUNT_VARIANTS ("sq mq2"),
# TUNNEL_CANDIDATES ("veth tund tund-offload socat openvpn"), FLOWS (8), BATCH (64), PIN=1 (load generator on CPU 0,
# tund / tunread on CPU 1), TUNNEL_MTU (1472 for tund and socat: 1500 - 28, no underlay fragmentation),
# OVPN_EXTRA (extra openvpn options), PING_COUNT (200), PING_INTERVAL (0.01), FLOOD_COUNT (100000, at most 20 s),
# TUND_BIN (skip the build), TUND_ARGS (extra tund arguments), OUT_DIR (/tmp/tund-bench).
#
# SAFETY: everything runs inside network namespaces named wb-<pid>-* that this script creates (veth pairs
# between them); nothing is configured in the machine's own namespace. On exit, error, Ctrl-C or SIGTERM
# (trap) the processes inside them are killed by pid (`ip netns pids`) and the namespaces deleted, which
# destroys their tun and veth devices. Every load generator and daemon runs under `timeout`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
BASELINE_C="$HERE/baselines"
RUNS="${RUNS:-3}"
DUR="${DUR:-10}"
SECTIONS="${SECTIONS:-count tunnel ping}"
COUNT_VARIANTS="${COUNT_VARIANTS:-sq mq2}"
TUNNEL_CANDIDATES="${TUNNEL_CANDIDATES:-veth tund tund-offload socat openvpn}"
FLOWS="${FLOWS:-8}"
BATCH="${BATCH:-64}"
PIN="${PIN:-0}"
TUNNEL_MTU="${TUNNEL_MTU:-1472}"
OVPN_EXTRA="${OVPN_EXTRA:-}"
PING_COUNT="${PING_COUNT:-200}"
PING_INTERVAL="${PING_INTERVAL:-0.01}"
FLOOD_COUNT="${FLOOD_COUNT:-100000}"
TUND_ARGS="${TUND_ARGS:-}"
OUT_BASE="${OUT_DIR:-/tmp/tund-bench}"
OUT="$OUT_BASE/workers-$(date +%Y%m%d-%H%M%S)-$$"
NS_PREFIX="wb-$$"
NS_A="$NS_PREFIX-a"
NS_B="$NS_PREFIX-b"
TUND_PORT=18081                        # inside fresh namespaces, always free
TUND_LIFETIME=$((4 * DUR + 120))       # bound on every tund started (one candidate run at most)
TUND_WRAP=()                           # command prefix for tund (taskset with PIN=1)

source "$HERE/lib-workers.sh"

[[ "$RUNS" =~ ^[0-9]+$ ]] && (( RUNS >= 1 && RUNS <= 50 )) || die "RUNS must be 1..50"
[[ "$DUR" =~ ^[0-9]+$ ]] && (( DUR >= 1 && DUR <= 300 )) || die "DUR must be 1..300 seconds"
(( EUID == 0 )) || die "run as root (creates network namespaces, veth pairs and tun devices)"
source "$ROOT/scripts/deps.sh"
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" "${BENCHMARK_PACKAGES[@]}"
for tool in ip jq curl python3 timeout gcc ping taskset iperf3 socat openvpn; do
    command -v "$tool" >/dev/null || die "$tool not found after installing the packages"
done

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    delete_all_ns
    (( rc == 0 )) || echo "workers.sh: FAILED (exit $rc); raw data and logs in $OUT" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT"
: > "$OUT/raw.tsv"
: > "$OUT/problems.txt"
delete_all_ns

# ---------------------------------------------------------------------------------------------------------
# Binaries: tund (copied into OUT so a concurrent rebuild cannot swap it mid-run), the C helpers.

if [[ -z "${TUND_BIN:-}" ]]; then
    log "building tund (swift build -c release --product tund)"
    (cd "$ROOT" && timeout 1800 swift build -c release --product tund >&2)
    TUND_BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/tund"
fi
[[ -x "$TUND_BIN" ]] || die "no tund binary at $TUND_BIN"
TUND="$OUT/tund"
cp "$TUND_BIN" "$TUND"
CBIN="$OUT/bin"
mkdir -p "$CBIN"
gcc -O2 -Wall -pthread -o "$CBIN/tunread" "$BASELINE_C/tunread.c"
gcc -O2 -Wall -o "$CBIN/udpflood" "$BASELINE_C/udpflood.c"

SND_PIN=(); RD_PIN=()
[[ "$PIN" == 1 ]] && { SND_PIN=(taskset -c 0); RD_PIN=(taskset -c 1); }

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -srm), $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "tund: $TUND_BIN ($(date -u -r "$TUND_BIN" '+%Y-%m-%d %H:%M:%S UTC')), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "versions: $(iperf3 --version 2>/dev/null | head -1 | cut -d' ' -f1-2); socat $(socat -V 2>/dev/null | grep -m1 'socat version' | awk '{print $3}'); $(openvpn --version 2>/dev/null | head -1 | cut -d' ' -f1-2)"
    echo "RUNS=$RUNS DUR=$DUR FLOWS=$FLOWS BATCH=$BATCH PIN=$PIN TUNNEL_MTU=$TUNNEL_MTU PING_COUNT=$PING_COUNT PING_INTERVAL=$PING_INTERVAL FLOOD_COUNT=$FLOOD_COUNT TUND_ARGS='$TUND_ARGS' OVPN_EXTRA='$OVPN_EXTRA'"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

problem() { echo "$*" >> "$OUT/problems.txt"; log "PROBLEM: $*"; }

# Checks a tund log for anything above info; records it as a problem.
check_tund_log() {  # LOG WHAT
    local bad
    bad=$(tund_log_problems "$1")
    [[ -z "$bad" ]] || problem "$2: tund log has warnings/errors ($1): $(echo "$bad" | head -3 | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------------------------
# 1. count mode vs the C read loop

count_run() {  # VARIANT CANDIDATE RUN
    local v=$1 c=$2 i=$3 ns="$NS_PREFIX-cnt" dir q=1 mq="" cpu0 cpu1 w0=0 w1=0 r0=0 r1=0 d0 d1 k0 k1 s0 s1
    local read_pkts sender_out sent_pps sent_pkts secs label="count $v $c run $i"
    dir="$OUT/count/$v-$c-run$i"
    mkdir -p "$dir"
    [[ "$v" == mq2 ]] && { q=2; mq=mq; }
    new_ns "$ns"
    case $c in
    tund)
        local before after workers
        TUND_WRAP=("${RD_PIN[@]}")
        tund_start "$ns" "$dir"
        TUND_WRAP=()
        before=$(tids_of "$TUND_PID")
        tund_create "$ns" "{\"name\":\"tun0\",\"type\":\"tun\",\"queues\":$q,\"addresses\":[\"10.203.0.1/24\"],\"worker\":{\"mode\":\"count\"}}" "$dir"
        after=$(tids_of "$TUND_PID")
        # The data plane's threads (tund:plane/N) serve every queue; creating a device adds no thread.
        workers=$(for t in $after; do [[ "$(cat "/proc/$TUND_PID/task/$t/comm" 2>/dev/null)" == tund:plane/* ]] && echo "$t" || true; done | tr '\n' ' ')
        echo "$workers" > "$dir/worker-tids"
        for t in $workers; do echo "$t $(cat "/proc/$TUND_PID/task/$t/comm")"; done > "$dir/worker-threads.txt"
        [[ -n "$workers" ]] || problem "$label: no data-plane threads (tund:plane/N) found"
        [[ -z "$(comm -13 <(echo "$before" | sort) <(echo "$after" | sort))" ]] || problem "$label: creating the device started threads"
        sleep 1
        s0=$(tund_stats "$ns" tun0); echo "$s0" > "$dir/stats0.json"
        d0=$(tx_dropped "$ns" tun0)
        cpu0=$(cpu_ns_pids "$TUND_PID"); w0=$(cpu_ns_tids "$TUND_PID" $workers); r0=$(sched_tids 2 "$TUND_PID" $workers)
        ;;
    c)
        if [[ -n "$mq" ]]; then ip -n "$ns" tuntap add dev tun0 mode tun multi_queue; else ip -n "$ns" tuntap add dev tun0 mode tun; fi
        ip -n "$ns" addr add 10.203.0.1/24 dev tun0
        ip -n "$ns" link set tun0 up
        ip netns exec "$ns" timeout -k 2 $((DUR + 10)) "${RD_PIN[@]}" "$CBIN/tunread" tun0 "$q" $((DUR + 3)) $mq > "$dir/reader.out" 2>&1 &
        local rpid=$!
        sleep 1
        local tpid; tpid=$(ns_pids_named "$ns" tunread | head -1)
        [[ -n "$tpid" ]] || { cat "$dir/reader.out" >&2; die "$label: tunread is not running"; }
        d0=$(tx_dropped "$ns" tun0)
        cpu0=$(cpu_ns_pids "$tpid"); r0=$(sched_pids 2 "$tpid")
        ;;
    esac
    k0=$(ip -n "$ns" -s -j link show tun0 | jq '.[0].stats64.tx.packets')
    ip netns exec "$ns" timeout --foreground -k 2 $((DUR + 5)) "${SND_PIN[@]}" "$CBIN/udpflood" 10.203.0.2 9 64 "$DUR" "$FLOWS" "$BATCH" \
        > "$dir/sender.out" 2>&1 || true
    sleep 0.5                                   # let the reader drain the queue
    sender_out=$(cat "$dir/sender.out")
    sent_pps=$(grep -o 'sent_pps=[0-9]*' <<< "$sender_out" | cut -d= -f2 || true)
    sent_pkts=$(grep -o 'sent_pkts=[0-9]*' <<< "$sender_out" | cut -d= -f2 || true)
    secs=$(grep -o 'secs=[0-9.]*' <<< "$sender_out" | cut -d= -f2 || true)
    [[ -n "$sent_pkts" && -n "$secs" ]] || die "$label: udpflood printed no result: $sender_out"
    case $c in
    tund)
        cpu1=$(cpu_ns_pids "$TUND_PID"); w1=$(cpu_ns_tids "$TUND_PID" $(cat "$dir/worker-tids"))
        r1=$(sched_tids 2 "$TUND_PID" $(cat "$dir/worker-tids"))
        d1=$(tx_dropped "$ns" tun0)
        k1=$(ip -n "$ns" -s -j link show tun0 | jq '.[0].stats64.tx.packets')
        s1=$(tund_stats "$ns" tun0); echo "$s1" > "$dir/stats1.json"
        read_pkts=$(( $(jq '.worker.packets_read' <<< "$s1") - $(jq '.worker.packets_read' <<< "$s0") ))
        local qsum; qsum=$(jq '[.worker.queues[].packets_read] | add' <<< "$s1")
        [[ "$qsum" == "$(jq '.worker.packets_read' <<< "$s1")" ]] || problem "$label: per-queue packets_read ($qsum) != total"
        [[ "$(jq '.worker.read_errors + .worker.dropped' <<< "$s1")" == 0 ]] || problem "$label: read_errors/dropped not 0: $(jq -c '.worker | {read_errors, dropped}' <<< "$s1")"
        [[ "$(jq '.worker.protocols.udp' <<< "$s1")" == "$(jq '.worker.packets_read' <<< "$s1")" ]] || problem "$label: protocols.udp != packets_read"
        record count "$v" "$c" "$i" worker_ns_per_pkt "$(( (w1 - w0) / (read_pkts > 0 ? read_pkts : 1) ))"
        [[ "$q" == 2 ]] && record count "$v" "$c" "$i" queue0_share_pct "$(jq '[.worker.queues[].packets_read] | (.[0] * 100 / add * 10 | round) / 10' <<< "$s1")"
        check_tund_log "$dir/tund.log" "$label"
        ;;
    c)
        cpu1=$(cpu_ns_pids "$tpid"); r1=$(sched_pids 2 "$tpid")
        d1=$(tx_dropped "$ns" tun0)
        k1=$(ip -n "$ns" -s -j link show tun0 | jq '.[0].stats64.tx.packets')
        wait "$rpid" || true
        read_pkts=$(grep -o 'read_pkts=[0-9]*' "$dir/reader.out" | cut -d= -f2 || true)
        [[ -n "$read_pkts" ]] || die "$label: tunread printed no result: $(cat "$dir/reader.out")"
        record count "$v" "$c" "$i" own_ns_per_pkt "$(grep -o 'ns_cpu_per_pkt=[0-9]*' "$dir/reader.out" | cut -d= -f2)"
        record count "$v" "$c" "$i" worker_ns_per_pkt "$(( (cpu1 - cpu0) / (read_pkts > 0 ? read_pkts : 1) ))"
        [[ "$q" == 2 ]] && record count "$v" "$c" "$i" queue0_share_pct "$(grep -o 'queue [0-9]*: pkts=[0-9]*' "$dir/reader.out" | cut -d= -f2 | python3 -c 'import sys; v=[int(x) for x in sys.stdin.read().split()]; print(round(100.0 * v[0] / max(1, sum(v)), 1))')"
        ;;
    esac
    ip -n "$ns" -s link show tun0 > "$dir/iplink.txt"
    # Every packet the tun handed over (kernel tx_packets) must have been read.
    (( k1 - k0 == read_pkts )) || problem "$label: kernel tx_packets delta $((k1 - k0)) != packets read $read_pkts"
    record count "$v" "$c" "$i" sent_pps "$sent_pps"
    record count "$v" "$c" "$i" read_pps "$(python3 -c "print(round($read_pkts / $secs))")"
    record count "$v" "$c" "$i" read_pct "$(python3 -c "print(round(100.0 * $read_pkts / $sent_pkts, 2))")"
    record count "$v" "$c" "$i" tx_dropped_per_s "$(python3 -c "print(round(($d1 - $d0) / $secs))")"
    record count "$v" "$c" "$i" cpu_ns_per_pkt "$(( (cpu1 - cpu0) / (read_pkts > 0 ? read_pkts : 1) ))"
    record count "$v" "$c" "$i" cpu_pct "$(python3 -c "print(round(($cpu1 - $cpu0) / 1e7 / $secs, 1))")"
    record count "$v" "$c" "$i" reader_runq_wait_pct "$(python3 -c "print(round(($r1 - $r0) / 1e7 / $secs, 1))")"
    record count "$v" "$c" "$i" sender_ns_per_pkt "$(grep -o 'ns_cpu_per_pkt=[0-9]*' <<< "$sender_out" | cut -d= -f2 || true)"
    record count "$v" "$c" "$i" loadavg1 "$(cut -d' ' -f1 /proc/loadavg)"
    log "$label: sent $sent_pps pps, read $read_pkts pkts ($(python3 -c "print(round($read_pkts / $secs))") pps), tx_dropped +$((d1 - d0)), CPU $(( (cpu1 - cpu0) / (read_pkts > 0 ? read_pkts : 1) )) ns/pkt"
    delete_ns "$ns"
}

# ---------------------------------------------------------------------------------------------------------
# 2. tunnels between NS_A and NS_B over the veth

tunnel_setup() {  # CANDIDATE DIR; sets TUN_ADDR (the server's tunnel address) and DAEMON_PIDS
    local c=$1 dir=$2 i
    DAEMON_PIDS=()
    case $c in
    veth)
        TUN_ADDR=10.201.0.2; TUN_DEV=""
        ;;
    tund|tund-offload)
        # tund-offload: the same tunnel with "offload": true (TSO/USO super-packets split in the worker, GRO on write).
        local offload=false
        [[ "$c" == tund-offload ]] && offload=true
        TUN_ADDR=10.202.0.2; TUN_DEV=vpn0
        tund_start "$NS_B" "$dir/b"; TUND_PID_B=$TUND_PID
        tund_start "$NS_A" "$dir/a"; TUND_PID_A=$TUND_PID
        tund_create "$NS_B" "{\"name\":\"vpn0\",\"type\":\"tun\",\"mtu\":$TUNNEL_MTU,\"offload\":$offload,\"addresses\":[\"10.202.0.2/24\"],\"worker\":{\"mode\":\"tunnel\",\"local\":\"10.201.0.2:7000\",\"remote\":\"10.201.0.1:7000\"}}" "$dir/b"
        tund_create "$NS_A" "{\"name\":\"vpn0\",\"type\":\"tun\",\"mtu\":$TUNNEL_MTU,\"offload\":$offload,\"addresses\":[\"10.202.0.1/24\"],\"worker\":{\"mode\":\"tunnel\",\"local\":\"10.201.0.1:7000\",\"remote\":\"10.201.0.2:7000\"}}" "$dir/a"
        DAEMON_PIDS=("$TUND_PID_A" "$TUND_PID_B")
        ;;
    socat)
        TUN_ADDR=10.202.0.2; TUN_DEV=wbtun
        local ns local_tun peer local_ul
        for ns in "$NS_B" "$NS_A"; do
            if [[ "$ns" == "$NS_B" ]]; then local_tun=10.202.0.2; peer=10.201.0.1; local_ul=10.201.0.2
            else local_tun=10.202.0.1; peer=10.201.0.2; local_ul=10.201.0.1; fi
            ip netns exec "$ns" timeout -k 2 $((4 * DUR + 90)) socat -b 65536 \
                "TUN:$local_tun/24,tun-name=wbtun,tun-type=tun,iff-no-pi,iff-up" \
                "UDP:$peer:7000,bind=$local_ul:7000" 2> "$dir/socat.$ns.log" &
        done
        sleep 1
        for ns in "$NS_A" "$NS_B"; do
            ip -n "$ns" link show wbtun > /dev/null 2>&1 || { cat "$dir"/socat.*.log >&2; die "socat failed in $ns"; }
            ip -n "$ns" link set wbtun mtu "$TUNNEL_MTU"
            DAEMON_PIDS+=($(ns_pids_named "$ns" socat))
        done
        ;;
    openvpn)
        TUN_ADDR=10.204.0.2; TUN_DEV=wbtun
        ip netns exec "$NS_B" timeout -k 2 $((4 * DUR + 90)) openvpn --dev wbtun --dev-type tun --topology p2p \
            --ifconfig 10.204.0.2 10.204.0.1 --proto udp --local 10.201.0.2 --remote 10.201.0.1 \
            --lport 1194 --rport 1194 --disable-dco --cipher none --auth none --verb 3 $OVPN_EXTRA \
            --log "$dir/openvpn.b.log" > /dev/null 2>&1 &
        ip netns exec "$NS_A" timeout -k 2 $((4 * DUR + 90)) openvpn --dev wbtun --dev-type tun --topology p2p \
            --ifconfig 10.204.0.1 10.204.0.2 --proto udp --local 10.201.0.1 --remote 10.201.0.2 \
            --lport 1194 --rport 1194 --disable-dco --cipher none --auth none --verb 3 $OVPN_EXTRA \
            --log "$dir/openvpn.a.log" > /dev/null 2>&1 &
        for ((i = 0; i < 40; i++)); do
            grep -q 'Initialization Sequence Completed' "$dir/openvpn.a.log" 2>/dev/null &&
                grep -q 'Initialization Sequence Completed' "$dir/openvpn.b.log" 2>/dev/null && break
            sleep 0.25
        done
        for ns in "$NS_A" "$NS_B"; do DAEMON_PIDS+=($(ns_pids_named "$ns" openvpn)); done
        ;;
    esac
}

tunnel_run() {  # CANDIDATE RUN
    local c=$1 i=$2 dir label="tunnel $1 run $2" cpu0 cpu1 json v
    dir="$OUT/tunnel/$c-run$i"
    mkdir -p "$dir"
    veth_pair
    tunnel_setup "$c" "$dir"
    # Reachability first (also fills caches / lets the first packets pass); a dead tunnel is a problem.
    if ! ip netns exec "$NS_A" timeout 10 ping -n -c 3 -i 0.2 -W 2 "$TUN_ADDR" > "$dir/ping-check.txt" 2>&1; then
        problem "$label: $TUN_ADDR not reachable through the tunnel; skipped"
        delete_ns "$NS_A"; delete_ns "$NS_B"
        return 0
    fi
    record tunnel all "$c" "$i" loadavg1 "$(cut -d' ' -f1 /proc/loadavg)"
    ping_rtt "$NS_A" "$TUN_ADDR" "$dir/ping.txt" tunnel all "$c" "$i"

    # TCP
    iperf_server "$NS_B" "$TUN_ADDR"
    cpu0=$(cpu_ns_pids "${DAEMON_PIDS[@]}")
    iperf_client "$NS_A" "$TUN_ADDR" "$dir/tcp.json"
    cpu1=$(cpu_ns_pids "${DAEMON_PIDS[@]}")
    json="$dir/tcp.json"
    v=$(jq -r '.end.sum_received.bits_per_second / 1e9 // empty' "$json" 2>/dev/null || true)
    if [[ -n "$v" ]]; then
        record tunnel all "$c" "$i" tcp_gbps "$(printf '%.4f' "$v")"
        record tunnel all "$c" "$i" tcp_retransmits "$(jq -r '.end.sum_sent.retransmits' "$json")"
        (( ${#DAEMON_PIDS[@]} == 0 )) || record tunnel all "$c" "$i" tcp_daemon_cpu_pct "$(python3 -c "print(round(($cpu1 - $cpu0) / 1e7 / $DUR, 1))")"
    else
        problem "$label: iperf3 TCP gave no result ($(jq -r '.error // "no JSON"' "$json" 2>/dev/null || echo 'no JSON'))"
    fi
    [[ "$c" == tund* ]] && { tund_stats "$NS_A" vpn0 > "$dir/stats-a-tcp.json"; tund_stats "$NS_B" vpn0 > "$dir/stats-b-tcp.json"; }

    # UDP, 64-byte payload, unlimited rate
    iperf_server "$NS_B" "$TUN_ADDR"
    local td0=0 td1=0 rb0 rb1
    [[ -z "$TUN_DEV" ]] || td0=$(tx_dropped "$NS_A" "$TUN_DEV")
    rb0=$(udp_rcvbuf_errors "$NS_B")
    cpu0=$(cpu_ns_pids "${DAEMON_PIDS[@]}")
    iperf_client "$NS_A" "$TUN_ADDR" "$dir/udp.json" -u -l 64 -b 0
    cpu1=$(cpu_ns_pids "${DAEMON_PIDS[@]}")
    [[ -z "$TUN_DEV" ]] || td1=$(tx_dropped "$NS_A" "$TUN_DEV")
    rb1=$(udp_rcvbuf_errors "$NS_B")
    json="$dir/udp.json"
    v=$(jq -r '.end.sum.packets // empty' "$json" 2>/dev/null || true)
    if [[ -n "$v" ]]; then
        record tunnel all "$c" "$i" udp64_sent_pps "$(jq -r '(.end.sum.packets / .end.sum.seconds) | round' "$json")"
        record tunnel all "$c" "$i" udp64_recv_pps "$(jq -r '((.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds) | round' "$json")"
        record tunnel all "$c" "$i" udp64_loss_pct "$(jq -r '.end.sum.lost_percent * 100 | round / 100' "$json")"
        (( ${#DAEMON_PIDS[@]} == 0 )) || record tunnel all "$c" "$i" udp64_daemon_ns_per_pkt "$(( (cpu1 - cpu0) / (v > 0 ? v : 1) ))"
        [[ -z "$TUN_DEV" ]] || record tunnel all "$c" "$i" udp64_drop_tunA_pct "$(python3 -c "print(round(100.0 * ($td1 - $td0) / max(1, $v), 1))")"
        record tunnel all "$c" "$i" udp64_drop_rcvbufB_pct "$(python3 -c "print(round(100.0 * ($rb1 - $rb0) / max(1, $v), 1))")"
    else
        problem "$label: iperf3 UDP gave no result ($(jq -r '.error // "no JSON"' "$json" 2>/dev/null || echo 'no JSON'))"
    fi
    if [[ "$c" == tund* ]]; then
        tund_stats "$NS_A" vpn0 > "$dir/stats-a.json"; tund_stats "$NS_B" vpn0 > "$dir/stats-b.json"
        # What A sent to its peer must have arrived at B (same veth, no loss expected beyond socket drops).
        local a_sent b_recv a_err b_err
        a_sent=$(jq '.worker.peer.packets_sent' "$dir/stats-a.json"); b_recv=$(jq '.worker.peer.packets_received' "$dir/stats-b.json")
        a_err=$(jq '.worker.peer.send_errors' "$dir/stats-a.json"); b_err=$(jq '.worker.peer.send_errors' "$dir/stats-b.json")
        record tunnel all "$c" "$i" tund_peer_send_errors "$((a_err + b_err))"
        record tunnel all "$c" "$i" tund_a_to_b_lost_on_underlay "$((a_sent - b_recv))"
        record tunnel all "$c" "$i" tund_b_to_a_lost_on_underlay "$(( $(jq '.worker.peer.packets_sent' "$dir/stats-b.json") - $(jq '.worker.peer.packets_received' "$dir/stats-a.json") ))"
        record tunnel all "$c" "$i" tund_b_write_errors "$(jq '.worker.write_errors' "$dir/stats-b.json")"
        [[ "$(jq '.worker.dropped_reasons.unexpected_source + .worker.peer.receive_errors' "$dir/stats-b.json")" == 0 ]] ||
            problem "$label: B counts unexpected_source/receive_errors: $(jq -c '.worker | {dropped_reasons, peer}' "$dir/stats-b.json")"
        check_tund_log "$dir/a/tund.log" "$label (A)"
        check_tund_log "$dir/b/tund.log" "$label (B)"
    fi
    for v in "$NS_A" "$NS_B"; do ip -n "$v" -s link > "$dir/iplink-$v.txt" 2>&1 || true; done
    log "$label: TCP $(grep -P "^tunnel\tall\t$c\t$i\ttcp_gbps\t" "$OUT/raw.tsv" | cut -f6 | tail -1) Gbit/s, UDP64 recv $(grep -P "^tunnel\tall\t$c\t$i\tudp64_recv_pps\t" "$OUT/raw.tsv" | cut -f6 | tail -1) pps"
    delete_ns "$NS_A"; delete_ns "$NS_B"
}

# ---------------------------------------------------------------------------------------------------------
# 3. ping through the responder, vs the bare veth and loopback

flood_ping() {  # NS ADDR FILE CANDIDATE RUN
    ip netns exec "$1" timeout --foreground -k 2 30 ping -n -q -f -c "$FLOOD_COUNT" -w 20 "$2" > "$3" 2>&1 || true
    python3 - "$3" <<'EOF' | while read -r metric value; do record ping all "$4" "$5" "$metric" "$value"; done
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"(\d+) packets transmitted, (\d+) received.*time (\d+)ms", t)
r = re.search(r"= ([0-9.]+)/([0-9.]+)/([0-9.]+)/", t)
# ping -f sends the next request as soon as the reply is in: round trips per second, one at a time.
if m and int(m.group(3)) > 0:
    print("flood_rtt_per_s", round(int(m.group(2)) / (int(m.group(3)) / 1000.0)))
if r:
    print("flood_rtt_avg_us", round(float(r.group(2)) * 1000, 1))
if m and int(m.group(1)):
    print("flood_loss_pct", round(100.0 * (int(m.group(1)) - int(m.group(2))) / int(m.group(1)), 2))
EOF
}

ping_run() {  # CANDIDATE RUN
    local c=$1 i=$2 dir ns addr
    dir="$OUT/ping/$c-run$i"
    mkdir -p "$dir"
    case $c in
    tund-responder)
        ns="$NS_PREFIX-r"; addr=10.205.0.2
        new_ns "$ns"
        tund_start "$ns" "$dir"
        tund_create "$ns" '{"name":"tun0","type":"tun","addresses":["10.205.0.1/24"],"worker":{"mode":"responder"}}' "$dir"
        sleep 0.3
        ;;
    veth) veth_pair; ns="$NS_A"; addr=10.201.0.2 ;;
    loopback) ns="$NS_PREFIX-r"; new_ns "$ns"; addr=127.0.0.1 ;;
    esac
    record ping all "$c" "$i" loadavg1 "$(cut -d' ' -f1 /proc/loadavg)"
    ping_rtt "$ns" "$addr" "$dir/ping.txt" ping all "$c" "$i"
    flood_ping "$ns" "$addr" "$dir/flood.txt" "$c" "$i"
    if [[ "$c" == tund-responder ]]; then
        tund_stats "$ns" tun0 > "$dir/stats.json"
        local got answered
        got=$(jq '.worker.protocols.icmp' "$dir/stats.json"); answered=$(jq '.worker.packets_written' "$dir/stats.json")
        [[ "$got" == "$answered" ]] || problem "ping $c run $i: responder read $got ICMP packets but wrote $answered"
        [[ "$(jq '.worker.write_errors' "$dir/stats.json")" == 0 ]] || problem "ping $c run $i: responder write_errors $(jq '.worker.write_errors' "$dir/stats.json")"
        check_tund_log "$dir/tund.log" "ping $c run $i"
    fi
    log "ping $c run $i: p50 $(grep -P "^ping\tall\t$c\t$i\trtt_p50_us\t" "$OUT/raw.tsv" | cut -f6) us, flood $(grep -P "^ping\tall\t$c\t$i\tflood_rtt_per_s\t" "$OUT/raw.tsv" | cut -f6) round trips/s"
    delete_all_ns
}

# ---------------------------------------------------------------------------------------------------------

START=$SECONDS
for ((run = 1; run <= RUNS; run++)); do
    for section in $SECTIONS; do
        case $section in
        count)
            for v in $COUNT_VARIANTS; do
                for c in $(rotate $((run - 1)) tund c); do count_run "$v" "$c" "$run"; done
            done
            ;;
        tunnel)
            for c in $(rotate $((run - 1)) $TUNNEL_CANDIDATES); do tunnel_run "$c" "$run"; done
            ;;
        ping)
            for c in $(rotate $((run - 1)) tund-responder veth loopback); do ping_run "$c" "$run"; done
            ;;
        *) die "unknown section '$section'" ;;
        esac
    done
done
log "measurements done in $((SECONDS - START)) s"

python3 "$HERE/workers_summary.py" "$OUT" | tee "$OUT/summary.txt"
echo
echo "raw data: $OUT"
