"""The wireguard worker against a real WireGuard peer: Debian's wireguard-go, configured with `wg`, in a
namespace of its own joined to the test's namespace by a veth pair.

Safety: wireguard-go creates an interface named after whatever argument it gets, where it runs; it is
only ever started as `ip netns exec NS wireguard-go -f IFNAME` inside a namespace this test made (and
deletes), with an interface name unique to the run."""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import eventually, ip_json, tund_binary
from sse import EventClient
from test_tundctl import ok, tundctl

JSON = {"Content-Type": "application/json"}
HERE, THERE = "10.99.0.1", "10.99.0.2"        # the veth underlay
INNER_HERE, INNER_THERE = "10.100.0.1", "10.100.0.2"
PORT = 51820


def wg(*args, netns, input=None):
    return subprocess.run(["ip", "netns", "exec", netns, "wg", *args], input=input, capture_output=True, text=True,
                          check=True, timeout=20).stdout.strip()


def genkey():
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    return private, public


def ping(address, netns=None):
    command = (["ip", "netns", "exec", netns] if netns else []) + ["ping", "-c", "1", "-W", "1", address]
    return subprocess.run(command, capture_output=True, timeout=10).returncode == 0


@pytest.fixture
def underlay():
    """A namespace reachable over a veth: 10.99.0.1 here, 10.99.0.2 there. Deleted afterwards."""
    netns = f"tund-wg-{os.getpid()}"
    veth = f"vwg{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns], check=True)
        subprocess.run(["ip", "addr", "add", f"{HERE}/24", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        for command in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{THERE}/24", "dev", "eth0"],
                        ["ip", "link", "set", "eth0", "up"]):
            subprocess.run(["ip", "netns", "exec", netns, *command], check=True)
        yield netns
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        subprocess.run(["ip", "link", "del", veth], capture_output=True)


@pytest.fixture
def peer(underlay):
    """wireguard-go on wgX (10.100.0.2/24) in the underlay's namespace."""
    netns = underlay
    ifname = f"wgx{os.getpid() % 100000}"
    process = subprocess.Popen(["ip", "netns", "exec", netns, "wireguard-go", "-f", ifname],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ, LOG_LEVEL="error"))
    try:
        assert eventually(lambda: any(link["ifname"] == ifname for link in ip_json("-n", netns, "link", "show"))), \
            "wireguard-go made no interface"
        private, public = genkey()
        with tempfile.NamedTemporaryFile("w", delete=False) as key_file:
            key_file.write(private + "\n")
        os.chmod(key_file.name, 0o600)
        wg("set", ifname, "private-key", key_file.name, "listen-port", str(PORT), netns=netns)
        os.unlink(key_file.name)
        subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", f"{INNER_THERE}/24", "dev", ifname], check=True)
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", ifname, "up"], check=True)
        yield {"netns": netns, "ifname": ifname, "public": public}
    finally:
        process.kill()
        process.wait(timeout=10)


def device_body(peer_public, **peer_fields):
    peer = {"public_key": peer_public, "endpoint": f"{THERE}:{PORT}", "allowed_ips": [f"{INNER_THERE}/32"]}
    peer.update(peer_fields)
    return {"name": "wg0", "type": "tun", "addresses": [f"{INNER_HERE}/24"],
            "worker": {"mode": "wireguard", "listen_port": PORT, "peers": [peer]}}


def tell_peer_about(peer, tund_public, endpoint=True, psk_file=None):
    args = ["set", peer["ifname"], "peer", tund_public, "allowed-ips", f"{INNER_HERE}/32"]
    if endpoint:
        args += ["endpoint", f"{HERE}:{PORT}"]
    if psk_file:
        args += ["preshared-key", psk_file]
    wg(*args, netns=peer["netns"])


def handshake_seen_by_peer(peer, tund_public):
    lines = wg("show", peer["ifname"], "latest-handshakes", netns=peer["netns"]).splitlines()
    return any(line.split()[0] == tund_public and int(line.split()[1]) > 0 for line in lines if line.strip())


# A TCP sink: accepts one connection, reads to the end, prints how many bytes and their SHA-256.
TCP_SINK = r"""
import hashlib, socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(30)
connection, _ = server.accept()
connection.settimeout(30)
digest, count = hashlib.sha256(), 0
while True:
    data = connection.recv(1 << 16)
    if not data:
        break
    digest.update(data)
    count += len(data)
print(count, digest.hexdigest())
"""

# Sends COUNT pseudo-random bytes (seeded) in large writes, so the kernel makes TSO super-packets of them;
# with an MSS (not 0), segments that small: a 64 KiB super-packet is then cut into over a hundred.
TCP_SOURCE = r"""
import hashlib, random, socket, sys
data = random.Random(int(sys.argv[4])).randbytes(int(sys.argv[3]))
connection = socket.socket()
if int(sys.argv[5]):
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, int(sys.argv[5]))
connection.settimeout(30)
connection.connect((sys.argv[1], int(sys.argv[2])))
connection.sendall(data)
connection.close()
print(len(data), hashlib.sha256(data).hexdigest())
"""


# A UDP sink: takes COUNT datagrams (or gives up after 30 s of silence), each "index:" then bytes derived
# from the index; prints how many arrived and how many were not what was sent.
UDP_SINK = r"""
import hashlib, socket, sys
address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE, which Python does not name
sink.bind((address, port))
sink.settimeout(30)
print("ready", flush=True)
seen, bad = set(), 0
try:
    while len(seen) < count:
        data = sink.recv(2048)
        index, _, body = data.partition(b":")
        if body != hashlib.sha256(index).digest() * 10:
            bad += 1
        seen.add(index)
except socket.timeout:
    pass
print(len(seen), bad)
"""

# Sends COUNT such datagrams as fast as the stack takes them: IP_RECVERR makes a full queue in front of
# the device an ENOBUFS to retry instead of a silent drop.
UDP_SOURCE = r"""
import errno, hashlib, socket, sys
address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
source = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
source.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR, which Python does not name
for index in range(count):
    label = str(index).encode()
    while True:
        try:
            source.sendto(label + b":" + hashlib.sha256(label).digest() * 10, (address, port))
            break
        except OSError as error:
            if error.errno != errno.ENOBUFS:
                raise
"""


def inside(netns):
    """The prefix that runs a command in NETNS (None: this namespace)."""
    return ["ip", "netns", "exec", netns] if netns else []


def udp_burst(source_netns, sink_netns, address, port=5401, count=3000):
    """COUNT datagrams of one flow from one namespace (None: this one) to ADDRESS in another, sent back to
    back; asserts every one arrives unchanged."""
    sink = subprocess.Popen(inside(sink_netns) + ["timeout", "60", "python3", "-c", UDP_SINK, address, str(port), str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline().strip() == "ready", f"the UDP sink did not start: {sink.stderr.read() if sink.poll() is not None else ''}"
        sent = subprocess.run(inside(source_netns) + ["timeout", "60", "python3", "-c", UDP_SOURCE, address, str(port), str(count)],
                              capture_output=True, text=True, timeout=90)
        assert sent.returncode == 0, sent.stderr
        received, errors = sink.communicate(timeout=90)
        assert sink.returncode == 0, errors
        assert received.split() == [str(count), "0"], received
    finally:
        sink.kill()
        sink.wait(timeout=10)


def tcp_transfer(source_netns, sink_netns, address, port=5301, count=8 << 20, seed=7, mss=0):
    """COUNT bytes over TCP from one namespace (None: this one) to ADDRESS in another; asserts they
    arrive whole and unchanged."""
    sink = subprocess.Popen(inside(sink_netns) + ["timeout", "60", "python3", "-c", TCP_SINK, address, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listening = ["ss", "-Hltn", f"sport = :{port}"]
        assert eventually(lambda: subprocess.run(inside(sink_netns) + listening, capture_output=True, text=True).stdout.strip()
                          or sink.poll() is not None) and sink.poll() is None, "the sink did not listen"
        sent = subprocess.run(inside(source_netns) + ["timeout", "60", "python3", "-c", TCP_SOURCE, address, str(port), str(count), str(seed), str(mss)],
                              capture_output=True, text=True, timeout=90)
        assert sent.returncode == 0, sent.stderr
        received, errors = sink.communicate(timeout=90)
        assert sink.returncode == 0, errors
        assert received.split() == sent.stdout.split(), (received, sent.stdout)
    finally:
        sink.kill()
        sink.wait(timeout=10)


def test_tund_and_wireguard_go_handshake_and_carry_ping_both_ways(tund, peer):
    created = tund.post("/devices", device_body(peer["public"]))
    assert created.status == 201, created
    worker = created.json()["worker"]
    assert "private_key" not in worker and len(worker["public_key"]) == 44, worker
    # No MTU asked for: a wireguard device gets 1408 (whole ChaCha20 blocks; fits a 1500 underlay).
    assert created.json()["mtu"] == 1408 and created.json()["state"]["mtu"] == 1408, created.json()
    tell_peer_about(peer, worker["public_key"])

    # tund initiates (its packet to 10.100.0.2 needs a session), then traffic flows both ways.
    events = EventClient(tund.port)
    try:
        assert eventually(lambda: ping(INNER_THERE)), "no reply through the tunnel"
        event, _ = events.wait_for(lambda e: e[1] == "peer.handshake")
        assert event[2]["device"] == "wg0" and event[2]["detail"] == {"public_key": peer["public"], "endpoint": f"{THERE}:{PORT}"}
    finally:
        events.close()
    assert handshake_seen_by_peer(peer, worker["public_key"])
    assert eventually(lambda: ping(INNER_HERE, netns=peer["netns"]))
    transfer = wg("show", peer["ifname"], "transfer", netns=peer["netns"]).split()
    assert transfer[0] == worker["public_key"] and int(transfer[1]) > 0 and int(transfer[2]) > 0, transfer

    stats = tund.get("/devices/wg0/stats").json()
    (status,) = stats["peers"]
    assert status["public_key"] == peer["public"] and status["last_handshake_at"] is not None, status
    assert status["rx_bytes"] > 0 and status["tx_bytes"] > 0 and status["handshakes_completed"] >= 1, status
    metrics = tund.get("/metrics").body.decode()
    assert f'tund_wireguard_peer_bytes_total{{device="wg0",public_key="{peer["public"]}",direction="rx"}}' in metrics
    shown = ok(tundctl(tund, "peers", "wg0"))
    assert f"peer: {peer['public']}" in shown and f"endpoint: {THERE}:{PORT}" in shown and "allowed ips: 10.100.0.2/32" in shown, shown
    assert "latest handshake: 20" in shown and worker["public_key"] in shown, shown


def test_wireguard_go_initiates_and_tund_learns_its_endpoint(tund, peer):
    created = tund.post("/devices", device_body(peer["public"], endpoint=None))
    assert created.status == 201, created
    tund_public = created.json()["worker"]["public_key"]
    tell_peer_about(peer, tund_public)
    assert eventually(lambda: ping(INNER_HERE, netns=peer["netns"])), "wireguard-go's handshake was not answered"
    status = tund.get("/devices/wg0/stats").json()["peers"][0]
    assert status["endpoint"] == f"{THERE}:{PORT}", status


def test_a_preshared_key_a_live_peer_change_and_a_restart(tund, peer):
    psk = subprocess.run(["wg", "genpsk"], capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    with tempfile.NamedTemporaryFile("w", delete=False) as psk_file:
        psk_file.write(psk + "\n")
    created = tund.post("/devices", device_body(peer["public"], preshared_key=psk))
    assert created.status == 201, created
    assert created.json()["worker"]["peers"][0]["preshared_key"] is True  # said to be there, never shown
    tund_public = created.json()["worker"]["public_key"]
    tell_peer_about(peer, tund_public, psk_file=psk_file.name)
    os.unlink(psk_file.name)
    assert eventually(lambda: ping(INNER_THERE))
    assert psk not in tund.log() and psk not in tund.get("/devices/wg0").body.decode()

    # Removed live: no more replies; added back: they return.
    key_path = peer["public"].replace("/", "%2F").replace("+", "%2B").replace("=", "%3D")
    assert tund.delete(f"/devices/wg0/peers/{key_path}").status == 204
    assert not ping(INNER_THERE)
    added = tund.request("POST", "/devices/wg0/peers", body={"public_key": peer["public"], "endpoint": f"{THERE}:{PORT}",
                                                              "allowed_ips": [f"{INNER_THERE}/32"], "preshared_key": psk}, headers=JSON)
    assert added.status == 201, added
    assert eventually(lambda: ping(INNER_THERE))

    # SIGKILL and restart: the same key (stored), a new session made by itself.
    tund.kill()
    tund.start()
    assert tund.get("/devices/wg0").json()["worker"]["public_key"] == tund_public
    assert eventually(lambda: ping(INNER_THERE)), "the session did not come back after a restart"


def test_wireguard_configuration_errors_name_the_field_and_echo_no_secret(tund):
    private, public = genkey()
    cases = [
        ({"name": "wgbad", "type": "tap", "worker": {"mode": "wireguard", "listen_port": PORT}}, "worker.mode"),
        ({"name": "wgbad", "type": "tun", "worker": {"mode": "wireguard"}}, "worker.listen_port"),
        ({"name": "wgbad", "type": "tun", "worker": {"mode": "wireguard", "listen_port": PORT, "private_key": private[:-2] + "x="}},
         "worker.private_key"),
        ({"name": "wgbad", "type": "tun", "worker": {"mode": "wireguard", "listen_port": PORT, "peers": [{"public_key": "nope"}]}},
         "worker.peers[0].public_key"),
        ({"name": "wgbad", "type": "tun", "worker": {"mode": "count", "listen_port": PORT}}, "worker.peers"),
    ]
    for body, field in cases:
        answer = tund.post("/devices", body)
        assert answer.status == 422 and answer.json()["error"]["field"] == field, (body, answer)
        assert private not in answer.body.decode()
    assert tund.get("/devices").json()["devices"] == []
    # Peers belong to a wireguard worker: on a device in another mode the request conflicts with its state.
    assert tund.post("/devices", {"name": "plain0", "type": "tun"}).status == 201
    answer = tund.post("/devices/plain0/peers", {"public_key": public})
    assert answer.status == 409 and answer.json()["error"]["code"] == "not_wireguard", answer
    assert tund.get("/devices/plain0").json()["worker"] == {"mode": "count", "running": True}


def test_a_device_declared_again_without_its_key_keeps_the_key_tund_drew(tund):
    """A key tund drew is the device's own: declaring the device again, by PUT /devices or PATCH, without
    a private_key keeps it (a new key would cut off every peer); naming a key replaces it."""
    body = {"name": "wgkeep", "type": "tun", "worker": {"mode": "wireguard", "listen_port": PORT}}
    answer = tund.request("PUT", "/devices", body={"devices": [body]}, headers=JSON)
    assert answer.status == 200 and answer.json()["create"] == ["wgkeep"], answer
    public = tund.get("/devices/wgkeep").json()["worker"]["public_key"]
    answer = tund.request("PUT", "/devices", body={"devices": [body]}, headers=JSON)
    assert answer.status == 200 and answer.json()["unchanged"] == ["wgkeep"], answer.json()
    assert tund.get("/devices/wgkeep").json()["worker"]["public_key"] == public

    answer = tund.request("PATCH", "/devices/wgkeep", body={"worker": {"mode": "wireguard", "listen_port": PORT + 1}},
                          headers=JSON)
    assert answer.status == 200, answer
    assert answer.json()["worker"]["public_key"] == public and answer.json()["worker"]["listen_port"] == PORT + 1

    private, named = genkey()
    answer = tund.request("PATCH", "/devices/wgkeep", body={"worker": {"mode": "wireguard", "listen_port": PORT,
                                                                        "private_key": private}}, headers=JSON)
    assert answer.status == 200 and answer.json()["worker"]["public_key"] == named
    assert private not in answer.body.decode()


# Handshake initiations with junk MAC1s, as fast as one Python loop sends them, bounded in count and time.
FLOOD = r"""
import os, socket, sys, time
target = (sys.argv[1], int(sys.argv[2]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent, deadline = 0, time.monotonic() + 4
while sent < 200000 and time.monotonic() < deadline:
    sock.sendto(b"\x01\x00\x00\x00" + os.urandom(144), target)
    sent += 1
print(sent)
"""


def test_a_flood_of_bad_mac1_initiations_leaves_the_session_working_and_is_counted(tund, peer):
    created = tund.post("/devices", device_body(peer["public"]))
    assert created.status == 201, created
    tell_peer_about(peer, created.json()["worker"]["public_key"])
    assert eventually(lambda: ping(INNER_THERE))

    flood = subprocess.Popen(["ip", "netns", "exec", peer["netns"], "python3", "-c", FLOOD, HERE, str(PORT)],
                             stdout=subprocess.PIPE, text=True)
    try:
        # During the flood, data through the established session keeps flowing.
        replies = sum(ping(INNER_THERE) for _ in range(5))
    finally:
        sent = int(flood.communicate(timeout=30)[0].strip() or 0)
    assert replies >= 4, f"only {replies} of 5 pings answered during the flood"
    assert sent > 0
    stats = tund.get("/devices/wg0/stats").json()
    assert stats["wireguard_dropped"]["bad_mac"] > 0, stats["wireguard_dropped"]
    assert stats["peers"][0]["handshakes_completed"] >= 1 and stats["peers"][0]["dropped"]["bad_mac"] == 0, stats["peers"]
    metrics = tund.get("/metrics").body.decode()
    assert 'tund_wireguard_dropped_total{device="wg0",reason="bad_mac"}' in metrics


def test_the_peer_roams_and_tund_follows_its_authenticated_packets(tund, peer):
    created = tund.post("/devices", device_body(peer["public"]))
    assert created.status == 201, created
    tell_peer_about(peer, created.json()["worker"]["public_key"])
    assert eventually(lambda: ping(INNER_THERE))
    # wireguard-go moves to another UDP address (its port: Debian's wireguard-go keeps sending from a
    # source IP it has cached, so a moved IP is not what it does well); its next packets come from there.
    wg("set", peer["ifname"], "listen-port", str(PORT + 1), netns=peer["netns"])
    assert eventually(lambda: ping(INNER_HERE, netns=peer["netns"]))
    assert eventually(lambda: tund.get("/devices/wg0/stats").json()["peers"][0]["endpoint"] == f"{THERE}:{PORT + 1}")
    assert ping(INNER_THERE), "tund kept sending to the old address"


@pytest.mark.parametrize("offload,spread", [(False, "auto"), (True, "off"), (True, "on")])
def test_two_tunds_form_a_wireguard_pair(make_tund, underlay, offload, spread):
    """tund in this namespace and a second tund in the peer's namespace (its API reached with curl from
    inside it), each with the other as its only peer: traffic both ways, both sides see the handshake.
    With offloads on both sides, TCP goes as super-packets (TSO out, GRO in) and arrives unchanged, with
    each batch's sealing and opening on the device's own thread, and shared among the data-plane threads
    (`--spread-crypto on`, two threads each: bytes sealed by one thread and opened by another)."""
    arguments = ["--spread-crypto", spread, "--data-plane-threads", "2"]
    tund = make_tund(arguments)
    directory = tempfile.mkdtemp(prefix="tund-e2e-wg-")
    port = 18930
    # In a session of its own, so the whole group (timeout and the tund under it) can be killed: killing
    # timeout alone would leave the tund running, in a namespace that is then deleted.
    other = subprocess.Popen(["ip", "netns", "exec", underlay, "timeout", "120", tund_binary(),
                              "--listen", f"127.0.0.1:{port}", "--database", os.path.join(directory, "tund.db"), *arguments],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def api(method, path, body=None):
        command = ["ip", "netns", "exec", underlay, "curl", "-s", "-X", method, f"http://127.0.0.1:{port}{path}"]
        if body is not None:
            command += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        answer = subprocess.run(command, capture_output=True, text=True, timeout=20).stdout
        return json.loads(answer) if answer.strip() else None

    try:
        assert eventually(lambda: (api("GET", "/readyz") or {}).get("status") == "ready"), "the second tund did not start"
        here = tund.post("/devices", {"name": "wg0", "type": "tun", "addresses": [f"{INNER_HERE}/24"], "offload": offload,
                                      "worker": {"mode": "wireguard", "listen_port": PORT}})
        assert here.status == 201, here
        there = api("POST", "/devices", {"name": "wg1", "type": "tun", "addresses": [f"{INNER_THERE}/24"], "offload": offload,
                                         "worker": {"mode": "wireguard", "listen_port": PORT + 2,
                                                    "peers": [{"public_key": here.json()["worker"]["public_key"],
                                                               "endpoint": f"{HERE}:{PORT}", "allowed_ips": [f"{INNER_HERE}/32"]}]}})
        assert there["worker"]["public_key"], there
        added = tund.request("POST", "/devices/wg0/peers", body={"public_key": there["worker"]["public_key"],
                                                                  "endpoint": f"{THERE}:{PORT + 2}", "allowed_ips": [f"{INNER_THERE}/32"]},
                             headers=JSON)
        assert added.status == 201, added
        assert eventually(lambda: ping(INNER_THERE)) and eventually(lambda: ping(INNER_HERE, netns=underlay))
        assert tund.get("/devices/wg0/stats").json()["peers"][0]["handshakes_completed"] >= 1
        assert api("GET", "/devices/wg1/stats")["peers"][0]["rx_bytes"] > 0
        if offload:
            tcp_transfer(None, underlay, INNER_THERE)
            tcp_transfer(underlay, None, INNER_HERE, seed=9)
            # Segments of 400 bytes: well over a hundred to a super-packet.
            tcp_transfer(None, underlay, INNER_THERE, count=2 << 20, seed=10, mss=400)
            worker = tund.get("/devices/wg0/stats").json()["worker"]
            # Super-packets out, and on the way in segments merged before they were written.
            assert worker["peer"]["packets_sent"] > 2 * worker["packets_read"], worker
            assert worker["packets_written"] < worker["peer"]["packets_received"], worker
            # A burst of one UDP flow: datagrams opened in one batch go into the device as USO
            # super-packets, and the receiver still gets each datagram as it was sent. A tun device
            # drops what its ring cannot hold and nothing tells the sender, so the ring here holds the
            # whole burst.
            subprocess.run(["ip", "-n", underlay, "link", "set", "wg1", "txqueuelen", "4000"], check=True)
            udp_burst(underlay, None, INNER_HERE)
            after = tund.get("/devices/wg0/stats").json()["worker"]
            written = after["packets_written"] - worker["packets_written"]
            received = after["peer"]["packets_received"] - worker["peer"]["packets_received"]
            assert 0 < written < received, (worker, after)
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def test_with_offloads_tcp_crosses_to_wireguard_go_unchanged_both_ways(tund, peer):
    """A device with offloads: the kernel hands tund TSO super-packets, which it cuts into packets (headers
    and checksums rebuilt), seals and sends with UDP GSO; wireguard-go, which knows nothing of that,
    must get every segment right. Bytes are compared end to end in both directions."""
    created = tund.post("/devices", dict(device_body(peer["public"]), offload=True, mtu=1420))
    assert created.status == 201, created
    assert "tso4" in created.json()["offloads"], created.json()
    tell_peer_about(peer, created.json()["worker"]["public_key"])
    subprocess.run(["ip", "netns", "exec", peer["netns"], "ip", "link", "set", peer["ifname"], "mtu", "1420"], check=True)
    assert eventually(lambda: ping(INNER_THERE)), "no reply through the tunnel"
    tcp_transfer(None, peer["netns"], INNER_THERE)
    tcp_transfer(peer["netns"], None, INNER_HERE, seed=8)
    stats = tund.get("/devices/wg0/stats").json()
    worker = stats["worker"]
    # TSO: super-packets were read and each left as several datagrams.
    assert worker["peer"]["packets_sent"] > 2 * worker["packets_read"], worker
    (status,) = stats["peers"]
    assert status["tx_bytes"] > 8 << 20 and status["rx_bytes"] > 8 << 20, status


# Initiations whose MAC1 is right for tund's public key (so they would each cost a Curve25519 operation)
# and whose content is junk: under load tund must answer them with cookie replies, not DH.
VALID_MAC1_FLOOD = r"""
import base64, hashlib, os, select, socket, sys, time
key = hashlib.blake2s(b"mac1----" + base64.b64decode(sys.argv[3])).digest()
target = (sys.argv[1], int(sys.argv[2]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setblocking(False)
# 20,000 a second (bursts of 200 every 10 ms): 150 times what puts tund under load, yet not so many
# that its socket overflows and drops the real peer's retry at random. Until stdin closes (the test is
# done with the load), at most 30 s and 2 million datagrams.
sent, replies, deadline = 0, 0, time.monotonic() + 30
while sent < 2000000 and time.monotonic() < deadline:
    burst_start = time.monotonic()
    for _ in range(200):
        body = b"\x01\x00\x00\x00" + os.urandom(112)
        sock.sendto(body + hashlib.blake2s(body, key=key, digest_size=16).digest() + bytes(16), target)
        sent += 1
    try:
        while True:
            if len(sock.recv(2048)) == 64:
                replies += 1
    except BlockingIOError:
        pass
    # The rest of the 10 ms waiting on stdin, which also says when to stop.
    if select.select([sys.stdin], [], [], max(0, burst_start + 0.01 - time.monotonic()))[0] and not sys.stdin.read(1):
        break
print(sent, replies)
"""


def test_under_load_initiations_get_cookie_replies_and_the_session_keeps_working(tund, peer):
    created = tund.post("/devices", device_body(peer["public"]))
    assert created.status == 201, created
    tund_public = created.json()["worker"]["public_key"]
    tell_peer_about(peer, tund_public)
    assert eventually(lambda: ping(INNER_THERE))

    flood = subprocess.Popen(["ip", "netns", "exec", peer["netns"], "python3", "-c", VALID_MAC1_FLOOD, HERE, str(PORT), tund_public],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: tund.get("/devices/wg0/stats").json()["wireguard_dropped"].get("under_load_cookie", 0) > 0)
        # The established session carries data through the load.
        replies = sum(ping(INNER_THERE) for _ in range(5))
        # A new handshake from wireguard-go while the load lasts: its first initiation gets a cookie reply,
        # its retry carries MAC2 from that cookie and is answered. (Were MAC2 wrong, no handshake could
        # complete until the load stops, and the load stops only after this.)
        before = tund.get("/devices/wg0/stats").json()["peers"][0]["handshakes_completed"]
        wg("set", peer["ifname"], "peer", tund_public, "remove", netns=peer["netns"])
        tell_peer_about(peer, tund_public)
        assert eventually(lambda: ping(INNER_HERE, netns=peer["netns"]), attempts=25), "no handshake completed under load"
        assert flood.poll() is None, "the load ended before the handshake completed"
        assert tund.get("/devices/wg0/stats").json()["peers"][0]["handshakes_completed"] > before
    finally:
        flood.stdin.close()
        flood.wait(timeout=40)
        sent, cookies = (int(x) for x in flood.stdout.read().split())
    assert replies >= 4, f"only {replies} of 5 pings answered during the flood"
    dropped = tund.get("/devices/wg0/stats").json()["wireguard_dropped"]
    assert cookies > 0 and 0 < dropped["under_load_cookie"] <= sent + 10, (sent, cookies, dropped)
