#!/usr/bin/env python3
"""The one client process of Benchmarks/control-plane.sh: N requests to tund over ONE keep-alive connection.

Run it inside the benchmark's network namespace (`ip netns exec NS python3 api_client.py ...`); tund
listens on 127.0.0.1 there. Python stdlib only.

    api_client.py --port P wait-ready [--deadline S] [--pid PID]
                                                        poll GET /readyz until 200 (fresh connection per try)
    api_client.py --port P create --n N                 POST /devices cp0..cp(N-1), each must answer 201
    api_client.py --port P delete --n N                 DELETE /devices/cpI, each must answer 204
    api_client.py --port P count                        print how many devices GET /devices lists

create/delete: the request bodies are built and the connection is opened (by a GET /readyz that must
answer 200) BEFORE the clock starts; time.perf_counter() is read around the request loop only. stdout gets
one line, the elapsed seconds; stderr gets one JSON line of details (per-request latency percentiles,
connect count, client local port). Exit status 1 on any unexpected status, a closed or re-opened
connection, or when the deadline passes.

Keep-alive check: http.client re-opens a closed connection transparently on the next request, so the
client counts calls to connect(), fails on any response that announces `Connection: close` (or that
http.client otherwise considers the last on its connection), and checks that the socket object and its
local port never change. A run is only reported when exactly one TCP connection carried every request.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import time


def address_octets(i):
    """Same numbering as the `ip` baseline in control-plane.sh: 10.(220+2*(i/256)).(i%256).1/24, route 10.(221+2*(i/256)).(i%256).0/24."""
    return 220 + 2 * (i // 256), 221 + 2 * (i // 256), i % 256


def create_body(i):
    a, r, c = address_octets(i)
    return json.dumps({
        "name": f"cp{i}",
        "type": "tun",
        "addresses": [f"10.{a}.{c}.1/24"],
        "routes": [{"destination": f"10.{r}.{c}.0/24"}],
    }).encode()


class CountingConnection(http.client.HTTPConnection):
    """An HTTPConnection that counts how many times it (re)connects."""

    connects = 0

    def connect(self):
        type(self).connects += 1
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Failure(Exception):
    pass


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def wait_ready(port, deadline, pid=None):
    end = time.monotonic() + deadline
    last = "no answer"
    while time.monotonic() < end:
        if pid is not None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                print(f"tund (pid {pid}) exited before it was ready", file=sys.stderr)
                return 1
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                return 0
            last = f"{response.status} {body[:200]!r}"
        except OSError as error:
            last = repr(error)
        finally:
            connection.close()
        time.sleep(0.05)
    print(f"tund not ready after {deadline}s: {last}", file=sys.stderr)
    return 1


def count_devices(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/devices")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise Failure(f"GET /devices answered {response.status}: {body[:300]!r}")
        print(len(json.loads(body)["devices"]))
        return 0
    finally:
        connection.close()


def run_requests(port, op, n, deadline, timeout):
    if op == "create":
        requests = [("POST", "/devices", create_body(i), {"Content-Type": "application/json"}) for i in range(n)]
        expected = 201
    else:
        requests = [("DELETE", f"/devices/cp{i}", None, {}) for i in range(n)]
        expected = 204

    CountingConnection.connects = 0
    connection = CountingConnection("127.0.0.1", port, timeout=timeout)
    try:
        # Open the one connection before the clock starts, and prove that it is served.
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise Failure(f"GET /readyz answered {response.status}: {body[:300]!r}")
        if response.will_close:
            raise Failure(f"tund closes the connection after GET /readyz (Connection: {response.getheader('Connection')!r})")
        sock = connection.sock
        local = sock.getsockname()

        latencies = []
        limit = time.monotonic() + deadline
        started = time.perf_counter()
        for index, (method, path, payload, headers) in enumerate(requests):
            before = time.perf_counter()
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            body = response.read()
            latencies.append(time.perf_counter() - before)
            if response.status != expected:
                raise Failure(f"request {index}: {method} {path} answered {response.status} (expected {expected}): {body[:500]!r}")
            if response.will_close:
                raise Failure(f"request {index}: {method} {path}: tund closes the connection "
                              f"(Connection: {response.getheader('Connection')!r}, HTTP/{response.version / 10})")
            if connection.sock is not sock:
                raise Failure(f"request {index}: http.client re-opened the connection")
            if time.monotonic() > limit:
                raise Failure(f"deadline of {deadline}s passed after {index + 1} of {n} requests")
        elapsed = time.perf_counter() - started

        if CountingConnection.connects != 1 or connection.sock is not sock or sock.getsockname() != local:
            raise Failure(f"the connection was not reused: {CountingConnection.connects} connects")
    finally:
        connection.close()

    latencies.sort()
    details = {
        "op": op, "n": n, "elapsed_s": round(elapsed, 6), "requests_per_s": round(n / elapsed, 1) if elapsed > 0 else None,
        "connects": CountingConnection.connects, "local_port": local[1],
        "latency_ms": {name: round(percentile(latencies, q) * 1000, 3)
                       for name, q in (("min", 0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1))},
    }
    print(json.dumps(details), file=sys.stderr)
    print(f"{elapsed:.6f}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds the whole operation may take")
    parser.add_argument("--timeout", type=float, default=30.0, help="socket timeout per request, seconds")
    parser.add_argument("--pid", type=int, help="wait-ready: give up as soon as this process (tund) is gone")
    parser.add_argument("op", choices=["wait-ready", "create", "delete", "count"])
    args = parser.parse_args()
    try:
        if args.op == "wait-ready":
            return wait_ready(args.port, args.deadline, args.pid)
        if args.op == "count":
            return count_devices(args.port)
        if not 1 <= args.n <= 4608:
            raise Failure("--n must be 1..4608 (the address scheme runs out after that)")
        return run_requests(args.port, args.op, args.n, args.deadline, args.timeout)
    except (Failure, OSError, http.client.HTTPException) as error:
        print(f"api_client: {args.op} FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
