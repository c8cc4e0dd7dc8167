"""Live changes, ownership, drift repair and the event stream, checked in the kernel."""
import sqlite3
import subprocess
import threading

from conftest import eventually, ip_json, link_names
from sse import EventClient
from test_devices import TUN0, global_addresses, routes_via

JSON = {"Content-Type": "application/json"}


def link(name):
    return ip_json("link", "show", name)[0]


def patch(tund, name, body, if_match=None):
    headers = dict(JSON)
    if if_match is not None:
        headers["If-Match"] = if_match
    return tund.request("PATCH", f"/devices/{name}", body=body, headers=headers)


def test_patch_mtu_and_up_apply_at_once_and_survive_restarts(tund):
    created = tund.post("/devices", {"name": "tun0", "type": "tun", "mtu": 1400, "addresses": ["10.10.0.1/24"]})
    assert created.headers["ETag"] == '"1"'
    response = patch(tund, "tun0", {"mtu": 1300}, if_match='"1"')
    assert response.status == 200, response
    assert response.json()["mtu"] == 1300 and response.headers["ETag"] == '"2"'
    assert link("tun0")["mtu"] == 1300
    response = patch(tund, "tun0", {"up": False})
    assert response.status == 200 and "UP" not in link("tun0")["flags"]
    ifindex = link("tun0")["ifindex"]
    tund.kill()
    tund.start()
    assert link("tun0")["mtu"] == 1300 and "UP" not in link("tun0")["flags"]
    assert link("tun0")["ifindex"] == ifindex  # the same device, changed in place, never re-created
    assert tund.get("/devices/tun0").json()["generation"] == 3
    assert patch(tund, "tun0", {"up": True}).status == 200
    tund.stop()
    tund.start()
    assert "UP" in link("tun0")["flags"] and link("tun0")["mtu"] == 1300


def test_patch_rejects_bad_values_and_changes_nothing(tund):
    assert tund.post("/devices", TUN0).status == 201
    for body, field in [({"mtu": 1000}, "mtu"), ({"up": "no"}, "up"), ({"mtu": "big"}, "mtu"),
                        ({"name": "x"}, "name"), ({"policy": "ignore"}, "policy")]:
        response = patch(tund, "tun0", body)
        assert response.status == 422 and response.json()["error"]["field"] == field, (body, response)
    assert link("tun0")["mtu"] == 1400 and tund.get("/devices/tun0").json()["generation"] == 1
    assert patch(tund, "nope0", {"mtu": 1300}).status == 404


def test_addresses_and_routes_are_live_and_stored(tund):
    assert tund.post("/devices", TUN0).status == 201
    response = tund.post("/devices/tun0/addresses", {"address": "10.10.0.5/24"})
    assert response.status == 201 and response.headers["Location"] == "/devices/tun0/addresses/10.10.0.5"
    assert "10.10.0.5/24" in global_addresses("tun0")
    response = tund.post("/devices/tun0/routes", {"destination": "10.30.0.0/16", "metric": 50})
    assert response.status == 201, response
    route_id = response.json()["id"]
    assert ("10.30.0.0/16", None, 50) in routes_via("tun0")

    tund.kill()
    tund.start()
    assert "10.10.0.5/24" in global_addresses("tun0") and ("10.30.0.0/16", None, 50) in routes_via("tun0")
    device = tund.get("/devices/tun0").json()
    assert "10.10.0.5/24" in device["addresses"] and route_id in [r["id"] for r in device["routes"]]

    assert tund.delete("/devices/tun0/addresses/10.10.0.5%2F24").status == 204
    assert tund.delete(f"/devices/tun0/routes/{route_id}").status == 204
    assert "10.10.0.5/24" not in global_addresses("tun0")
    assert ("10.30.0.0/16", None, 50) not in routes_via("tun0")
    assert tund.delete(f"/devices/tun0/routes/{route_id}").status == 404
    assert tund.delete("/devices/tun0/addresses/10.10.0.99").status == 404
    tund.stop()
    tund.start()
    assert "10.10.0.5/24" not in global_addresses("tun0") and ("10.30.0.0/16", None, 50) not in routes_via("tun0")


def test_address_and_route_errors(tund):
    assert tund.post("/devices", TUN0).status == 201
    assert tund.post("/devices/tun0/addresses", {"address": "10.10.0.1/24"}).status == 422  # listed twice
    assert tund.post("/devices/tun0/addresses", {"address": "nope"}).json()["error"]["field"] == "address"
    unreachable = tund.post("/devices/tun0/routes", {"destination": "10.50.0.0/16", "gateway": "192.0.2.1"})
    assert unreachable.status == 422 and unreachable.json()["error"]["errno"] == "ENETUNREACH"
    assert tund.get("/devices/tun0").json()["generation"] == 1
    assert tund.post("/devices/tun0/routes", {"destination": "10.50.1.0/16"}).json()["error"]["field"] == "destination"
    assert tund.post("/devices/tun0/addresses", {"address": "127.0.0.5/8"}).json()["error"]["field"] == "address"
    # The route via 10.10.0.2 needs 10.10.0.1/24: deleting that address is refused, not left to break the route.
    refused = tund.delete("/devices/tun0/addresses/10.10.0.1")
    assert refused.status == 422 and refused.json()["error"]["field"] == "address" and "10.20.0.0/16" in refused.json()["error"]["message"]
    assert "10.10.0.1/24" in global_addresses("tun0")
    missing = tund.delete("/devices/tun0/addresses/10.10.0.99")
    assert missing.status == 404 and missing.json()["error"]["code"] == "address_not_found"
    assert tund.delete("/devices/tun0/routes/999").json()["error"]["code"] == "route_not_found"


def test_if_match_lists_match_any_of_their_tags(tund):
    assert tund.post("/devices", TUN0).status == 201
    assert patch(tund, "tun0", {"mtu": 1300}, if_match='"7", "1"').status == 200
    assert patch(tund, "tun0", {"mtu": 1350}, if_match='W/"2"').status == 200
    assert patch(tund, "tun0", {"mtu": 1360}, if_match='"1", "2", garbage').status == 412
    assert patch(tund, "tun0", {"mtu": 1360}, if_match="*").status == 200


def test_taking_a_device_down_is_not_drift(tund):
    assert tund.post("/devices", {"name": "dn0", "type": "tun", "addresses": ["10.10.0.1/24", "fd00:10::1/64"]}).status == 201
    assert patch(tund, "dn0", {"up": False}).status == 200
    assert "fd00:10::1/64" in global_addresses("dn0")
    # Once the drift listener has judged a later change, it has judged the link going down: only that
    # marker counts as drift.
    device = drift_seen_after_a_marker(tund, "dn0")
    assert device["drift"]["detected"] == 1 and device["drift"]["last"]["findings"] == ["mtu 1499, stored 1500"]


def test_stale_if_match_is_412_and_concurrent_patches_have_one_winner(tund):
    assert tund.post("/devices", TUN0).status == 201
    results = []
    barrier = threading.Barrier(2)

    def change(mtu):
        barrier.wait()
        results.append(patch(tund, "tun0", {"mtu": mtu}, if_match='"1"'))

    threads = [threading.Thread(target=change, args=(mtu,)) for mtu in (1300, 1350)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 412], results
    loser = next(r for r in results if r.status == 412)
    assert loser.json()["error"]["code"] == "precondition_failed" and loser.headers["ETag"] == '"2"'
    winner = next(r for r in results if r.status == 200)
    assert link("tun0")["mtu"] == winner.json()["mtu"]
    stale = tund.request("DELETE", "/devices/tun0", headers={"If-Match": '"1"'})
    assert stale.status == 412 and "tun0" in link_names()
    assert tund.request("DELETE", "/devices/tun0", headers={"If-Match": '"2"'}).status == 204


def test_idempotency_key_makes_a_retried_create_safe(tund):
    headers = dict(JSON, **{"Idempotency-Key": "create-tun0-7f3a"})
    first = tund.request("POST", "/devices", body=TUN0, headers=headers)
    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    retry = tund.request("POST", "/devices", body=TUN0, headers=headers)
    assert retry.status == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["name"] == "tun0" and len(tund.get("/devices").json()["devices"]) == 1
    other = tund.request("POST", "/devices", body={"name": "tun1", "type": "tun"}, headers=headers)
    assert other.status == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert "tun1" not in link_names()
    tund.kill()
    tund.start()
    assert tund.request("POST", "/devices", body=TUN0, headers=headers).headers.get("Idempotent-Replayed") == "true"


def test_deleted_link_is_recreated_with_addresses_and_routes_and_the_repair_is_seen(tund):
    assert tund.post("/devices", TUN0).status == 201
    events = EventClient(tund.port)
    try:
        subprocess.run(["ip", "link", "del", "tun0"], check=True)
        event, _ = events.wait_for(lambda e: e[1] == "drift.repaired" and e[2]["device"] == "tun0")
        assert "link deleted" in event[2]["detail"]["findings"]
    finally:
        events.close()
    assert eventually(lambda: "tun0" in link_names() and routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)])
    assert global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"] and link("tun0")["mtu"] == 1400
    device = tund.get("/devices/tun0").json()
    assert device["drift"]["repaired"] >= 1 and device["drift"]["last"]["findings"] == ["link deleted"]
    assert tund.get("/devices/tun0/stats").json()["drift"]["repaired"] >= 1
    # The re-created device is counted by a fresh worker.
    subprocess.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.10.0.2"], capture_output=True)
    assert eventually(lambda: tund.get("/devices/tun0/stats").json()["worker"]["protocols"]["icmp"] >= 2)


def test_removed_address_route_and_changed_mtu_are_put_back(tund):
    assert tund.post("/devices", TUN0).status == 201
    events = EventClient(tund.port)
    try:
        subprocess.run(["ip", "addr", "del", "fd00:10::1/64", "dev", "tun0"], check=True)
        events.wait_for(lambda e: e[1] == "drift.repaired")
        assert eventually(lambda: "fd00:10::1/64" in global_addresses("tun0"))
        subprocess.run(["ip", "route", "del", "10.20.0.0/16"], check=True)
        assert eventually(lambda: routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)])
        subprocess.run(["ip", "link", "set", "tun0", "mtu", "1500"], check=True)
        assert eventually(lambda: link("tun0")["mtu"] == 1400)
        subprocess.run(["ip", "link", "set", "tun0", "down"], check=True)
        assert eventually(lambda: "UP" in link("tun0")["flags"] and routes_via("tun0") != [])
    finally:
        events.close()
    assert tund.get("/devices/tun0").json()["drift"]["repaired"] >= 4


def test_report_policy_repairs_nothing_and_shows_the_drift(tund):
    body = dict(TUN0, policy="report")
    assert tund.post("/devices", body).status == 201
    events = EventClient(tund.port)
    try:
        subprocess.run(["ip", "link", "set", "tun0", "mtu", "1500"], check=True)
        event, seen = events.wait_for(lambda e: e[1] == "drift.detected")
        assert "mtu 1500, stored 1400" in event[2]["detail"]["findings"]
    finally:
        events.close()
    assert not any(e[1] == "drift.repaired" for e in seen)
    device = tund.get("/devices/tun0").json()
    assert device["drift"]["last"]["repaired"] is False and device["drift"]["repaired"] == 0
    assert link("tun0")["mtu"] == 1500
    # Switching the policy to repair puts it back on the next look.
    assert patch(tund, "tun0", {"policy": "repair"}).status == 200
    subprocess.run(["ip", "link", "set", "tun0", "mtu", "1499"], check=True)
    assert eventually(lambda: link("tun0")["mtu"] == 1400)


def test_foreign_addresses_and_routes_on_a_tund_device_are_left_alone(tund):
    assert tund.post("/devices", TUN0).status == 201
    subprocess.run(["ip", "addr", "add", "10.10.0.77/24", "dev", "tun0"], check=True)
    subprocess.run(["ip", "route", "add", "10.60.0.0/16", "dev", "tun0"], check=True)
    subprocess.run(["ip", "link", "set", "tun0", "mtu", "1500"], check=True)  # a drift, to trigger a repair pass
    assert eventually(lambda: link("tun0")["mtu"] == 1400)
    assert "10.10.0.77/24" in global_addresses("tun0")
    assert ip_json("route", "show", "10.60.0.0/16")
    tund.kill()
    tund.start()
    assert "10.10.0.77/24" in global_addresses("tun0") and ip_json("route", "show", "10.60.0.0/16")


def test_marked_leftovers_of_an_interrupted_change_are_removed_on_restart(tund):
    """An address or route carrying tund's mark but not stored is what a crash between kernel and
    database leaves; reconciliation removes it, and only it."""
    assert tund.post("/devices", TUN0).status == 201
    assert tund.post("/devices/tun0/addresses", {"address": "10.10.0.88/24"}).status == 201
    route_id = tund.post("/devices/tun0/routes", {"destination": "10.70.0.0/16"}).json()["id"]
    tund.kill()
    # The kernel has them (marked), the database does not: as if tund died between the two.
    with sqlite3.connect(tund.database) as db:
        db.execute("DELETE FROM addresses WHERE address = '10.10.0.88'")
        db.execute("DELETE FROM routes WHERE id = ?", (route_id,))
    assert "10.10.0.88/24" in global_addresses("tun0") and ip_json("route", "show", "10.70.0.0/16")
    tund.start()
    assert "10.10.0.88/24" not in global_addresses("tun0")
    assert ip_json("route", "show", "10.70.0.0/16") == []
    assert global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"]


def test_foreign_tun_device_is_refused_and_left_alone_on_restart(tund):
    subprocess.run(["ip", "tuntap", "add", "dev", "tun7", "mode", "tun"], check=True)
    response = tund.post("/devices", {"name": "tun7", "type": "tun"})
    assert response.status == 409 and response.json()["error"]["code"] == "name_in_use"
    assert "not managed by tund" in response.json()["error"]["message"]
    subprocess.run(["ip", "link", "set", "tun7", "mtu", "1300"], check=True)
    tund.kill()
    tund.start()
    assert link("tun7")["mtu"] == 1300 and "tun7" not in [d["name"] for d in tund.get("/devices").json()["devices"]]
    assert link("tun7").get("ifalias") is None


def test_events_missed_while_disconnected_are_replayed_with_last_event_id(tund):
    events = EventClient(tund.port)
    assert tund.post("/devices", {"name": "ev0", "type": "tun"}).status == 201
    last_id, kind, data = events.next_event()
    assert kind == "device.created" and data["device"] == "ev0" and data["sequence"] == last_id
    events.close()
    # While no one listens: three more things happen.
    assert patch(tund, "ev0", {"mtu": 1300}).status == 200
    assert tund.post("/devices", {"name": "ev1", "type": "tun"}).status == 201
    assert tund.delete("/devices/ev0").status == 204
    again = EventClient(tund.port, last_event_id=last_id)
    try:
        replayed = []
        while not any(e[1] == "device.deleted" for e in replayed):
            replayed.append(again.next_event())
    finally:
        again.close()
    ids = [e[0] for e in replayed]
    assert ids == sorted(ids) and ids[0] == last_id + 1 and len(set(ids)) == len(ids)
    kinds = [(e[1], e[2]["device"]) for e in replayed]
    assert ("device.updated", "ev0") in kinds and ("device.created", "ev1") in kinds and kinds[-1] == ("device.deleted", "ev0")


def test_event_stream_does_not_starve_the_api(tund):
    """More idle event streams than HTTP threads: requests are still answered (streams are suspended)."""
    streams = [EventClient(tund.port) for _ in range(8)]
    try:
        for index in range(5):
            assert tund.post("/devices", {"name": f"st{index}", "type": "tun"}).status == 201
        assert tund.get("/devices").status == 200
        for stream in streams:
            assert stream.next_event()[1] == "device.created"
    finally:
        for stream in streams:
            stream.close()
    assert tund.get("/healthz").status == 200


def drift_seen_after_a_marker(tund, name):
    """The device's drift counter once the drift watcher has processed every kernel notice that came
    before now: a marker change made behind tund's back (MTU 1499) must be found, so what the watcher saw
    before it has been judged too. Returns the device after the marker's repair."""
    before = tund.get(f"/devices/{name}").json()["drift"]["detected"]
    subprocess.run(["ip", "link", "set", name, "mtu", "1499"], check=True)
    device = eventually(lambda: (lambda d: d if d["drift"]["detected"] > before and d["state"]["mtu"] != 1499 else None)(
        tund.get(f"/devices/{name}").json()))
    assert device, tund.get(f"/devices/{name}").json()["drift"]
    return device


def test_a_link_goes_down_with_its_routes_and_gets_them_back(tund):
    """`ip link set down` with systemd-networkd's memory: the kernel drops the routes, they stay stored
    (inactive, not drift), and come back when the link comes up, also after SIGKILL and a restart."""
    assert tund.post("/devices", TUN0).status == 201
    assert routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)]
    response = patch(tund, "tun0", {"up": False})
    assert response.status == 200, response
    assert "UP" not in link("tun0")["flags"] and routes_via("tun0") == []
    assert [route["active"] for route in response.json()["routes"]] == [False]
    # Routes missing from a link that is down are not drift: only the marker counts.
    device = drift_seen_after_a_marker(tund, "tun0")
    assert device["drift"]["detected"] == 1 and device["drift"]["last"]["findings"] == ["mtu 1499, stored 1400"]
    assert device["routes"][0]["active"] is False and device["up"] is False
    assert global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"]
    response = patch(tund, "tun0", {"up": True})
    assert response.status == 200 and [route["active"] for route in response.json()["routes"]] == [True]
    assert "UP" in link("tun0")["flags"] and routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)]

    # Killed while down: it comes back down, its route stored and inactive, no drift; then up again.
    assert patch(tund, "tun0", {"up": False}).status == 200
    tund.kill()
    tund.start()
    assert "UP" not in link("tun0")["flags"] and routes_via("tun0") == []
    device = tund.get("/devices/tun0").json()
    assert device["up"] is False and device["routes"][0]["active"] is False
    device = drift_seen_after_a_marker(tund, "tun0")
    assert device["drift"]["detected"] == 1 and device["drift"]["last"]["findings"] == ["mtu 1499, stored 1400"]
    assert patch(tund, "tun0", {"up": True}).status == 200
    assert routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)]
    assert tund.get("/devices/tun0").json()["routes"][0]["active"] is True


def test_drift_repair_setting_a_link_up_puts_its_routes_back(tund):
    assert tund.post("/devices", TUN0).status == 201
    subprocess.run(["ip", "link", "set", "tun0", "down"], check=True)
    assert eventually(lambda: "UP" in link("tun0")["flags"] and routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)])
    device = tund.get("/devices/tun0").json()
    assert device["routes"][0]["active"] is True and device["drift"]["repaired"] >= 1


def test_an_ipv6_route_with_metric_0_settles(tund):
    """Regression: the kernel stores IPv6 metric 0 as 1024; tund saw drift and "repaired" it ~20 times a
    second, forever. It is stored as the kernel holds it, and drift compares normalized routes."""
    body = {"name": "m0", "type": "tun", "addresses": ["fd00:70::1/64"], "routes": [{"destination": "fd00:71::/64", "metric": 0}]}
    response = tund.post("/devices", body)
    assert response.status == 201 and response.json()["routes"][0]["metric"] == 1024, response
    route = tund.post("/devices/m0/routes", {"destination": "fd00:72::/64", "metric": 0})
    assert route.status == 201 and route.json()["metric"] == 1024 and route.json()["active"] is True
    device = drift_seen_after_a_marker(tund, "m0")
    assert device["drift"]["detected"] == 1 and device["drift"]["last"]["findings"] == ["mtu 1499, stored 1500"]
    assert [r["active"] for r in device["routes"]] == [True, True]
    # Listed twice in the kernel's terms (0 and 1024 are one IPv6 route): refused.
    response = tund.post("/devices/m0/routes", {"destination": "fd00:71::/64", "metric": 1024})
    assert response.status == 422, response
