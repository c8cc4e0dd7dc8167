"""Worker modes against real traffic: echo, responder (ping gets replies, tun and tap, IPv4 and IPv6),
and tunnel between two daemons in two namespaces joined by a veth pair."""
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import eventually, free_port, ip_json, link_names, tund_binary
from sse import EventClient
from test_devices import stats

JSON = {"Content-Type": "application/json"}


def ping(address, count=5, namespace=None, six=False):
    command = ["ping", "-6" if six else "-4", "-c", str(count), "-i", "0.2", "-W", "2", address]
    if namespace:
        command = ["ip", "netns", "exec", namespace] + command
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        if "packets transmitted" in line:
            return int(line.split(",")[1].split()[0])
    return 0


def wait_listening(namespace, port, process, timeout=10.0):
    """Waits until something listens on TCP `port` in `namespace` (`process` must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while not subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Hltn", f"sport = :{port}"],
                             capture_output=True, text=True).stdout.strip():
        assert process.poll() is None, f"the server exited with {process.returncode} before listening"
        assert time.monotonic() < deadline, f"nothing listens on port {port} in {namespace} after {timeout} s"
        time.sleep(0.02)


@pytest.mark.parametrize("kind", ["tun", "tap"])
def test_responder_answers_ping_on_ipv4_and_ipv6(tund, kind):
    body = {"name": f"r{kind}", "type": kind, "addresses": ["10.31.0.1/24", "fd00:31::1/64"], "worker": {"mode": "responder"}}
    assert tund.post("/devices", body).status == 201
    assert ping("10.31.0.2") == 5
    assert ping("fd00:31::2", six=True) == 5
    worker = stats(tund, f"r{kind}")["worker"]
    assert worker["mode"] == "responder"
    assert worker["protocols"]["icmp"] >= 5 and worker["protocols"]["icmpv6"] >= 5
    assert worker["packets_written"] >= 10
    if kind == "tap":
        assert worker["protocols"]["arp"] >= 1  # the kernel asked who has 10.31.0.2, and got an answer
        neighbours = subprocess.run(["ip", "-j", "neigh", "show", "dev", f"r{kind}"], capture_output=True, text=True).stdout
        assert "02:74:75:6e:64:01" in neighbours


def test_echo_writes_every_packet_back(tund):
    assert tund.post("/devices", {"name": "echo0", "type": "tun", "addresses": ["10.32.0.1/24"], "worker": {"mode": "echo"}}).status == 201
    subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.32.0.2"], capture_output=True, timeout=30)
    worker = eventually(lambda: (lambda w: w if w["packets_written"] >= 3 else None)(stats(tund, "echo0")["worker"]))
    assert worker["packets_written"] == worker["packets_read"] and worker["bytes_written"] == worker["bytes_read"]
    assert stats(tund, "echo0")["kernel"]["rx_packets"] >= 3  # the kernel received what the worker wrote


def test_patch_switches_the_worker_mode_live(tund):
    assert tund.post("/devices", {"name": "sw0", "type": "tun", "addresses": ["10.33.0.1/24"]}).status == 201
    assert ping("10.33.0.2", 2) == 0
    response = tund.request("PATCH", "/devices/sw0", body={"worker": {"mode": "responder"}}, headers=JSON)
    assert response.status == 200 and response.json()["worker"]["mode"] == "responder"
    assert ping("10.33.0.2", 2) == 2
    tund.kill()
    tund.start()
    assert ping("10.33.0.2", 2) == 2


def test_offload_is_for_tun_devices_and_keeps_other_modes_working(tund):
    response = tund.post("/devices", {"name": "off1", "type": "tap", "offload": True})
    assert response.status == 422 and response.json()["error"]["field"] == "offload"
    body = {"name": "off0", "type": "tun", "offload": True, "addresses": ["10.34.0.1/24", "fd00:34::1/64"],
            "worker": {"mode": "responder"}}
    response = tund.post("/devices", body)
    assert response.status == 201 and "csum" in response.json()["offloads"]
    info = subprocess.run(["ip", "-j", "-d", "link", "show", "off0"], capture_output=True, text=True).stdout
    assert '"vnet_hdr":true' in info.replace(" ", "")
    assert ping("10.34.0.2") == 5 and ping("fd00:34::2", six=True) == 5
    tund.kill()
    tund.start()
    assert tund.get("/devices/off0").json()["offloads"] == response.json()["offloads"]
    assert ping("10.34.0.2", 2) == 2


def test_tunnel_endpoints_are_validated(tund):
    for worker, field in [({"mode": "tunnel"}, "worker.remote"), ({"mode": "tunnel", "local": "10.0.0.1:7000"}, "worker.remote"),
                          ({"mode": "tunnel", "local": "10.0.0.1", "remote": "10.0.0.2:7000"}, "worker.local"),
                          ({"mode": "tunnel", "local": "10.0.0.1:7000", "remote": "[fd00::2]:7000"}, "worker.remote"),
                          ({"mode": "count", "local": "10.0.0.1:7000", "remote": "10.0.0.2:7000"}, "worker.local"),
                          ({"mode": "tunnel", "local": "10.0.0.1:0", "remote": "10.0.0.2:7000"}, "worker.local")]:
        response = tund.post("/devices", {"name": "tv0", "type": "tun", "worker": worker})
        assert response.status == 422 and response.json()["error"]["field"] == field, (worker, response)
    # A local address this host does not have: the kernel refuses the bind, nothing is left behind.
    response = tund.post("/devices", {"name": "tv0", "type": "tun",
                                      "worker": {"mode": "tunnel", "local": "192.0.2.7:7000", "remote": "192.0.2.8:7000"}})
    assert response.status in (422, 500) and response.json()["error"]["errno"] == "EADDRNOTAVAIL"
    assert tund.get("/devices/tv0").status == 404


class TwoHosts:
    """Namespaces tw-a and tw-b joined by a veth pair (10.201.0.1 <-> 10.201.0.2), each running tund."""

    def __init__(self):
        self.namespaces = [f"tw-a-{os.getpid()}", f"tw-b-{os.getpid()}"]
        self.processes = {}
        self.ports = {}
        self.directory = tempfile.mkdtemp(prefix="tund-tunnel-")

    def ip(self, *args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def setup(self):
        self.teardown()
        a, b = self.namespaces
        for ns in self.namespaces:
            self.ip("netns", "add", ns)
            self.ip("-n", ns, "link", "set", "lo", "up")
        self.ip("-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
        self.ip("-n", a, "addr", "add", "10.201.0.1/24", "dev", "va")
        self.ip("-n", b, "addr", "add", "10.201.0.2/24", "dev", "vb")
        self.ip("-n", a, "link", "set", "va", "up")
        self.ip("-n", b, "link", "set", "vb", "up")
        for ns in self.namespaces:
            self.start(ns)

    def start(self, ns):
        self.ports.setdefault(ns, free_port())
        log = open(os.path.join(self.directory, f"{ns}.log"), "ab")
        self.processes[ns] = subprocess.Popen(
            ["ip", "netns", "exec", ns, tund_binary(), "--listen", f"127.0.0.1:{self.ports[ns]}",
             "--database", os.path.join(self.directory, f"{ns}.db")], stdout=log, stderr=log)
        for _ in range(200):
            if self.curl(ns, "GET", "/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"tund in {ns} not ready")

    def kill(self, ns):
        subprocess.run(["kill", "-9", str(self.processes[ns].pid)])
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            if "tund" in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
                subprocess.run(["kill", "-9", pid])
        self.processes[ns].wait(timeout=10)

    def curl(self, ns, method, path, body=None):
        command = ["ip", "netns", "exec", ns, "curl", "-s", "-m", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method,
                   f"http://127.0.0.1:{self.ports[ns]}{path}"]
        if body is not None:
            command += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
        text, _, code = out.rpartition("\n")
        return int(code or 0), (json.loads(text) if text.strip().startswith(("{", "[")) else text)

    def teardown(self):
        for ns in self.namespaces:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            if pids:
                subprocess.run(["kill", "-9", *pids])
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self.processes = {}


@pytest.fixture
def two_hosts():
    hosts = TwoHosts()
    hosts.setup()
    yield hosts
    hosts.teardown()


@pytest.mark.parametrize("kind,offload", [("tun", False), ("tap", False), ("tun", True)])
def test_tunnel_between_two_daemons_carries_ping_and_tcp_and_survives_a_restart(two_hosts, kind, offload):
    a, b = two_hosts.namespaces
    for ns, here, there, inner in [(a, "10.201.0.1", "10.201.0.2", "10.202.0.1/24"), (b, "10.201.0.2", "10.201.0.1", "10.202.0.2/24")]:
        code, body = two_hosts.curl(ns, "POST", "/devices", {
            "name": "vpn0", "type": kind, "mtu": 1400, "addresses": [inner], "offload": offload,
            "worker": {"mode": "tunnel", "local": f"{here}:7000", "remote": f"{there}:7000"}})
        assert code == 201, body
        assert body["offload"] is offload and (("tso4" in body["offloads"]) if offload else body["offloads"] == [])
    assert ping("10.202.0.2", 5, namespace=a) == 5
    server = subprocess.Popen(["ip", "netns", "exec", b, "timeout", "30", "iperf3", "-s", "-1", "-B", "10.202.0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(b, 5201, server)
    result = subprocess.run(["ip", "netns", "exec", a, "timeout", "30", "iperf3", "-c", "10.202.0.2", "-t", "2", "-J"],
                            capture_output=True, text=True, timeout=60)
    server.wait(timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("{"), f"iperf3 failed ({result.returncode}): {result.stderr}"
    report = json.loads(result.stdout)
    assert report["end"]["sum_received"]["bytes"] > 0, result.stdout[-500:]
    code, statistics = two_hosts.curl(a, "GET", "/devices/vpn0/stats")
    peer = statistics["worker"]["peer"]
    assert peer["packets_sent"] > 0 and peer["packets_received"] > 0
    if offload:
        # TSO: the kernel handed over super-packets, each sent as several datagrams.
        assert peer["packets_sent"] > 2 * statistics["worker"]["packets_read"], statistics["worker"]
        code, other = two_hosts.curl(b, "GET", "/devices/vpn0/stats")
        # GRO: segments from the peer were merged before being written.
        assert other["worker"]["packets_written"] < other["worker"]["peer"]["packets_received"], other["worker"]
    # Restart one side: the tunnel comes back by itself.
    two_hosts.kill(b)
    two_hosts.start(b)
    assert ping("10.202.0.2", 5, namespace=a) >= 4


def test_tunnel_over_an_ipv6_underlay(two_hosts):
    a, b = two_hosts.namespaces
    two_hosts.ip("-n", a, "addr", "add", "fd00:201::1/64", "dev", "va", "nodad")
    two_hosts.ip("-n", b, "addr", "add", "fd00:201::2/64", "dev", "vb", "nodad")
    for ns, here, there, inner in [(a, "fd00:201::1", "fd00:201::2", "10.203.0.1/24"), (b, "fd00:201::2", "fd00:201::1", "10.203.0.2/24")]:
        code, body = two_hosts.curl(ns, "POST", "/devices", {
            "name": "vpn6", "type": "tun", "mtu": 1400, "offload": True, "addresses": [inner],
            "worker": {"mode": "tunnel", "local": f"[{here}]:7000", "remote": f"[{there}]:7000"}})
        assert code == 201, body
        assert body["worker"]["remote"] == f"[{there}]:7000"
    assert ping("10.203.0.2", 5, namespace=a) == 5
    code, statistics = two_hosts.curl(b, "GET", "/devices/vpn6/stats")
    assert statistics["worker"]["peer"]["packets_received"] >= 5 and statistics["worker"]["dropped_reasons"]["unexpected_source"] == 0


def test_tunnel_drops_datagrams_from_unexpected_sources(two_hosts):
    a, b = two_hosts.namespaces
    code, _ = two_hosts.curl(a, "POST", "/devices", {"name": "vpn0", "type": "tun", "addresses": ["10.202.0.1/24"],
                                                   "worker": {"mode": "tunnel", "local": "10.201.0.1:7000", "remote": "10.201.0.2:7000"}})
    assert code == 201
    # From the right host but the wrong port, five times.
    for _ in range(5):
        subprocess.run(["ip", "netns", "exec", b, "python3", "-c",
                        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('10.201.0.2', 7001)); "
                        "s.sendto(bytes([0x45]) + bytes(27), ('10.201.0.1', 7000))"], check=True, timeout=10)
    for _ in range(50):
        code, statistics = two_hosts.curl(a, "GET", "/devices/vpn0/stats")
        if statistics["worker"]["dropped_reasons"]["unexpected_source"] >= 5:
            break
        time.sleep(0.1)
    assert statistics["worker"]["dropped_reasons"]["unexpected_source"] == 5
    assert statistics["worker"]["peer"]["packets_received"] == 0 and statistics["worker"]["packets_written"] == 0


def udp_bound(port):
    """The UDP sockets bound to `port` in this namespace."""
    return subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout.strip().splitlines()


LOOP_TUNNEL = {"name": "lt0", "type": "tun", "addresses": ["10.151.0.1/24"],
               "worker": {"mode": "tunnel", "local": "127.0.0.1:7100", "remote": "127.0.0.1:7101"}}


def test_a_tunnel_switches_to_a_new_remote_on_the_same_local(tund):
    """Regression: the old worker's socket stayed bound after stop(), so the switch failed with
    EADDRINUSE and took the old worker down with it."""
    assert tund.post("/devices", LOOP_TUNNEL).status == 201
    response = tund.request("PATCH", "/devices/lt0", body={"worker": {"mode": "tunnel", "local": "127.0.0.1:7100", "remote": "127.0.0.1:7102"}})
    assert response.status == 200, response
    assert response.json()["worker"] == {"mode": "tunnel", "local": "127.0.0.1:7100", "remote": "127.0.0.1:7102", "running": True}
    assert len(udp_bound(7100)) == 1


def test_a_failed_tunnel_switch_leaves_the_old_worker_running(tund):
    assert tund.post("/devices", LOOP_TUNNEL).status == 201
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 7200))
        response = tund.request("PATCH", "/devices/lt0", body={"worker": {"mode": "tunnel", "local": "127.0.0.1:7200", "remote": "127.0.0.1:7101"}})
        assert response.status == 409 and response.json()["error"]["errno"] == "EADDRINUSE", response
    device = tund.get("/devices/lt0").json()
    assert device["worker"] == {"mode": "tunnel", "local": "127.0.0.1:7100", "remote": "127.0.0.1:7101", "running": True}
    assert device["generation"] == 1 and len(udp_bound(7100)) == 1


def test_a_tunnel_device_deleted_behind_tunds_back_comes_back_with_its_worker(tund):
    created = tund.post("/devices", LOOP_TUNNEL).json()
    events = EventClient(tund.port, last_event_id=0)
    try:
        subprocess.run(["ip", "link", "del", "lt0"], check=True)
        _, seen = events.wait_for(lambda event: event[1] in ("drift.repaired", "worker.failed") and event[2]["device"] == "lt0")
    finally:
        events.close()
    assert "worker.failed" not in [event[1] for event in seen], seen
    device = tund.get("/devices/lt0").json()
    assert device["worker"]["running"] is True and device["state"]["ifindex"] != created["state"]["ifindex"]
    assert len(udp_bound(7100)) == 1


def test_a_tunnel_whose_remote_is_routed_through_itself_is_refused(tund):
    """Regression: the remote in the device's own connected prefix made a tunnel that sent its datagrams
    into itself forever. The kernel's answer (ip route get) decides, at create and at every change."""
    response = tund.post("/devices", {"name": "self0", "type": "tun", "addresses": ["10.150.0.1/24"],
                                      "worker": {"mode": "tunnel", "local": "10.150.0.1:7030", "remote": "10.150.0.2:7030"}})
    assert response.status == 422 and response.json()["error"]["field"] == "worker.remote", response
    assert "ip route get" in response.json()["error"]["message"]
    assert tund.get("/devices/self0").status == 404 and "self0" not in link_names()
    # Created down, the loop would only begin when it comes up: that PATCH is refused and changes nothing.
    response = tund.post("/devices", {"name": "self0", "type": "tun", "addresses": ["10.150.0.1/24"], "up": False,
                                      "worker": {"mode": "tunnel", "local": "10.150.0.1:7030", "remote": "10.150.0.2:7030"}})
    assert response.status == 201, response
    response = tund.request("PATCH", "/devices/self0", body={"up": True})
    assert response.status == 422 and response.json()["error"]["field"] == "worker.remote", response
    device = tund.get("/devices/self0").json()
    assert device["up"] is False and device["generation"] == 1 and "UP" not in ip_json("link", "show", "self0")[0]["flags"]


@pytest.fixture
def underlay():
    """A veth pair in the test's namespace: ve0 10.160.0.1/24 <-> ve1, the way to a tunnel's remote."""
    subprocess.run(["ip", "link", "add", "ve0", "type", "veth", "peer", "name", "ve1"], check=True)
    subprocess.run(["ip", "addr", "add", "10.160.0.1/24", "dev", "ve0"], check=True)
    for name in ("ve0", "ve1"):
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
    yield
    subprocess.run(["ip", "link", "del", "ve0"], capture_output=True)


def test_a_full_tunnel_is_accepted_while_its_remote_has_a_more_specific_route(tund, underlay):
    """Regression: 0.0.0.0/0 through the tunnel was refused although the remote's own route is more specific."""
    response = tund.post("/devices", {"name": "vpn0", "type": "tun", "addresses": ["10.161.0.1/24"],
                                      "routes": [{"destination": "0.0.0.0/0"}],
                                      "worker": {"mode": "tunnel", "local": "10.160.0.1:7000", "remote": "10.160.0.2:7000"}})
    assert response.status == 201, response
    assert [r["dst"] for r in ip_json("route", "show", "dev", "vpn0") if r.get("protocol") in ("212", 212)] == ["default"]
    # A route that would carry the tunnel's own datagrams into it is refused, and not left in the kernel.
    response = tund.post("/devices/vpn0/routes", {"destination": "10.160.0.2/32"})
    assert response.status == 422 and response.json()["error"]["field"] == "worker.remote", response
    assert [r["dst"] for r in ip_json("route", "show", "dev", "vpn0") if r.get("protocol") in ("212", 212)] == ["default"]
    assert tund.get("/devices/vpn0").json()["generation"] == 1


def test_a_tunnel_that_reads_its_own_datagrams_stops_instead_of_spinning(tund):
    """A loop made behind tund's back (a route to the remote through the tunnel's device): the worker sees
    its own datagram come back, stops, and says so with a worker.failed event."""
    response = tund.post("/devices", {"name": "loop0", "type": "tun", "addresses": ["10.151.0.1/24"],
                                      "worker": {"mode": "tunnel", "local": "10.151.0.1:7100", "remote": "10.152.0.2:7101"}})
    assert response.status == 201, response
    events = EventClient(tund.port, last_event_id=0)
    try:
        subprocess.run(["ip", "route", "add", "10.152.0.2/32", "dev", "loop0"], check=True)
        subprocess.run(["ping", "-c", "1", "-W", "1", "10.151.0.2"], capture_output=True, timeout=10)
        event, _ = events.wait_for(lambda event: event[1] == "worker.failed" and event[2]["device"] == "loop0")
    finally:
        events.close()
    assert "routing loop" in event[2]["detail"]["error"], event
    device = tund.get("/devices/loop0").json()
    assert device["worker"]["running"] is False
    read = stats(tund, "loop0")["worker"]["packets_read"]
    assert read <= 3, read  # the ping, and at most a datagram or two of its own, before it stopped
