"""PUT /devices: a declared set applied whole, checked in the kernel, the database and the kernel's own
notification stream."""
import os
import random
import sqlite3
import subprocess
import threading
import time

from conftest import ip_json, link_names
from consistency import check
from lines import LineReader

JSON = {"Content-Type": "application/json"}


def device(index, mtu=1500, extra_route=True):
    body = {"name": f"ap{index}", "type": "tun", "mtu": mtu, "addresses": [f"10.{60 + index // 250}.{index % 250}.1/24"]}
    if extra_route:
        body["routes"] = [{"destination": f"10.{120 + index // 250}.{index % 250}.0/24"}]
    return body


def put(tund, devices, query="", if_match=None, timeout=120):
    headers = dict(JSON)
    if if_match is not None:
        headers["If-Match"] = if_match
    return tund.request("PUT", f"/devices{query}", body={"devices": devices}, headers=headers, timeout=timeout)


def rows(tund):
    connection = sqlite3.connect(f"file:{tund.database}?mode=ro", uri=True, timeout=10)
    try:
        return sorted(connection.execute("SELECT name, type, mtu, up, generation FROM devices"))
    finally:
        connection.close()


def kernel_state():
    links = {link["ifname"]: (link["mtu"], link.get("ifindex"), tuple(link["flags"])) for link in ip_json("link", "show", "type", "tun")}
    addresses = sorted((entry["ifname"], a["local"], a["prefixlen"]) for entry in ip_json("addr", "show")
                       for a in entry.get("addr_info", []) if entry["ifname"] in links)
    routes = sorted((route.get("dev"), route["dst"]) for route in ip_json("route", "show", "proto", "212"))
    return links, addresses, routes


def test_dry_run_plans_and_touches_nothing_then_apply_makes_exactly_the_set(tund):
    for index in (1, 2, 3):
        assert tund.post("/devices", device(index)).status == 201
    declared = [device(1), device(2, mtu=1400), device(4)]
    before = (kernel_state(), rows(tund))

    plan = put(tund, declared, "?dry_run=true")
    assert plan.status == 200, plan
    assert plan.json() == {"dry_run": True, "create": ["ap4"], "update": ["ap2"], "recreate": [], "delete": ["ap3"],
                           "unchanged": ["ap1"]}
    assert (kernel_state(), rows(tund)) == before, "a dry run changed the kernel or the rows"

    applied = put(tund, declared)
    assert applied.status == 200, applied
    assert applied.json()["dry_run"] is False and applied.json()["create"] == ["ap4"]
    links, addresses, routes = kernel_state()
    assert set(links) == {"ap1", "ap2", "ap4"}
    assert links["ap2"][0] == 1400 and links["ap1"][0] == 1500
    assert links["ap1"][1] == before[0][0]["ap1"][1], "an unchanged device was re-created"
    assert links["ap2"][1] == before[0][0]["ap2"][1], "a live change re-created the device"
    assert addresses == sorted([("ap1", "10.60.1.1", 24), ("ap2", "10.60.2.1", 24), ("ap4", "10.60.4.1", 24)])
    assert routes == sorted([("ap1", "10.120.1.0/24"), ("ap2", "10.120.2.0/24"), ("ap4", "10.120.4.0/24")])
    assert [(name, mtu) for name, _, mtu, _, _ in rows(tund)] == [("ap1", 1500), ("ap2", 1400), ("ap4", 1500)]
    problems, listed = check(tund)
    assert problems == [], problems
    assert sorted(d["name"] for d in listed) == ["ap1", "ap2", "ap4"]


def wait_until_links_settle(names, deadline_seconds=10):
    """The kernel announces a new link's carrier from its link-watch work, up to a second later; its
    operational state changes in that same step, so once it is not DOWN, the notice has been sent."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        states = {link["ifname"]: link.get("operstate") for link in ip_json("link", "show", "type", "tun")}
        if all(states.get(name) not in (None, "DOWN") for name in names):
            return
        time.sleep(0.05)
    raise AssertionError(f"links did not settle: {states}")


class Monitor:
    """`ip -o monitor link address route`: every rtnetlink notification of the namespace, one per line."""

    def __init__(self):
        self.process = subprocess.Popen(["ip", "-o", "monitor", "link", "address", "route"], stdout=subprocess.PIPE)
        self.lines = LineReader(self.process.stdout)
        self.markers = []

    def mark(self, address, deadline_seconds=10):
        """Puts `address` on lo and returns the lines announced before it. `ip monitor` subscribes some time
        after it starts, so a marker it missed is taken off and put on again until it is seen."""
        seen = []
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
            attempt_ends = min(deadline, time.monotonic() + 0.5)
            while (line := self.lines.line(max(0.0, attempt_ends - time.monotonic()))) is not None:
                if address in line:
                    self.markers.append(address)
                    return seen
                # A marker is announced twice (its address, then its local route), and again when re-put.
                if not any(earlier in line for earlier in self.markers):
                    seen.append(line.strip())
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=True)
        raise AssertionError(f"marker {address} never seen; lines: {seen[:20]}")

    def close(self, *addresses):
        for address in addresses:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)
        self.process.terminate()
        self.process.wait(timeout=10)


def test_an_identical_apply_reports_everything_unchanged_and_writes_nothing(tund):
    declared = [device(index) for index in range(1, 6)]
    assert put(tund, declared).status == 200
    wait_until_links_settle([d["name"] for d in declared])
    monitor = Monitor()
    try:
        monitor.mark("127.0.0.51")  # the monitor is listening from here on
        again = put(tund, declared)
        between = monitor.mark("127.0.0.52")
    finally:
        monitor.close("127.0.0.51", "127.0.0.52")
    assert again.status == 200, again
    assert again.json()["unchanged"] == [f"ap{index}" for index in range(1, 6)]
    assert again.json()["create"] == again.json()["update"] == again.json()["delete"] == []
    assert between == [], f"the kernel announced changes during an apply that changed nothing: {between}"


def test_a_stale_if_match_answers_412_and_changes_nothing(tund):
    first = put(tund, [device(1)])
    tag = first.headers["ETag"]
    assert tund.get("/devices").headers["ETag"] == tag
    assert put(tund, [device(1), device(2)], if_match=tag).status == 200
    before = (kernel_state(), rows(tund))
    stale = put(tund, [device(1)], if_match=tag)
    assert stale.status == 412, stale
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert stale.headers["ETag"] != tag
    assert (kernel_state(), rows(tund)) == before


def test_an_invalid_member_answers_422_naming_it_and_changes_nothing(tund):
    assert put(tund, [device(1)]).status == 200
    before = (kernel_state(), rows(tund))
    bad = put(tund, [device(1), device(2, mtu=10), device(3)])
    assert bad.status == 422, bad
    assert bad.json()["error"]["field"] == "devices[1].mtu"
    assert "ap2" in bad.json()["error"]["message"]
    fixed = put(tund, [device(1), {"name": "ap1", "type": "tun"}])
    assert fixed.status == 422 and fixed.json()["error"]["field"] == "devices[1].name", fixed
    assert (kernel_state(), rows(tund)) == before


def test_a_type_change_needs_recreate(tund):
    assert put(tund, [device(1)]).status == 200
    index = ip_json("link", "show", "ap1")[0]["ifindex"]
    as_tap = dict(device(1), type="tap")
    refused = put(tund, [as_tap])
    assert refused.status == 422 and refused.json()["error"]["code"] == "not_live_changeable", refused
    assert refused.json()["error"]["field"] == "devices[0].type"
    done = put(tund, [as_tap], "?recreate=true")
    assert done.status == 200 and done.json()["recreate"] == ["ap1"], done
    link = ip_json("-d", "link", "show", "ap1")[0]
    assert link["ifindex"] != index and link["linkinfo"]["info_data"]["type"] == "tap"
    problems, _ = check(tund)
    assert problems == [], problems


KILL_ROUNDS = 10
SET_SIZE = 1000


def test_sigkill_during_a_put_of_a_thousand_devices_leaves_kernel_and_database_agreeing(tund):
    seed = int(os.environ.get("TUND_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\napply crash test: seed {seed}")
    rng = random.Random(seed)
    # Two sets that share half their devices: each PUT creates, updates and deletes.
    sets = [[device(index, mtu=1500 + 10 * parity) for index in range(parity * SET_SIZE // 2, parity * SET_SIZE // 2 + SET_SIZE)]
            for parity in (0, 1)]
    started = time.monotonic()
    assert put(tund, sets[0], timeout=300).status == 200
    duration = time.monotonic() - started
    outcomes = []
    for round_number in range(KILL_ROUNDS):
        declared = sets[(round_number + 1) % 2]
        answer = {}
        client = threading.Thread(target=lambda: answer.update(response=_try_put(tund, declared)))
        client.start()
        time.sleep(rng.uniform(0, duration * 1.2))  # a random moment of the apply, not a wait for anything
        tund.kill()
        client.join(timeout=60)
        assert not client.is_alive()
        tund.start()
        problems, listed = check(tund)
        names = {d["name"] for d in listed}
        outcome = ("applied" if names == {d["name"] for d in declared}
                   else "not applied" if names == {d["name"] for d in sets[round_number % 2]} else "mixed")
        outcomes.append(outcome)
        assert problems == [], f"round {round_number} ({outcome}): " + "\n".join(problems[:10])
        assert outcome != "mixed", f"round {round_number}: the database holds part of a set: {len(names)} devices"
        if outcome == "not applied":
            # Bring the state to the set the next round expects to change.
            assert put(tund, declared, timeout=300).status == 200
    print(f"apply crash test: outcomes {outcomes}")
    assert len(link_names("tun")) == SET_SIZE


def _try_put(tund, declared):
    try:
        return put(tund, declared, timeout=300)
    except OSError as error:
        return error
