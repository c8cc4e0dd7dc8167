"""Metrics (Prometheus text, checked by promtool), packet capture (pcap, read back by tshark), logs."""
import http.client
import socket
import struct
import subprocess
import threading

import pytest

from conftest import eventually
from test_devices import ping, stats

JSON = {"Content-Type": "application/json"}


def capture(tund, name, count, timeout, results):
    connection = http.client.HTTPConnection("127.0.0.1", tund.port, timeout=timeout + 10)
    connection.request("GET", f"/devices/{name}/capture?count={count}&timeout={timeout}")
    response = connection.getresponse()
    results["status"] = response.status
    results["type"] = response.getheader("Content-Type")
    results["body"] = response.read()
    connection.close()


def test_metrics_pass_promtool_with_three_devices(tund):
    assert tund.post("/devices", {"name": "tun0", "type": "tun", "addresses": ["10.10.0.1/24"]}).status == 201
    assert tund.post("/devices", {"name": "tap0", "type": "tap", "queues": 2}).status == 201
    assert tund.post("/devices", {"name": "tun1", "type": "tun"}).status == 201
    ping("10.10.0.2", 2)
    assert eventually(lambda: stats(tund, "tun0")["worker"]["protocols"]["icmp"] >= 2)
    response = tund.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.body.decode()
    check = subprocess.run(["promtool", "check", "metrics"], input=response.body, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'tund_worker_protocol_packets_total{device="tun0",queue="0",mode="count",protocol="icmp"} 2' in text
    assert 'tund_worker_packets_total{device="tap0",queue="1",mode="count",direction="read"}' in text
    assert 'tund_link_packets_total{device="tun0",direction="tx"}' in text
    assert "tund_devices 3" in text and 'tund_build_info{version="' in text
    assert 'tund_http_requests_total{method="POST",route="/devices",status="201"} 3' in text
    assert 'tund_http_request_duration_seconds_bucket{method="POST",route="/devices",le="+Inf"} 3' in text
    assert 'tund_drift_repaired_total{device="tun0"} 0' in text


def test_capture_of_ping_reads_back_in_tshark(tund, tmp_path):
    assert tund.post("/devices", {"name": "tun0", "type": "tun", "addresses": ["10.10.0.1/24"]}).status == 201
    results = {}
    reader = threading.Thread(target=capture, args=(tund, "tun0", 20, 3, results))
    reader.start()
    # The capture is registered before the pings start: wait until the stream answers headers.
    eventually(lambda: tund.get("/metrics").status == 200)
    ping("10.10.0.2", 3)
    reader.join(timeout=20)
    assert results["status"] == 200 and results["type"] == "application/vnd.tcpdump.pcap"
    body = results["body"]
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", body[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 101)
    path = tmp_path / "ping.pcap"
    path.write_bytes(body)
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "icmp.type == 8", "-T", "fields", "-e", "icmp.seq"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "2", "3"]


def test_capture_stops_at_count_and_tap_is_ethernet(tund):
    assert tund.post("/devices", {"name": "tun0", "type": "tun", "addresses": ["10.10.0.1/24"]}).status == 201
    results = {}
    reader = threading.Thread(target=capture, args=(tund, "tun0", 2, 30, results))
    reader.start()
    eventually(lambda: tund.get("/healthz").status == 200)
    ping("10.10.0.2", 4)
    reader.join(timeout=40)
    assert not reader.is_alive()
    body = results["body"]
    records, offset = 0, 24
    while offset < len(body):
        _, _, captured, _ = struct.unpack("<IIII", body[offset:offset + 16])
        offset += 16 + captured
        records += 1
    assert records == 2 and offset == len(body)

    assert tund.post("/devices", {"name": "tap0", "type": "tap"}).status == 201
    tap = {}
    capture(tund, "tap0", 1, 1, tap)  # nothing crosses tap0: the timeout ends it with just the header
    assert tap["status"] == 200 and len(tap["body"]) in (24,) or struct.unpack("<I", tap["body"][20:24])[0] == 1
    assert struct.unpack("<I", tap["body"][20:24])[0] == 1


def test_capture_rejects_bad_parameters_and_unknown_devices(tund):
    assert tund.post("/devices", {"name": "tun0", "type": "tun"}).status == 201
    for query, field in [("count=0", "count"), ("count=abc", "count"), ("timeout=0", "timeout"), ("timeout=99999", "timeout")]:
        response = tund.get(f"/devices/tun0/capture?{query}")
        assert response.status == 422 and response.json()["error"]["field"] == field, (query, response)
    assert tund.get("/devices/none0/capture?count=1&timeout=1").status == 404


def test_requests_and_changes_are_logged(tund):
    assert tund.post("/devices", {"name": "log0", "type": "tun", "mtu": 1400}).status == 201
    tund.request("PATCH", "/devices/log0", body={"mtu": 1300}, headers=JSON)
    tund.stop()
    log = tund.log()
    assert 'msg=request method=POST path=/devices status=201' in log.replace("duration_ms=", "").replace("  ", " ") or \
        ("msg=request" in log and "method=POST" in log and "status=201" in log)
    assert 'msg="device created"' in log and "device=log0" in log
    assert 'msg="device updated"' in log and "mtu=1300" in log
    tund.start()
    assert 'msg="device restored"' in tund.log()


def test_a_capture_ends_when_its_client_leaves(make_tund):
    """Regression: an abandoned capture held its connection slot until its timeout (up to an hour), so a
    few clients that left locked everyone else out with 503. It now ends when its client hangs up."""
    tund = make_tund(["--max-connections", "2"])
    assert tund.post("/devices", {"name": "tun0", "type": "tun"}).status == 201
    def open_capture():
        """A capture whose answer has begun (so it is registered), or None when the server is still full
        (the connection of an earlier request may not be released yet)."""
        client = socket.create_connection(("127.0.0.1", tund.port), timeout=10)
        client.sendall(b"GET /devices/tun0/capture?count=1000&timeout=3600 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            assert chunk, head
            head += chunk
        if head.startswith(b"HTTP/1.1 503 "):
            client.close()
            return None
        assert head.startswith(b"HTTP/1.1 200 "), head
        return client

    clients = []
    for _ in range(2):
        client = eventually(open_capture, attempts=100)
        assert client is not None, "no connection slot came free for the capture"
        clients.append(client)
    assert tund.get("/devices").status == 503  # both slots held, as they should be while the clients stay
    for client in clients:
        client.close()
    # Bounded wait for the condition: the slots come back long before the captures' timeout.
    assert eventually(lambda: tund.get("/devices").status == 200, attempts=100)


def test_made_up_methods_do_not_grow_the_request_metrics(tund):
    # A request no route takes is counted by method; a method tund does not know is counted as "other",
    # so a client cannot add label sets (and memory) without bound.
    for method in ("FROB1", "FROB2", "FROB3"):
        assert tund.request(method, "/nowhere").status in (400, 404, 405, 501)
    assert tund.request("GET", "/nowhere").status == 404
    text = tund.get("/metrics").body.decode()
    assert "FROB" not in text
    lines = [line for line in text.splitlines() if line.startswith('tund_http_request_duration_seconds_count{method="other",route="unmatched"}')]
    assert lines and lines[0].endswith(" 3"), lines
    assert 'tund_http_requests_total{method="GET",route="unmatched",status="404"} 1' in text
