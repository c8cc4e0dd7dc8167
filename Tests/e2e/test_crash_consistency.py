"""Crash consistency: SIGKILL tund at random moments during a stream of changes, restart it, and check that
the database and the kernel agree and that nothing the client was told succeeded is lost.

Each round: a client thread sends a stream of operations (create `c<N>` with an address and a route, PATCH
mtu, add or delete an address, add or delete a route, delete a device) while the main thread SIGKILLs the
daemon after a random delay. Now and then the restarted daemon is killed again during its restore. Then tund
is restarted (ready) and checked:

- the database, `GET /devices` and the kernel agree (consistency.check): every row has its link with the
  stored MTU, link state, addresses and proto-212 routes; no link with tund's alias lacks a row;
- the state matches the client's model. The model is definite after every check (it is what was observed),
  acknowledged answers (2xx) move it forward, and a request cut by the kill (no answer) has an unknown
  outcome: each device must then be as the acknowledged state says, or as that one request would have left
  it. Names are never reused, so a deleted device must stay deleted.

Bounded: at most KILLS kills during the stream, or DEADLINE_SECONDS, whichever comes first; the test needs
at least MIN_KILLS. Random timing only (seeded, printed: TUND_CRASH_SEED=... replays the choices).
"""
import http.client
import ipaddress
import os
import random
import subprocess
import threading
import time

from conftest import ip_json, link_names

from consistency import address_key, check, database_view, describe_kernel, device_view, route_key

KILLS = 100
MIN_KILLS = 50
DEADLINE_SECONDS = 150
KILL_DELAY_SECONDS = (0.0, 0.040)
RESTORE_KILL_PROBABILITY = 0.15
RESTORE_KILL_DELAY_SECONDS = (0.0, 0.010)
MAX_OPERATIONS_PER_ROUND = 40
MAX_LIVE_DEVICES = 8
JSON = {"Content-Type": "application/json"}


# What device c<N> is created with, and the unique extras added later (never two in one subnet, so that
# deleting one never takes another with it as a secondary address would).

def initial_address(n):
    return f"10.{(n >> 8) & 255}.{n & 255}.1/24"


def initial_ipv6(n):
    return f"fd00:{n:x}::1/64"


def initial_route(n):
    return {"destination": f"172.{16 + ((n >> 8) & 15)}.{n & 255}.0/24", "gateway": f"10.{(n >> 8) & 255}.{n & 255}.2"}


def extra_address(s):
    return f"10.{200 + (s >> 16)}.{(s >> 8) & 255}.{s & 255}/32"


def extra_route(s):
    return {"destination": f"100.{64 + (s >> 16)}.{(s >> 8) & 255}.{s & 255}/32"}


def number(name):
    return int(name[1:])


def definite_state(devices):
    """The observed devices as the model's state: {name: {mtu, up, addresses: set, routes: {id: key}}}."""
    return {device["name"]: {
        "mtu": device["mtu"], "up": device["up"],
        "addresses": {address_key(a) for a in device["addresses"]},
        "routes": {r["id"]: route_key(r["destination"], r["gateway"], r["metric"]) for r in device["routes"]},
    } for device in devices}


def view(state):
    """A state in the comparable form of consistency.device_view."""
    return {name: {"mtu": d["mtu"], "up": d["up"], "addresses": frozenset(d["addresses"]),
                   "routes": frozenset(d["routes"].values())} for name, d in state.items()}


class Operation:
    def __init__(self, kind, name, method, path, body=None):
        self.kind, self.name, self.method, self.path, self.body = kind, name, method, path, body
        self.status = None
        self.outcome = None  # "acknowledged", "unknown", "refused"

    def apply(self, state, response_body=None):
        """The state after this operation took effect (a copy); `response_body` gives a new route its id."""
        state = {name: {"mtu": d["mtu"], "up": d["up"], "addresses": set(d["addresses"]), "routes": dict(d["routes"])}
                 for name, d in state.items()}
        if self.kind == "create":
            state[self.name] = {
                "mtu": self.body["mtu"], "up": True,
                "addresses": {address_key(a) for a in self.body["addresses"]},
                "routes": {("created", r["destination"]): route_key(r["destination"], r.get("gateway"), None)
                           for r in self.body["routes"]},
            }
        elif self.kind == "delete":
            state.pop(self.name, None)
        elif self.kind == "patch":
            state[self.name]["mtu"] = self.body["mtu"]
        elif self.kind == "add-address":
            state[self.name]["addresses"].add(address_key(self.body["address"]))
        elif self.kind == "delete-address":
            address = self.path.rsplit("/", 1)[1]
            state[self.name]["addresses"] = {a for a in state[self.name]["addresses"] if str(a.ip) != address}
        elif self.kind == "add-route":
            route_id = response_body["id"] if response_body else ("added", self.body["destination"])
            state[self.name]["routes"][route_id] = route_key(self.body["destination"], None, None)
        elif self.kind == "delete-route":
            state[self.name]["routes"].pop(int(self.path.rsplit("/", 1)[1]))
        return state

    def __repr__(self):
        body = f" {self.body}" if self.body else ""
        return f"{self.method} {self.path}{body} -> {self.status or self.outcome}"


class Stream:
    """The client's side: the names and extras it has used, and every operation it sent."""

    def __init__(self):
        self.next_device = 0
        self.next_extra = 1
        self.operations = []

    def extra(self):
        while True:
            s = self.next_extra
            self.next_extra += 1
            if s & 255 not in (0, 255):
                return s

    def choose(self, state, rng):
        """One operation that is valid in `state` (so any refusal is a disagreement with what was acknowledged)."""
        if len(state) < 2 or (len(state) < MAX_LIVE_DEVICES and rng.random() < 0.25):
            n = self.next_device
            self.next_device += 1
            return Operation("create", f"c{n}", "POST", "/devices", {
                "name": f"c{n}", "type": "tun", "mtu": rng.randrange(1280, 1501),
                "addresses": [initial_address(n), initial_ipv6(n)], "routes": [initial_route(n)]})
        name = rng.choice(sorted(state))
        device = state[name]
        n = number(name)
        initial = {address_key(initial_address(n)), address_key(initial_ipv6(n))}
        extra_addresses = sorted((a for a in device["addresses"] if a not in initial), key=str)
        initial_destination = ipaddress.ip_network(initial_route(n)["destination"])
        extra_routes = sorted(i for i, key in device["routes"].items() if key[0] != initial_destination)
        choices = [("patch", 3), ("add-address", 2), ("add-route", 1.5), ("delete", 1.5)]
        if extra_addresses:
            choices.append(("delete-address", 1.5))
        if extra_routes:
            choices.append(("delete-route", 1))
        kind = rng.choices([k for k, _ in choices], [w for _, w in choices])[0]
        if kind == "patch":
            mtu = rng.choice([m for m in range(1280, 1501) if m != device["mtu"]])
            return Operation(kind, name, "PATCH", f"/devices/{name}", {"mtu": mtu})
        if kind == "add-address":
            return Operation(kind, name, "POST", f"/devices/{name}/addresses", {"address": extra_address(self.extra())})
        if kind == "add-route":
            return Operation(kind, name, "POST", f"/devices/{name}/routes", extra_route(self.extra()))
        if kind == "delete-address":
            return Operation(kind, name, "DELETE", f"/devices/{name}/addresses/{rng.choice(extra_addresses).ip}")
        if kind == "delete-route":
            return Operation(kind, name, "DELETE", f"/devices/{name}/routes/{rng.choice(extra_routes)}")
        return Operation("delete", name, "DELETE", f"/devices/{name}")


class Round:
    """What one client round did: the state its acknowledged operations reached, and the one whose outcome
    the kill made unknown (at most one: the client stops at the first request without an answer)."""

    def __init__(self, state):
        self.state = state
        self.unknown = None
        self.refused = []
        self.operations = []


def client_round(tund, stream, current, stop, rng):
    while not stop.is_set() and len(current.operations) < MAX_OPERATIONS_PER_ROUND:
        operation = stream.choose(current.state, rng)
        current.operations.append(operation)
        stream.operations.append(operation)
        try:
            response = tund.request(operation.method, operation.path, body=operation.body,
                                    headers=JSON if operation.body is not None else None, timeout=10)
        except (OSError, http.client.HTTPException) as error:
            operation.outcome = f"unknown ({type(error).__name__})"
            current.unknown = operation
            return
        operation.status = response.status
        if 200 <= response.status < 300:
            operation.outcome = "acknowledged"
            current.state = operation.apply(current.state, response.json() if response.body else None)
        else:
            operation.outcome = "refused"
            current.refused.append((operation, response))
            return


def wait_serving(tund, attempts=2000):
    """Polls /healthz until the new process serves (restore runs after that); at most attempts x ~2 ms."""
    for _ in range(attempts):
        if tund.process.poll() is not None:
            raise AssertionError(f"tund exited with {tund.process.returncode}:\n{tund.log()}")
        try:
            if tund.request("GET", "/healthz", timeout=1).status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.002)


def interrupted_restores(log_path):
    """How many starts in the daemon's log began restoring (listening) but never got ready."""
    interrupted, pending = 0, False
    with open(log_path, errors="replace") as log:
        for line in log:
            if "msg=listening" in line:
                interrupted += pending
                pending = True
            elif "restore finished" in line:
                pending = False
    return interrupted


def compare(observed, acknowledged, unknown):
    """Per device: the observed value must be the acknowledged one, or the one the unknown request leads to."""
    candidates = [view(acknowledged)]
    if unknown is not None:
        candidates.append(view(unknown.apply(acknowledged)))
    problems = []
    for name in sorted(set(observed).union(*candidates), key=lambda n: (len(n), n)):
        possible = [candidate.get(name) for candidate in candidates]
        if observed.get(name) not in possible:
            def show(value):
                if value is None:
                    return "absent"
                return (f"mtu={value['mtu']} up={value['up']} addresses={sorted(map(str, value['addresses']))} "
                        f"routes={sorted(map(str, value['routes']))}")
            problems.append(f"{name}: found {show(observed.get(name))}; acknowledged {show(possible[0])}"
                            + (f"; or after the unknown {unknown}: {show(possible[1])}" if unknown else ""))
    return problems


def test_sigkill_at_random_moments_loses_nothing_acknowledged(tund):
    seed = int(os.environ.get("TUND_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\ncrash test: seed {seed} (TUND_CRASH_SEED={seed} replays the choices; the timing differs)")
    rng = random.Random(seed)
    stream = Stream()
    problems, devices = check(tund)
    assert problems == [] and devices == [], problems
    state = {}
    kills = restore_kills = restarts = rounds = applied = 0
    inconsistencies = []
    deadline = time.monotonic() + DEADLINE_SECONDS

    while kills - restore_kills < KILLS and time.monotonic() < deadline:
        rounds += 1
        current = Round(state)
        stop = threading.Event()
        client = threading.Thread(target=client_round, args=(tund, stream, current, stop, random.Random(rng.random())))
        client.start()
        time.sleep(rng.uniform(*KILL_DELAY_SECONDS))
        tund.kill()
        kills += 1
        stop.set()
        client.join(timeout=30)
        assert not client.is_alive(), "the client thread did not stop within 30 s of the kill"

        if rng.random() < RESTORE_KILL_PROBABILITY:
            # Killed again while it restores: the API serves /healthz before restore starts.
            tund.start(wait_ready=False)
            restarts += 1
            wait_serving(tund)
            time.sleep(rng.uniform(*RESTORE_KILL_DELAY_SECONDS))
            tund.kill()
            kills += 1
            restore_kills += 1
        tund.start()
        restarts += 1

        found, devices = check(tund)
        observed = {device["name"]: device_view(device) for device in devices}
        found += compare(observed, current.state, current.unknown)
        if current.unknown is not None and observed != view(current.state):
            applied += 1  # the request cut by the kill had taken effect (committed before the kill)
        found += [f"{operation} refused: {response}" for operation, response in current.refused]
        if found:
            inconsistencies.append(
                f"round {rounds} (kill {kills}), operations {current.operations}:\n    " + "\n    ".join(found)
                + "\n  kernel:\n" + describe_kernel(set(observed)))
        state = definite_state(devices)

    operations = stream.operations
    acknowledged = sum(1 for o in operations if o.outcome == "acknowledged")
    unknown = sum(1 for o in operations if (o.outcome or "").startswith("unknown"))
    kinds = {}
    for operation in operations:
        counts = kinds.setdefault(operation.kind, {})
        outcome = operation.outcome.split(" ")[0] if operation.outcome else "none"
        counts[outcome] = counts.get(outcome, 0) + 1
    causes = {}
    for operation in operations:
        if (operation.outcome or "").startswith("unknown"):
            causes[operation.outcome] = causes.get(operation.outcome, 0) + 1
    summary = (f"crash test: {kills} kills ({restore_kills} during startup, {interrupted_restores(tund.log_path)} of "
               f"them during restore), {restarts} restarts, "
               f"{len(operations)} operations ({acknowledged} acknowledged, {unknown} unknown), "
               f"inconsistencies: {len(inconsistencies)}")
    print(summary)
    print(f"crash test: {rounds} rounds; outcomes by kind {dict(sorted(kinds.items()))}; unknown because {causes}; "
          f"unknown outcomes that took effect: {applied}; {len(state)} devices at the end")
    assert inconsistencies == [], summary + "\n" + "\n".join(inconsistencies[:5]) + f"\nlog: {tund.log_path}"
    assert kills - restore_kills >= MIN_KILLS, (
        f"only {kills - restore_kills} kills during the stream before the {DEADLINE_SECONDS} s deadline "
        f"(at least {MIN_KILLS} wanted): " + summary)


def test_the_consistency_check_sees_each_kind_of_disagreement(tund):
    """The check the crash test relies on is not vacuous: with drift repair off (policy report), each change
    made behind tund's back, and each orphan, is reported."""
    assert check(tund) == ([], [])
    body = {"name": "c0", "type": "tun", "mtu": 1400, "addresses": [initial_address(0)], "routes": [initial_route(0)]}
    assert tund.post("/devices", body).status == 201
    assert tund.request("PATCH", "/devices/c0", body={"policy": "report"}, headers=JSON).status == 200
    problems, devices = check(tund)
    assert problems == [] and [d["name"] for d in devices] == ["c0"], problems
    instance, _ = database_view(tund.database)
    for command in (["link", "set", "c0", "mtu", "1300"],
                    ["addr", "add", "10.98.0.1/32", "dev", "c0"],
                    ["route", "add", "10.99.0.0/24", "dev", "c0", "proto", "212"],
                    ["tuntap", "add", "dev", "orphan0", "mode", "tun"],
                    ["link", "set", "orphan0", "alias", f"tund:{instance}"],
                    ["tuntap", "add", "dev", "stray0", "mode", "tap"]):
        subprocess.run(["ip", *command], check=True)
    problems, _ = check(tund)
    text = "\n".join(problems)
    assert "c0: kernel MTU 1300, stored 1400" in text, text
    assert "c0: kernel addresses" in text and "10.98.0.1/32" in text, text
    assert "c0: kernel proto-212 routes" in text and "10.99.0.0/24" in text, text
    assert f"orphan0: orphan link with alias 'tund:{instance}' and no row" in text, text
    assert "stray0: TUN/TAP link without a row" in text, text
    assert len(problems) == 5, text
    subprocess.run(["ip", "link", "del", "c0"], check=True)  # report only: tund leaves it gone
    problems, _ = check(tund)
    assert any(p.startswith("c0: stored but") for p in problems), problems


def test_a_delete_the_store_refuses_leaves_the_device_working(tund):
    """Regression: DELETE removed the link, then failed to store (disk full), and drift repair re-created
    the link (new ifindex, counters reset). The row goes first now: a refused DELETE changes nothing."""
    import sqlite3
    assert tund.post("/devices", {"name": "d0", "type": "tun", "addresses": ["10.90.0.1/24"]}).status == 201
    ifindex = ip_json("link", "show", "d0")[0]["ifindex"]
    holder = sqlite3.connect(tund.database, timeout=1, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # every other writer waits, then gives up (SQLITE_BUSY)
        response = tund.delete("/devices/d0")
        assert response.status == 500 and response.json()["error"]["code"] == "storage_error", response
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ip_json("link", "show", "d0")[0]["ifindex"] == ifindex
    device = tund.get("/devices/d0").json()
    assert device["state"]["present"] is True and device["worker"]["running"] is True and device["drift"]["detected"] == 0
    assert tund.delete("/devices/d0").status == 204 and "d0" not in link_names()
