"""Devices in other network namespaces: made, configured, watched and restored inside them, and stranded
(not re-made anywhere else) when their namespace goes away.

Each test makes its own namespaces with `ip netns add` under names unique to this run, inside the test
session's private network namespace, and deletes them afterwards."""
import os
import subprocess

import pytest

from conftest import eventually, ip_json
from sse import EventClient
from test_tundctl import ok, tundctl

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def namespaces():
    """make(label) -> a fresh named network namespace (lo up); all deleted afterwards."""
    made = []

    def make(label):
        name = f"tund-e2e-{os.getpid()}-{label}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def link_in(netns, name):
    links = [link for link in ip_json("-n", netns, "link", "show") if link["ifname"] == name]
    return links[0] if links else None


def addresses_in(netns, name):
    return [f"{a['local']}/{a['prefixlen']}" for entry in ip_json("-n", netns, "addr", "show", "dev", name)
            for a in entry.get("addr_info", []) if a.get("scope") == "global"]


def ping_from(netns, address):
    return subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", address], capture_output=True).returncode == 0


def test_a_tap_in_another_namespace_answers_there_survives_a_restart_and_is_repaired_there(tund, namespaces):
    ns1 = namespaces("a")
    created = tund.post("/devices", {"name": "vm1-net", "ifname": "eth0", "netns": ns1, "type": "tap",
                                     "addresses": ["10.61.0.1/24"], "worker": {"mode": "responder"}})
    assert created.status == 201, created
    device = created.json()
    assert device["netns"] == ns1 and device["ifname"] == "eth0" and device["state"]["present"] is True
    assert device["state"]["mac"] == link_in(ns1, "eth0")["address"]
    # Made there, not here: tund's own namespace has no such link.
    assert not any(link["ifname"] in ("eth0", "vm1-net") for link in ip_json("link", "show"))
    assert addresses_in(ns1, "eth0") == ["10.61.0.1/24"]
    # The responder answers a ping sent from inside the namespace (ARP for .2, then the echo).
    assert eventually(lambda: ping_from(ns1, "10.61.0.2"))

    index = link_in(ns1, "eth0")["ifindex"]
    tund.kill()
    tund.start()
    again = tund.get("/devices/vm1-net").json()
    assert again["state"]["present"] is True and again["worker"]["running"] is True, again
    assert link_in(ns1, "eth0")["ifindex"] == index, "restore re-created a device it should have re-attached"
    assert eventually(lambda: ping_from(ns1, "10.61.0.2")), "the re-attached worker does not answer"

    # Deleted behind tund's back, inside the namespace: put back there.
    events = EventClient(tund.port)
    try:
        subprocess.run(["ip", "-n", ns1, "link", "del", "eth0"], check=True)
        events.wait_for(lambda e: e[1] == "drift.repaired" and e[2]["device"] == "vm1-net")
    finally:
        events.close()
    assert eventually(lambda: link_in(ns1, "eth0") is not None and addresses_in(ns1, "eth0") == ["10.61.0.1/24"])
    assert eventually(lambda: ping_from(ns1, "10.61.0.2"))


def test_a_namespace_that_goes_away_strands_its_device_and_nothing_else(tund, namespaces):
    ns1, ns2 = namespaces("gone"), namespaces("stays")
    assert tund.post("/devices", {"name": "c1-eth0", "ifname": "eth0", "netns": ns1, "type": "tap"}).status == 201
    assert tund.post("/devices", {"name": "c2-eth0", "ifname": "eth0", "netns": ns2, "type": "tap"}).status == 201
    assert tund.post("/devices", {"name": "home0", "type": "tun", "addresses": ["10.62.0.1/24"]}).status == 201
    events = EventClient(tund.port)
    try:
        subprocess.run(["ip", "netns", "del", ns1], check=True)
        event, _ = events.wait_for(lambda e: e[1] == "namespace.missing")
        assert event[2]["device"] == "c1-eth0" and event[2]["detail"]["netns"] == ns1
    finally:
        events.close()
    gone = tund.get("/devices/c1-eth0").json()
    assert gone["state"]["present"] is False and gone["state"]["reason"] == "namespace_missing", gone
    assert tund.get("/healthz").status == 200 and tund.get("/readyz").status == 200
    # Not made again at home, and the others are untouched.
    assert not any(link["ifname"] in ("eth0", "c1-eth0") for link in ip_json("link", "show"))
    assert tund.get("/devices/c2-eth0").json()["state"]["present"] is True and link_in(ns2, "eth0") is not None
    assert tund.get("/devices/home0").json()["state"]["present"] is True
    # It can be read and deleted, not changed.
    changed = tund.request("PATCH", "/devices/c1-eth0", body={"mtu": 1400}, headers=JSON)
    assert changed.status == 409 and changed.json()["error"]["code"] == "namespace_missing", changed
    # A restart keeps it stranded (its namespace is still gone) and restores the rest.
    tund.kill()
    tund.start()
    assert tund.get("/devices/c1-eth0").json()["state"]["reason"] == "namespace_missing"
    assert tund.get("/devices/c2-eth0").json()["state"]["present"] is True
    assert tund.delete("/devices/c1-eth0").status == 204
    assert tund.get("/devices/c1-eth0").status == 404


def test_two_namespaces_each_with_an_eth0_and_filtering_by_namespace(tund, namespaces):
    ns1, ns2 = namespaces("one"), namespaces("two")
    for netns, name, address in ((ns1, "pod1-eth0", "10.63.1.1/24"), (ns2, "pod2-eth0", "10.63.2.1/24")):
        created = tund.post("/devices", {"name": name, "ifname": "eth0", "netns": netns, "type": "tun", "addresses": [address]})
        assert created.status == 201, created
    assert addresses_in(ns1, "eth0") == ["10.63.1.1/24"] and addresses_in(ns2, "eth0") == ["10.63.2.1/24"]
    listed = tund.get(f"/devices?netns={ns2}").json()["devices"]
    assert [d["name"] for d in listed] == ["pod2-eth0"]
    table = ok(tundctl(tund, "devices", "list", "--netns", ns2)).splitlines()
    assert len(table) == 2 and table[1].split()[0] == "pod2-eth0", table
    shown = dict(line.split(":", 1) for line in ok(tundctl(tund, "devices", "show", "pod1-eth0")).splitlines() if ":" in line)
    assert shown["ifname"].strip() == "eth0" and shown["netns"].strip() == ns1, shown
    assert {d["name"] for d in tund.get("/devices").json()["devices"]} == {"pod1-eth0", "pod2-eth0"}
    # The API name is unique across namespaces; the kernel name is unique within one.
    taken = tund.post("/devices", {"name": "pod1-eth0", "ifname": "eth1", "netns": ns2, "type": "tun"})
    assert taken.status == 409 and taken.json()["error"]["code"] == "device_exists", taken
    clash = tund.post("/devices", {"name": "pod1-eth1", "ifname": "eth0", "netns": ns1, "type": "tun"})
    assert clash.status == 409, clash
    assert tund.delete("/devices/pod1-eth0").status == 204
    assert link_in(ns1, "eth0") is None and link_in(ns2, "eth0") is not None


def test_a_declared_set_spans_namespaces(tund, namespaces):
    ns1 = namespaces("put")
    declared = {"devices": [
        {"name": "put-home", "type": "tun", "addresses": ["10.64.0.1/24"]},
        {"name": "put-ns", "ifname": "eth0", "netns": ns1, "type": "tun", "addresses": ["10.64.1.1/24"]},
    ]}
    dry = tund.request("PUT", "/devices?dry_run=true", body=declared, headers=JSON)
    assert dry.status == 200 and sorted(dry.json()["create"]) == ["put-home", "put-ns"], dry
    assert link_in(ns1, "eth0") is None
    applied = tund.request("PUT", "/devices", body=declared, headers=JSON)
    assert applied.status == 200 and sorted(applied.json()["create"]) == ["put-home", "put-ns"], applied
    assert addresses_in(ns1, "eth0") == ["10.64.1.1/24"]
    again = tund.request("PUT", "/devices", body=declared, headers=JSON)
    assert sorted(again.json()["unchanged"]) == ["put-home", "put-ns"], again
    moved = {"devices": [declared["devices"][0], dict(declared["devices"][1], netns=None)]}
    refused = tund.request("PUT", "/devices", body=moved, headers=JSON)
    assert refused.status == 422 and refused.json()["error"]["field"] == "devices[1].netns", refused
    emptied = tund.request("PUT", "/devices", body={"devices": []}, headers=JSON)
    assert sorted(emptied.json()["delete"]) == ["put-home", "put-ns"], emptied
    assert link_in(ns1, "eth0") is None


def test_a_namespace_that_does_not_exist_or_a_bad_reference_is_refused(tund):
    missing = tund.post("/devices", {"name": "nope0", "ifname": "eth0", "netns": f"tund-e2e-{os.getpid()}-none", "type": "tun"})
    assert missing.status == 422 and missing.json()["error"]["code"] == "namespace_not_found", missing
    regular = tund.post("/devices", {"name": "nope1", "netns": "/etc/hostname", "type": "tun"})
    assert regular.status == 422 and regular.json()["error"]["code"] == "namespace_not_found", regular
    for netns in ("../x", "a/b", "/run/netns/../../etc"):
        bad = tund.post("/devices", {"name": "nope2", "netns": netns, "type": "tun"})
        assert bad.status == 422 and bad.json()["error"]["field"] == "netns", (netns, bad)
    long_name = tund.post("/devices", {"name": "a-name-longer-than-fifteen", "type": "tun"})
    assert long_name.status == 422 and long_name.json()["error"]["field"] == "name", long_name
    assert tund.get("/devices").json()["devices"] == []
