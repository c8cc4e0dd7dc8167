"""The daemon end to end: create, configure, count, persist, restore, delete -- checked in the kernel."""
import os
import sqlite3
import subprocess

from conftest import eventually, ip_json, link_names

TUN0 = {
    "name": "tun0", "type": "tun", "mtu": 1400,
    "addresses": ["10.10.0.1/24", "fd00:10::1/64"],
    "routes": [{"destination": "10.20.0.0/16", "gateway": "10.10.0.2"}],
}


def global_addresses(name):
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in ip_json("addr", "show", name)[0]["addr_info"]
                  if a.get("scope") == "global")


def routes_via(name):
    """Routes of the main table through `name` that tund installed (proto 212), as comparable tuples."""
    found = []
    for family in ("-4", "-6"):
        for route in ip_json(family, "route", "show", "dev", name):
            if route.get("protocol") in ("212", 212):
                found.append((route["dst"], route.get("gateway"), route.get("metric")))
    return sorted(found, key=str)


def ping(address, count=3):
    subprocess.run(["ping", "-c", str(count), "-i", "0.2", "-W", "1", address], capture_output=True)


def stats(tund, name):
    response = tund.get(f"/devices/{name}/stats")
    assert response.status == 200, response
    return response.json()


def test_create_tun_configures_the_kernel(tund):
    response = tund.post("/devices", TUN0)
    assert response.status == 201, response
    assert response.headers["Location"] == "/devices/tun0"
    body = response.json()
    assert body["name"] == "tun0" and body["type"] == "tun" and body["mtu"] == 1400 and body["up"] is True
    assert body["addresses"] == ["10.10.0.1/24", "fd00:10::1/64"]
    assert [(r["destination"], r["gateway"], r["metric"]) for r in body["routes"]] == [("10.20.0.0/16", "10.10.0.2", None)]
    assert body["state"]["present"] is True and "UP" in body["state"]["flags"]

    link = ip_json("link", "show", "tun0")[0]
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    assert global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"]
    assert routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)]
    details = ip_json("-d", "link", "show", "tun0")[0]["linkinfo"]["info_data"]
    assert details["type"] == "tun" and details["persist"] is True


def test_pings_are_counted_by_the_worker_and_the_kernel(tund):
    assert tund.post("/devices", TUN0).status == 201
    ping("10.10.0.2", 3)
    body = eventually(lambda: (lambda s: s if s["worker"]["protocols"]["icmp"] >= 3 else None)(stats(tund, "tun0")))
    worker = body["worker"]
    assert worker["protocols"]["icmp"] == 3
    assert worker["protocols"]["ipv4"] >= 3
    assert worker["packets_read"] >= 3
    assert worker["bytes_read"] >= 3 * 84  # 20-byte IPv4 + 8-byte ICMP + 56 bytes of ping payload
    assert worker["last_packet_at"] is not None
    assert worker["queues"][0]["protocols"]["icmp"] == 3
    # The kernel's side: every packet the worker read was one the device handed over (tx).
    assert body["kernel"]["tx_packets"] >= worker["packets_read"] >= 3


def test_tap_with_mac_and_two_queues(tund):
    response = tund.post("/devices", {"name": "tap0", "type": "tap", "mac": "02:00:00:00:00:42", "queues": 2})
    assert response.status == 201, response
    assert response.json()["mac"] == "02:00:00:00:00:42" and response.json()["queues"] == 2
    link = ip_json("-d", "link", "show", "tap0")[0]
    assert link["address"] == "02:00:00:00:00:42"
    info = link["linkinfo"]["info_data"]
    assert info["type"] == "tap" and info["multi_queue"] is True and info["numqueues"] == 2
    stats_body = stats(tund, "tap0")
    assert [q["queue"] for q in stats_body["worker"]["queues"]] == [0, 1]


def test_tap_without_mac_keeps_the_kernel_chosen_one_across_recreation(tund):
    response = tund.post("/devices", {"name": "tap1", "type": "tap"})
    assert response.status == 201, response
    mac = response.json()["mac"]
    assert mac and mac == ip_json("link", "show", "tap1")[0]["address"]
    tund.stop()
    subprocess.run(["ip", "link", "del", "tap1"], check=True)
    tund.start()
    assert ip_json("link", "show", "tap1")[0]["address"] == mac


def test_unnamed_device_gets_a_kernel_name(tund):
    response = tund.post("/devices", {"type": "tun"})
    assert response.status == 201, response
    name = response.json()["name"]
    assert name.startswith("tun") and name in link_names("tun")
    assert tund.get(f"/devices/{name}").status == 200
    response = tund.post("/devices", {"type": "tap"})
    assert response.status == 201 and response.json()["name"].startswith("tap")


def test_owner_and_group_are_set(tund):
    # Ids with no passwd/group entry, so `ip` prints them as numbers.
    response = tund.post("/devices", {"name": "own0", "type": "tun", "owner": 64201, "group": 64202})
    assert response.status == 201, response
    assert (response.json()["owner"], response.json()["group"]) == (64201, 64202)
    info = ip_json("-d", "link", "show", "own0")[0]["linkinfo"]["info_data"]
    assert str(info["user"]) == "64201" and str(info["group"]) == "64202"


def test_down_device_stays_down(tund):
    response = tund.post("/devices", {"name": "down0", "type": "tun", "up": False, "addresses": ["10.30.0.1/24"]})
    assert response.status == 201, response
    assert "UP" not in ip_json("link", "show", "down0")[0]["flags"]
    tund.kill()
    tund.start()
    assert "UP" not in ip_json("link", "show", "down0")[0]["flags"]


def test_list_and_get(tund):
    assert tund.post("/devices", TUN0).status == 201
    assert tund.post("/devices", {"name": "tap0", "type": "tap"}).status == 201
    names = [d["name"] for d in tund.get("/devices").json()["devices"]]
    assert names == ["tun0", "tap0"]
    device = tund.get("/devices/tun0").json()
    assert device["state"]["ifindex"] == ip_json("link", "show", "tun0")[0]["ifindex"]


def test_sigkill_then_restart_reattaches_everything(tund):
    assert tund.post("/devices", TUN0).status == 201
    assert tund.post("/devices", {"name": "tap0", "type": "tap", "mac": "02:00:00:00:00:42", "queues": 2}).status == 201
    before = tund.get("/devices").json()["devices"]
    ifindex = ip_json("link", "show", "tun0")[0]["ifindex"]

    tund.kill()
    # Persistent devices outlive the process, with their addresses and routes.
    assert {"tun0", "tap0"} <= link_names("tun")
    tund.start()

    after = tund.get("/devices").json()["devices"]
    strip = lambda d: {k: v for k, v in d.items() if k not in ("state", "worker")}
    assert [strip(d) for d in after] == [strip(d) for d in before]
    assert all(d["worker"]["running"] and d["state"]["restore_error"] is None for d in after)
    assert ip_json("link", "show", "tun0")[0]["ifindex"] == ifindex  # re-attached, not re-created
    assert global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"]
    assert routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)]
    ping("10.10.0.2", 2)
    assert eventually(lambda: stats(tund, "tun0")["worker"]["protocols"]["icmp"] >= 2)


def test_devices_that_vanished_are_recreated_from_the_database(tund):
    assert tund.post("/devices", TUN0).status == 201
    assert tund.post("/devices", {"name": "tap0", "type": "tap", "mac": "02:00:00:00:00:42", "queues": 2}).status == 201
    assert tund.stop() == 0
    for name in ("tun0", "tap0"):
        subprocess.run(["ip", "link", "del", name], check=True)
    tund.start()
    assert ip_json("link", "show", "tun0")[0]["mtu"] == 1400
    assert global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"]
    assert routes_via("tun0") == [("10.20.0.0/16", "10.10.0.2", None)]
    tap = ip_json("-d", "link", "show", "tap0")[0]
    assert tap["address"] == "02:00:00:00:00:42" and tap["linkinfo"]["info_data"]["multi_queue"] is True
    ping("10.10.0.2", 2)
    assert eventually(lambda: stats(tund, "tun0")["worker"]["protocols"]["icmp"] == 2)


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def tun_descriptors(pid):
    """How many of the process's descriptors are TUN/TAP queues (/dev/net/tun)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/net/tun"
        except OSError:
            pass
    return count


def test_delete_removes_link_routes_and_row(tund):
    threads_before = thread_count(tund.process.pid)
    assert tund.post("/devices", TUN0).status == 201
    # A device costs a descriptor per queue, not a thread: the data plane's pool serves it.
    assert thread_count(tund.process.pid) == threads_before
    queues_before = tun_descriptors(tund.process.pid)
    response = tund.delete("/devices/tun0")
    assert response.status == 204 and response.body == b""
    assert "tun0" not in link_names()
    assert ip_json("route", "show", "10.20.0.0/16") == []
    # The queue is out of the data plane and closed by the time DELETE answers.
    assert tun_descriptors(tund.process.pid) == queues_before - 1
    again = tund.delete("/devices/tun0")
    assert again.status == 404 and again.json()["error"]["code"] == "device_not_found"
    assert tund.get("/devices/tun0").status == 404
    tund.stop()
    tund.start()
    assert "tun0" not in link_names()
    assert tund.get("/devices").json()["devices"] == []


def test_delete_multiqueue_device_closes_every_queue(tund):
    threads_before = thread_count(tund.process.pid)
    assert tund.post("/devices", {"name": "mq0", "type": "tun", "queues": 4}).status == 201
    assert thread_count(tund.process.pid) == threads_before
    queues_before = tun_descriptors(tund.process.pid)
    assert tund.delete("/devices/mq0").status == 204
    assert tun_descriptors(tund.process.pid) == queues_before - 4
    assert "mq0" not in link_names()


def test_failed_create_leaves_nothing_behind(tund):
    # 192.0.2.1 is not on any link: the kernel refuses the route after the device was made and configured.
    response = tund.post("/devices", {"name": "half0", "type": "tun", "addresses": ["10.40.0.1/24"],
                                      "routes": [{"destination": "10.41.0.0/16", "gateway": "192.0.2.1"}]})
    assert response.status == 422, response
    error = response.json()["error"]
    assert error["code"] == "kernel_rejected" and error["errno"] == "ENETUNREACH"
    assert "half0" not in link_names()
    assert tund.get("/devices/half0").status == 404
    assert ip_json("addr", "show", "to", "10.40.0.1") == [] or all(not a["addr_info"] for a in ip_json("addr", "show", "to", "10.40.0.1"))
    # The name is free again.
    assert tund.post("/devices", {"name": "half0", "type": "tun"}).status == 201


def test_foreign_device_is_left_alone(tund):
    subprocess.run(["ip", "tuntap", "add", "dev", "tun7", "mode", "tun"], check=True)
    response = tund.post("/devices", {"name": "tun7", "type": "tun", "mtu": 1300})
    assert response.status == 409, response
    assert response.json()["error"]["code"] == "name_in_use"
    assert ip_json("link", "show", "tun7")[0]["mtu"] == 1500
    assert tund.delete("/devices/tun7").status == 404
    tund.kill()
    tund.start()
    assert "tun7" in link_names() and tund.get("/devices").json()["devices"] == []


def test_orphan_of_an_interrupted_create_is_removed_on_restart(tund):
    """A link with this database's alias but no row is what a create cut short leaves; restore removes it."""
    assert tund.post("/devices", {"name": "orph0", "type": "tun"}).status == 201
    tund.kill()
    with sqlite3.connect(tund.database) as db:
        db.execute("DELETE FROM devices WHERE name = 'orph0'")
    assert "orph0" in link_names()
    tund.start()
    assert "orph0" not in link_names()


def test_stored_device_whose_name_was_taken_reports_a_restore_error(tund):
    assert tund.post("/devices", {"name": "clash0", "type": "tun"}).status == 201
    assert tund.post("/devices", {"name": "fine0", "type": "tun"}).status == 201
    tund.stop()
    subprocess.run(["ip", "link", "del", "clash0"], check=True)
    subprocess.run(["ip", "tuntap", "add", "dev", "clash0", "mode", "tap"], check=True)
    tund.start()
    clash = tund.get("/devices/clash0").json()
    assert clash["state"]["present"] is False and "not managed by tund" in clash["state"]["restore_error"]
    assert tund.get("/devices/fine0").json()["state"]["restore_error"] is None
    # Deleting the stored device forgets it and leaves the foreign link alone.
    assert tund.delete("/devices/clash0").status == 204
    assert "clash0" in link_names()


def test_sigterm_stops_cleanly_and_keeps_devices(tund):
    assert tund.post("/devices", TUN0).status == 201
    assert tund.stop() == 0
    assert "tun0" in link_names() and global_addresses("tun0") == ["10.10.0.1/24", "fd00:10::1/64"]
    assert "shutting down" in tund.log()


def test_a_tap_mtu_over_the_kernels_maximum_is_a_validation_error(tund):
    """Regression: a tap with mtu 65535 reached the kernel and came back as EINVAL (kernel_rejected)."""
    response = tund.post("/devices", {"name": "bigtap", "type": "tap", "mtu": 65535})
    assert response.status == 422 and response.json()["error"]["field"] == "mtu", response
    assert "65521" in response.json()["error"]["message"] and "bigtap" not in link_names()
    assert tund.post("/devices", {"name": "bigtap", "type": "tap", "mtu": 65521}).status == 201
    response = tund.request("PATCH", "/devices/bigtap", body={"mtu": 65522})
    assert response.status == 422 and response.json()["error"]["field"] == "mtu", response
    assert tund.post("/devices", {"name": "bigtun", "type": "tun", "mtu": 65535}).status == 201
