"""Concurrency: 8 clients run a few hundred mixed operations on overlapping names at once. No 5xx, no
deadlock (every request answers within its timeout), no leaked descriptor or thread (counted in /proc before
and after), and in the end the database and the kernel agree.

The clients share a pool of six names (tun, tap, and a two-queue tap), so creates race creates, deletes race
changes, and If-Match requests lose to each other. Every answer must be one the API documents for that
operation in a race (e.g. 409 for a create whose name was taken, 404 for a device deleted meanwhile, 412 for
a stale If-Match). Event streams and packet captures are opened and closed (or abandoned) along the way.

Bounded: CLIENTS x OPERATIONS_PER_CLIENT operations, or DEADLINE_SECONDS, whichever comes first (the number
that ran is printed and asserted); every request has a 10 s timeout, and a timeout counts as a deadlock.
"""
import collections
import http.client
import json
import os
import random
import socket
import threading
import time

import pytest

from consistency import check, describe_kernel

CLIENTS = 8
OPERATIONS_PER_CLIENT = 50
DEADLINE_SECONDS = 120
REQUEST_TIMEOUT = 10
SETTLE_SECONDS = 20
POOL = [f"k{i}" for i in range(6)]
BASELINE = ["base0", "base1"]
JSON = {"Content-Type": "application/json"}

# The answers each operation may give while others change the same devices.
ALLOWED = {
    "create": {201, 409},
    "get": {200, 404},
    "list": {200},
    "stats": {200, 404},
    "metrics": {200},
    "patch": {200, 404},
    "patch-if-match": {200, 404, 412},
    "add-address": {201, 404, 422},
    "delete-address": {204, 404},
    "add-route": {201, 404, 422},
    "delete-route": {204, 404},
    "delete": {204, 404},
    "delete-if-match": {204, 404, 412},
    "events": {200},
    "capture": {200, 404},
}
# For the error answers, the codes that go with them (anything else means the race was mishandled).
ALLOWED_CODES = {
    409: {"device_exists"},
    404: {"device_not_found", "address_not_found", "route_not_found", "not_found"},  # not_found: before the split
    412: {"precondition_failed"},
    422: {"invalid_field"},
}
WEIGHTS = {
    "create": 3, "delete": 0.8, "delete-if-match": 0.4, "get": 2, "list": 1, "stats": 1, "metrics": 0.5,
    "patch": 2, "patch-if-match": 1, "add-address": 1.5, "delete-address": 1, "add-route": 1, "delete-route": 0.7,
    "events": 0.5, "capture": 0.3,
}


def create_body(name):
    i = POOL.index(name)
    body = {"name": name, "type": "tun" if i < 4 else "tap", "mtu": 1400,
            "addresses": [f"10.77.{i}.1/24"], "routes": [{"destination": f"10.78.{i}.0/24", "gateway": f"10.77.{i}.2"}]}
    if i == 5:
        body["queues"] = 2
    return body


def descriptors(pid):
    return sorted(os.listdir(f"/proc/{pid}/fd"), key=int)


def threads(pid):
    return sorted(os.listdir(f"/proc/{pid}/task"), key=int)


def describe_descriptors(pid):
    described = []
    for fd in descriptors(pid):
        try:
            described.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    return described


def describe_threads(pid):
    described = []
    for task in threads(pid):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as comm:
                described.append(f"{task}:{comm.read().strip()}")
        except OSError:
            pass
    return described


def settle(pid, want=None, seconds=SETTLE_SECONDS):
    """Polls the daemon's descriptor and thread counts until they equal `want` (or, without it, until they
    stay the same for half a second); bounded by `seconds`. Returns the last counts."""
    deadline = time.monotonic() + seconds
    last, stable_since = None, time.monotonic()
    while True:
        counts = (len(descriptors(pid)), len(threads(pid)))
        if want is not None and counts == want:
            return counts
        if counts != last:
            last, stable_since = counts, time.monotonic()
        elif want is None and time.monotonic() - stable_since >= 0.5:
            return counts
        if time.monotonic() >= deadline:
            return counts
        time.sleep(0.05)


def open_events(port, read_event):
    """Opens /events, reads its first line (and, when asked, waits up to 1 s for an event), then closes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", "/events", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        if response.status == 200:
            response.fp.readline()
            if read_event:
                connection.sock.settimeout(1.0)
                try:
                    response.fp.readline()
                except socket.timeout:
                    pass
        return response.status, None
    finally:
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        connection.close()


def open_capture(port, name, read_all):
    """Starts a one-packet, one-second capture and either reads it to its end or leaves at once."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", f"/devices/{name}/capture?count=1&timeout=1")
        response = connection.getresponse()
        body = response.read() if read_all or response.status != 200 else b""
        code = None
        if response.status >= 400:
            code = json.loads(body)["error"]["code"]
        return response.status, code
    finally:
        connection.close()


class Client:
    def __init__(self, tund, number, seed, deadline):
        self.tund = tund
        self.number = number
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.results = []  # (kind, status, code)
        self.failures = []
        self.current = None

    def etag(self, name):
        response = self.tund.get(f"/devices/{name}")
        return response.headers.get("ETag", '"1"'), (response.json() if response.status == 200 else None)

    def request(self, method, path, body=None, headers=None):
        sent = dict(headers or {})
        if body is not None:
            sent.update(JSON)
        response = self.tund.request(method, path, body=body, headers=sent, timeout=REQUEST_TIMEOUT)
        code = None
        if response.status >= 400:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "(not the error format)"
        return response.status, code

    def one(self, kind, name):
        rng = self.rng
        i = POOL.index(name)
        if kind == "create":
            return self.request("POST", "/devices", create_body(name))
        if kind == "get":
            return self.request("GET", f"/devices/{name}")
        if kind == "list":
            return self.request("GET", "/devices")
        if kind == "stats":
            return self.request("GET", f"/devices/{name}/stats")
        if kind == "metrics":
            return self.request("GET", "/metrics")
        if kind == "patch":
            return self.request("PATCH", f"/devices/{name}", {"mtu": rng.randrange(1300, 1501)})
        if kind == "patch-if-match":
            etag, _ = self.etag(name)
            return self.request("PATCH", f"/devices/{name}", {"mtu": rng.randrange(1300, 1501)}, {"If-Match": etag})
        if kind == "add-address":
            return self.request("POST", f"/devices/{name}/addresses", {"address": f"10.79.{i}.{rng.randrange(1, 4)}/32"})
        if kind == "delete-address":
            return self.request("DELETE", f"/devices/{name}/addresses/10.79.{i}.{rng.randrange(1, 4)}")
        if kind == "add-route":
            return self.request("POST", f"/devices/{name}/routes", {"destination": f"10.80.{i}.{rng.randrange(1, 4)}/32"})
        if kind == "delete-route":
            _, device = self.etag(name)
            extra = [r["id"] for r in (device or {}).get("routes", []) if r["destination"].startswith("10.80.")]
            return self.request("DELETE", f"/devices/{name}/routes/{rng.choice(extra) if extra else 999999}")
        if kind == "delete":
            return self.request("DELETE", f"/devices/{name}")
        if kind == "delete-if-match":
            etag, _ = self.etag(name)
            return self.request("DELETE", f"/devices/{name}", headers={"If-Match": etag})
        if kind == "events":
            return open_events(self.tund.port, read_event=rng.random() < 0.5)
        if kind == "capture":
            return open_capture(self.tund.port, name, read_all=rng.random() < 0.5)
        raise AssertionError(kind)

    def run(self):
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        for _ in range(OPERATIONS_PER_CLIENT):
            if time.monotonic() >= self.deadline:
                break
            kind = self.rng.choices(kinds, weights)[0]
            name = self.rng.choice(POOL)
            self.current = (kind, name)
            try:
                status, code = self.one(kind, name)
            except socket.timeout:
                self.failures.append(f"client {self.number}: {kind} {name} got no answer within {REQUEST_TIMEOUT} s")
                self.results.append((kind, "timeout", None))
                break  # a daemon that hangs once will hang again: stop here rather than wait out the rest
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(f"client {self.number}: {kind} {name} failed: {error!r}")
                self.results.append((kind, "error", None))
                continue
            self.results.append((kind, status, code))
            if status >= 500 or status not in ALLOWED[kind]:
                self.failures.append(f"client {self.number}: {kind} {name} answered {status} {code}")
            elif status >= 400 and code not in ALLOWED_CODES.get(status, set()):
                self.failures.append(f"client {self.number}: {kind} {name} answered {status} with code {code}")
        self.current = None


@pytest.mark.parametrize("http_threads", [2, 8], ids=["2-http-threads", "8-http-threads"])
def test_eight_clients_on_overlapping_names(make_tund, http_threads):
    """With the default two HTTP threads (requests queue) and with eight (all eight are handled at once)."""
    tund = make_tund(["--http-threads", str(http_threads)])
    seed = int(os.environ.get("TUND_CONCURRENCY_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nconcurrency: seed {seed} (TUND_CONCURRENCY_SEED={seed} replays each client's choices)")
    pid = tund.process.pid
    for name in BASELINE:
        response = tund.post("/devices", {"name": name, "type": "tun", "addresses": [f"10.76.{BASELINE.index(name)}.1/24"]})
        assert response.status == 201, response
    # Warm up what starts once and stays (the event heartbeat thread), then let a closed stream be noticed:
    # an idle stream learns its client left when the next event is written to it.
    assert open_events(tund.port, read_event=False)[0] == 200
    assert open_capture(tund.port, "base0", read_all=True)[0] == 200
    assert tund.request("PATCH", "/devices/base0", body={"mtu": 1400}).status == 200
    assert tund.request("PATCH", "/devices/base0", body={"mtu": 1500}).status == 200
    before = settle(pid)
    fds_before, threads_before = describe_descriptors(pid), describe_threads(pid)

    deadline = time.monotonic() + DEADLINE_SECONDS
    master = random.Random(seed)
    clients = [Client(tund, n, master.randrange(2**32), deadline) for n in range(CLIENTS)]
    workers = [threading.Thread(target=client.run, name=f"client-{client.number}") for client in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=max(1.0, deadline - time.monotonic()) + 4 * REQUEST_TIMEOUT)
    stuck = [f"client {c.number} stuck in {c.current}" for c, w in zip(clients, workers) if w.is_alive()]
    assert stuck == [], f"deadlock: {stuck}\n{tund.log()}"

    results = [result for client in clients for result in client.results]
    failures = [failure for client in clients for failure in client.failures]
    statuses = collections.Counter(status for _, status, _ in results)
    by_kind = collections.defaultdict(collections.Counter)
    for kind, status, code in results:
        by_kind[kind][f"{status}{' ' + code if code else ''}"] += 1

    problems, devices = check(tund)
    if problems:
        time.sleep(2)
        later, _ = check(tund)
        problems.append(f"(2 s later: {later or 'consistent'})")
    drift = {d["name"]: d["drift"]["detected"] for d in devices if d["drift"]["detected"]}
    alive = sorted(d["name"] for d in devices)

    # Remove what the clients made; the deletes' events also let abandoned streams be noticed.
    cleanup = {name: tund.delete(f"/devices/{name}") for name in POOL}
    after = settle(pid, want=before)
    final_problems, final_devices = check(tund)

    summary = (f"concurrency ({http_threads} HTTP threads): {len(results)} operations by {CLIENTS} clients, "
               f"statuses {dict(sorted(statuses.items(), key=str))}, "
               f"fds before/after {before[0]}/{after[0]}, threads before/after {before[1]}/{after[1]}")
    print(summary)
    print(f"concurrency: by operation {dict(sorted((k, dict(v)) for k, v in by_kind.items()))}")
    print(f"concurrency: devices alive at the end of the run {alive}, drift detected {drift or 'none'}")
    assert failures == [], summary + "\n" + "\n".join(failures[:20]) + f"\nlog: {tund.log_path}"
    assert len(results) == CLIENTS * OPERATIONS_PER_CLIENT, (
        f"only {len(results)} of {CLIENTS * OPERATIONS_PER_CLIENT} operations ran before the {DEADLINE_SECONDS} s deadline")
    assert all(r.status in (204, 404) for r in cleanup.values()), cleanup
    assert sorted(d["name"] for d in final_devices) == BASELINE, final_devices
    assert problems == [], "database and kernel disagree after the run:\n" + "\n".join(problems) + "\n" + describe_kernel()
    assert final_problems == [], "after cleanup:\n" + "\n".join(final_problems)
    assert after == before, (
        summary + f"\nleaked descriptors: {sorted(set(describe_descriptors(pid)) - set(fds_before))}"
        f"\nclosed descriptors: {sorted(set(fds_before) - set(describe_descriptors(pid)))}"
        f"\nnew threads: {sorted(set(describe_threads(pid)) - set(threads_before))}")
