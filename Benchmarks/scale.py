#!/usr/bin/env python3
"""The helper of Benchmarks/scale.sh: everything that talks to tund, timed from inside Python.

Run inside the benchmark's network namespace (`ip netns exec NS python3 scale.py ...`), where tund listens
on 127.0.0.1:PORT. Python stdlib only. Each command prints one JSON object on stdout; exit status 1, with
the reason on stderr, when tund answers anything unexpected or a deadline passes.

    scale.py supervise --port P --result FILE [--deadline S] -- TUND ARGS...
        starts tund as its child, polls GET /readyz (a fresh connection every 10 ms) and writes
        {"pid", "ready_s"} to FILE as soon as it answers 200 (ready_s: from just before the start of the
        process to that answer); then waits for tund to exit, so the calling shell can reap both.
    scale.py post --port P --n N [--deadline S]
        POST /devices sc0..sc(N-1), one keep-alive connection, each must answer 201. Stops at the deadline
        and says how many were made: {"done", "seconds", "complete"}.
    scale.py delete --port P --n N          DELETE /devices/scI, each must answer 204: {"done", "seconds"}
    scale.py put --port P --n N [--deadline S]
        one PUT /devices of sc0..sc(N-1) (--n 0: of none): {"seconds", "create", "update", "recreate",
        "delete", "unchanged"} (counts); {"unsupported": true} on 405; {"timed_out": true} after S seconds.
    scale.py probe --port P --pid PID [--repeat K]
        GET /devices and GET /metrics, each K times on one connection after one untimed warm-up:
        medians in ms, the device count, and tund's Threads and VmRSS from /proc/PID/status.
    scale.py batch --n N                    prints the `ip -batch` lines that create the same N devices
    scale.py kernel --n N
        checks with `ip -j` that exactly N sc* tun links exist, each UP with its address and route, and
        prints the counts ({"links", "addresses", "routes"}); --n 0 checks that none is left.

Devices: scI is {"name": "scI", "type": "tun", "addresses": ["10.(64+I/256).(I%256).1/24"],
"routes": [{"destination": "10.(128+I/256).(I%256).0/24"}]}, so N can go up to 16384 without overlap
(addresses in 10.64.0.0/10 below 10.128.0.0, routes from 10.128 to 10.191).
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

MAX_N = 64 * 256


class Failure(Exception):
    pass


def octets(i):
    return 64 + i // 256, 128 + i // 256, i % 256


def device(i):
    a, r, c = octets(i)
    return {"name": f"sc{i}", "type": "tun", "addresses": [f"10.{a}.{c}.1/24"], "routes": [{"destination": f"10.{r}.{c}.0/24"}]}


def batch_lines(n):
    """The same N devices as `ip -batch` commands (create), for scale.sh."""
    for i in range(n):
        a, r, c = octets(i)
        yield f"tuntap add mode tun name sc{i}"
        yield f"link set sc{i} up"
        yield f"addr add 10.{a}.{c}.1/24 dev sc{i}"
        yield f"route add 10.{r}.{c}.0/24 dev sc{i}"


class Client:
    """One keep-alive connection that must stay the same for every request."""

    def __init__(self, port, timeout):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.connection.sock

    def request(self, method, path, body=None, expect=(200,)):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status not in expect:
            raise Failure(f"{method} {path} answered {response.status}: {data[:400]!r}")
        if response.will_close or self.connection.sock is not self.sock:
            raise Failure(f"{method} {path}: tund closed the keep-alive connection")
        return response.status, data

    def close(self):
        self.connection.close()


def supervise(args):
    if not args.command or not args.result:
        raise Failure("supervise needs --result FILE and -- TUND ARGS...")
    with open(args.log, "ab") as log:
        started = time.perf_counter()
        process = subprocess.Popen(args.command, stdout=log, stderr=log)
    # Ctrl-C reaches the whole process group: tund stops, and this process must outlive it to reap it
    # (scale.sh kills tund, then waits for this one).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit = time.monotonic() + args.deadline
    ready = None
    while ready is None:
        if process.poll() is not None:
            print(f"tund exited with {process.returncode} before it was ready (log: {args.log})", file=sys.stderr)
            return 1
        if time.monotonic() > limit:
            process.kill()
            process.wait()
            print(f"tund not ready after {args.deadline}s (log: {args.log})", file=sys.stderr)
            return 1
        connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                ready = time.perf_counter() - started
        except OSError:
            pass
        finally:
            connection.close()
        if ready is None:
            time.sleep(0.01)
    temporary = args.result + ".tmp"
    with open(temporary, "w") as result:
        json.dump({"pid": process.pid, "ready_s": round(ready, 4)}, result)
    os.rename(temporary, args.result)
    process.wait()
    return 0


def post(args):
    bodies = [json.dumps(device(i)).encode() for i in range(args.n)]
    client = Client(args.port, timeout=120)
    limit = time.monotonic() + args.deadline
    done = 0
    started = time.perf_counter()
    for body in bodies:
        client.request("POST", "/devices", body, expect=(201,))
        done += 1
        if time.monotonic() > limit:
            break
    elapsed = time.perf_counter() - started
    client.close()
    return {"done": done, "seconds": round(elapsed, 4), "complete": done == args.n}


def delete(args):
    client = Client(args.port, timeout=120)
    started = time.perf_counter()
    for i in range(args.n):
        client.request("DELETE", f"/devices/sc{i}", expect=(204,))
    elapsed = time.perf_counter() - started
    client.close()
    return {"done": args.n, "seconds": round(elapsed, 4)}


def put(args):
    body = json.dumps({"devices": [device(i) for i in range(args.n)]}).encode()
    client = Client(args.port, timeout=args.deadline)
    started = time.perf_counter()
    try:
        status, data = client.request("PUT", "/devices", body, expect=(200, 405))
    except TimeoutError:
        return {"timed_out": True, "seconds": args.deadline}
    elapsed = time.perf_counter() - started
    client.close()
    if status == 405:
        return {"unsupported": True}
    answer = json.loads(data)
    counts = {key: len(answer.get(key, [])) for key in ("create", "update", "recreate", "delete", "unchanged")}
    if answer.get("dry_run") is not False:
        raise Failure(f"PUT /devices answered dry_run={answer.get('dry_run')!r}")
    return {"seconds": round(elapsed, 4), "body_bytes": len(body), **counts}


def probe(args):
    client = Client(args.port, timeout=120)
    result = {}
    for name, path in (("get_devices_ms", "/devices"), ("get_metrics_ms", "/metrics")):
        _, data = client.request("GET", path)   # warm-up, untimed
        if path == "/devices":
            result["devices"] = len(json.loads(data)["devices"])
            result["get_devices_bytes"] = len(data)
        times = []
        for _ in range(args.repeat):
            before = time.perf_counter()
            client.request("GET", path)
            times.append((time.perf_counter() - before) * 1000)
        result[name] = round(statistics.median(times), 2)
    client.close()
    status = {}
    with open(f"/proc/{args.pid}/status") as lines:
        for line in lines:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    result["threads"] = int(status["Threads"])
    result["rss_kib"] = int(status["VmRSS"].split()[0])
    result["fds"] = len(os.listdir(f"/proc/{args.pid}/fd"))
    return result


def ip_json(*words):
    out = subprocess.run(["ip", "-j", *words], check=True, capture_output=True, text=True, timeout=120).stdout
    return json.loads(out) if out.strip() else []


def kernel(args):
    links = {link["ifname"]: link for link in ip_json("link", "show", "type", "tun") if link["ifname"].startswith("sc")}
    addresses = {(entry["ifname"], f"{info['local']}/{info['prefixlen']}") for entry in ip_json("-4", "addr", "show")
                 if entry["ifname"].startswith("sc") for info in entry.get("addr_info", [])}
    routes = {(route["dst"], route.get("dev")) for route in ip_json("-4", "route", "show")
              if str(route.get("dev", "")).startswith("sc") and route.get("protocol") != "kernel"}
    problems = []
    for i in range(args.n):
        name = f"sc{i}"
        a, r, c = octets(i)
        if name not in links:
            problems.append(f"{name} missing")
            continue
        if "UP" not in links[name].get("flags", []):
            problems.append(f"{name} not UP")
        if (name, f"10.{a}.{c}.1/24") not in addresses:
            problems.append(f"{name} lacks 10.{a}.{c}.1/24")
        if (f"10.{r}.{c}.0/24", name) not in routes:
            problems.append(f"{name} lacks its route 10.{r}.{c}.0/24")
    for found, what in ((len(links), "links"), (len(addresses), "addresses"), (len(routes), "routes")):
        if found != args.n:
            problems.append(f"{found} sc* {what}, expected {args.n}")
    if problems:
        raise Failure("; ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""))
    return {"links": len(links), "addresses": len(addresses), "routes": len(routes)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("op", choices=["supervise", "post", "delete", "put", "probe", "kernel", "batch"])
    parser.add_argument("--port", type=int, default=18180)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds the operation may take")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--result", help="supervise: where {pid, ready_s} goes")
    parser.add_argument("--log", default="/dev/null", help="supervise: tund's output")
    argv = sys.argv[1:]
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:len(argv) - len(command) - (1 if "--" in argv else 0)])
    args.command = command
    if not 0 <= args.n <= MAX_N:
        parser.error(f"--n must be 0..{MAX_N} (the address scheme runs out after that)")
    try:
        if args.op == "supervise":
            return supervise(args)
        if args.op == "batch":
            sys.stdout.write("\n".join(batch_lines(args.n)) + "\n")
            return 0
        result = {"post": post, "delete": delete, "put": put, "probe": probe, "kernel": kernel}[args.op](args)
    except (Failure, OSError, http.client.HTTPException, subprocess.SubprocessError, ValueError, KeyError) as error:
        print(f"scale.py {args.op}: FAILED: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
