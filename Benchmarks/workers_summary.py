#!/usr/bin/env python3
"""Prints the table of Benchmarks/workers.sh from its raw.tsv.

usage: workers_summary.py OUT_DIR      (reads OUT_DIR/raw.tsv, OUT_DIR/meta.txt, OUT_DIR/problems.txt)

raw.tsv: section, variant, candidate, run, metric, value (tab-separated, one measurement per line).
Each cell is "median [min..max]" over the runs. Ratios are tund / other: the ratio of the medians and the
median of the per-run ratios ("paired": the candidates of one run ran back to back, which cancels most of
the VM's drift).
"""
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
data = defaultdict(dict)  # (section, variant, metric, candidate) -> {run: value}
for line in (out / "raw.tsv").read_text().splitlines():
    if not line.strip():
        continue
    section, variant, candidate, run, metric, value = line.split("\t")
    try:
        data[(section, variant, metric, candidate)][int(run)] = float(value)
    except ValueError:
        data[(section, variant, metric, candidate)][int(run)] = value


def fmt(x, metric):
    if isinstance(x, str):
        return x
    if metric.endswith("_pps") or metric.endswith("per_s"):
        return f"{x / 1000:.1f}k" if abs(x) >= 1000 else f"{x:.0f}"
    if metric.endswith("_gbps"):
        return f"{x:.3f}"
    if metric.endswith("_pct") or metric == "loadavg1":
        return f"{x:.1f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}"


def cell(section, variant, metric, candidate):
    runs = data.get((section, variant, metric, candidate))
    if not runs:
        return "-"
    values = [runs[k] for k in sorted(runs)]
    if any(isinstance(v, str) for v in values):
        return " ".join(str(v) for v in values)
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med, metric)
    return f"{fmt(med, metric)} [{fmt(min(values), metric)}..{fmt(max(values), metric)}]"


def ratio(section, variant, metric, a, b):
    ra = data.get((section, variant, metric, a), {})
    rb = data.get((section, variant, metric, b), {})
    va = [v for v in ra.values() if not isinstance(v, str)]
    vb = [v for v in rb.values() if not isinstance(v, str)]
    if not va or not vb or statistics.median(vb) == 0:
        return None
    of_medians = statistics.median(va) / statistics.median(vb)
    paired = [ra[r] / rb[r] for r in ra if r in rb and not isinstance(ra[r], str) and rb[r]]
    return of_medians, paired


def ratio_line(section, variant, metric, a, b, target=None):
    r = ratio(section, variant, metric, a, b)
    if r is None:
        return f"  {metric:<24} {a}/{b}: n/a"
    of_medians, paired = r
    text = f"  {metric:<24} {a}/{b:<10} {of_medians:6.2f}"
    if paired:
        text += f"   paired {statistics.median(paired):5.2f} [{min(paired):.2f}..{max(paired):.2f}]"
    if target:
        op, bound = target
        met = of_medians >= bound if op == ">=" else of_medians <= bound
        text += f"   target {op} {bound}: {'met' if met else 'NOT met'}"
    return text


def table(section, variant, metrics, candidates, title):
    present = [c for c in candidates if any((section, variant, m, c) in data for m in metrics)]
    rows = [m for m in metrics if any((section, variant, m, c) in data for c in present)]
    if not rows:
        return False
    print(title)
    cells = {(m, c): cell(section, variant, m, c) for m in rows for c in present}
    width = max([len(c) for c in present] + [len(v) for v in cells.values()]) + 2
    mw = max(len(m) for m in rows) + 2
    print(f"  {'metric':<{mw}}" + "".join(f"{c:>{width}}" for c in present))
    for m in rows:
        print(f"  {m:<{mw}}" + "".join(f"{cells[(m, c)]:>{width}}" for c in present))
    return True


meta = out / "meta.txt"
if meta.exists():
    print(meta.read_text().rstrip())
print("cells: median [min..max] over the runs; ratios: tund/other, ratio of medians, then the median [min..max]")
print("of the per-run ratios (paired). CPU: scheduler runtime (schedstat) of the process(es) over the load window.")

count_metrics = ["sent_pps", "read_pps", "read_pct", "tx_dropped_per_s", "cpu_ns_per_pkt", "worker_ns_per_pkt",
                 "own_ns_per_pkt", "cpu_pct", "reader_runq_wait_pct", "queue0_share_pct", "sender_ns_per_pkt",
                 "loadavg1"]
for variant in ("sq", "mq2"):
    title = (f"\n== 1. count mode vs C read loop, variant {variant} "
             f"({'1 queue' if variant == 'sq' else '2 queues, IFF_MULTI_QUEUE'}); udpflood 64-byte UDP")
    if table("count", variant, count_metrics, ["tund", "c"], title):
        print(ratio_line("count", variant, "read_pps", "tund", "c", (">=", 0.95)))
        print(ratio_line("count", variant, "cpu_ns_per_pkt", "tund", "c", ("<=", 1.2)))
        print(ratio_line("count", variant, "worker_ns_per_pkt", "tund", "c"))
        print(ratio_line("count", variant, "tx_dropped_per_s", "tund", "c"))

tunnel_metrics = ["tcp_gbps", "tcp_retransmits", "tcp_daemon_cpu_pct", "udp64_sent_pps", "udp64_recv_pps",
                  "udp64_loss_pct", "udp64_drop_tunA_pct", "udp64_drop_rcvbufB_pct", "udp64_daemon_ns_per_pkt", "rtt_p50_us", "rtt_p99_us", "rtt_avg_us",
                  "tund_peer_send_errors", "tund_a_to_b_lost_on_underlay", "tund_b_to_a_lost_on_underlay", "tund_b_write_errors", "loadavg1"]
tunnel_candidates = ["tund", "tund-offload", "socat", "openvpn", "veth"]
if table("tunnel", "all", tunnel_metrics, tunnel_candidates,
         "\n== 2. tunnel mode (two tund daemons) vs socat TUN/UDP vs OpenVPN no crypto; bare veth = ceiling"):
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund", "socat", (">=", 2.0)))
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund", "openvpn", (">=", 1.0)))
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund", "veth", (">=", 0.5)))
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund-offload", "socat", (">=", 2.0)))
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund-offload", "openvpn", (">=", 1.0)))
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund-offload", "veth", (">=", 0.5)))
    print(ratio_line("tunnel", "all", "tcp_gbps", "tund-offload", "tund"))
    print(ratio_line("tunnel", "all", "udp64_recv_pps", "tund", "socat"))
    print(ratio_line("tunnel", "all", "udp64_recv_pps", "tund", "openvpn"))
    print(ratio_line("tunnel", "all", "udp64_recv_pps", "tund", "veth"))
    print(ratio_line("tunnel", "all", "udp64_daemon_ns_per_pkt", "tund", "socat"))
    print(ratio_line("tunnel", "all", "udp64_daemon_ns_per_pkt", "tund", "openvpn"))
    print(ratio_line("tunnel", "all", "rtt_p50_us", "tund", "socat"))
    print(ratio_line("tunnel", "all", "rtt_p50_us", "tund", "openvpn"))
    print(ratio_line("tunnel", "all", "rtt_p50_us", "tund", "veth"))

ping_metrics = ["rtt_p50_us", "rtt_p99_us", "rtt_avg_us", "ping_loss_pct", "flood_rtt_avg_us", "flood_rtt_per_s",
                "flood_loss_pct", "loadavg1"]
if table("ping", "all", ping_metrics, ["tund-responder", "veth", "loopback"],
         "\n== 3. ping RTT through the responder vs bare veth and loopback"):
    for m in ("rtt_p50_us", "flood_rtt_per_s"):
        print(ratio_line("ping", "all", m, "tund-responder", "veth"))
        print(ratio_line("ping", "all", m, "tund-responder", "loopback"))

problems = out / "problems.txt"
text = problems.read_text().strip() if problems.exists() else ""
print("\nproblems seen during the run: " + ("none" if not text else f"{len(text.splitlines())}"))
for line in text.splitlines():
    print("  " + line)
