"""tundctl end to end: the command-line client against the real daemon, checked in the kernel with `ip -j`.

tundctl talks to tund over HTTP only, so every test runs a command, reads its output (tables for people,
JSON with --json) and exit status, and compares the kernel's view. Capture and bearer tokens are checked
against a small fake server that speaks the documented contract, so the client is tested before, and
independently of, the daemon's side. Every subprocess is bounded with a timeout.
"""
import json
import os
import struct
import subprocess
import time

import pytest

from conftest import ROOT, free_port, ip_json, link_names, tund_binary
from fake_http import FakeServer, QuietHandler


def tundctl_binary() -> str:
    tund = os.environ.get("TUND_BIN") or str(ROOT / ".build" / "debug" / "tund")
    binary = os.path.join(os.path.dirname(tund), "tundctl")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no tundctl binary at {binary}: build first (swift build)", pytrace=False)
    return binary


def tundctl(server, *args, timeout=20, env=None):
    """Runs tundctl with `args`, then `--server` for `server` (a Tund fixture or a URL; None: leave it to
    the environment). Returns the CompletedProcess with text output."""
    command = [tundctl_binary(), *args]
    if server is not None:
        command += ["--server", server if isinstance(server, str) else f"http://127.0.0.1:{server.port}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def global_addresses(name):
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in ip_json("addr", "show", name)[0]["addr_info"]
                  if a.get("scope") == "global")


def route_destinations(name):
    return sorted(route["dst"] for route in ip_json("-4", "route", "show", "dev", name)
                  if route.get("protocol") in ("212", 212))


def create_tun0(tund, *extra):
    return ok(tundctl(tund, "devices", "create", "tun0", "--type", "tun", "--mtu", "1400",
                      "--address", "10.10.0.1/24", "--route", "10.20.0.0/16,via=10.10.0.2", *extra))


# --- devices ---------------------------------------------------------------------------------------

def test_devices_create_list_show_delete(tund):
    shown = create_tun0(tund)
    assert "tun0" in shown and "10.10.0.1/24" in shown and "#1 10.20.0.0/16 via 10.10.0.2" in shown
    link = ip_json("link", "show", "tun0")[0]
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    assert global_addresses("tun0") == ["10.10.0.1/24"]
    assert route_destinations("tun0") == ["10.20.0.0/16"]

    table = ok(tundctl(tund, "devices", "list")).splitlines()
    assert table[0].split() == ["NAME", "TYPE", "MTU", "UP", "QUEUES", "ADDRESSES", "WORKER", "PRESENT", "DRIFT"]
    row = table[1].split()
    assert row == ["tun0", "tun", "1400", "yes", "1", "10.10.0.1/24", "running", "yes", "0/0"]
    # Columns are aligned: each header starts where its cells start.
    assert table[0].index("MTU") == table[1].index("1400")

    detail = ok(tundctl(tund, "devices", "show", "tun0"))
    lines = dict(line.split(":", 1) for line in detail.splitlines() if line and not line.startswith(" "))
    assert lines["name"].strip() == "tun0" and lines["mtu"].strip() == "1400" and lines["policy"].strip() == "repair"
    assert "present, ifindex" in lines["state"]

    assert ok(tundctl(tund, "devices", "delete", "tun0")).strip() == "deleted tun0"
    assert "tun0" not in link_names()
    assert ok(tundctl(tund, "devices", "list")).strip() == "no devices"


def test_json_output_parses_with_json_and_jq(tund):
    created = json.loads(ok(tundctl(tund, "devices", "create", "tun0", "--address", "10.10.0.1/24", "--json")))
    assert created["name"] == "tun0" and created["type"] == "tun" and created["generation"] == 1
    listed = ok(tundctl(tund, "devices", "list", "--json"))
    assert [device["name"] for device in json.loads(listed)["devices"]] == ["tun0"]
    names = subprocess.run(["jq", "-r", ".devices[].name"], input=listed, capture_output=True, text=True,
                           timeout=10, check=True).stdout.split()
    assert names == ["tun0"]
    shown = json.loads(ok(tundctl(tund, "devices", "show", "tun0", "--json")))
    assert shown["addresses"] == ["10.10.0.1/24"] and shown["state"]["present"] is True
    stats = json.loads(ok(tundctl(tund, "stats", "tun0", "--json")))
    assert stats["name"] == "tun0" and "packets_read" in stats["worker"]
    # A change with no answer body prints nothing with --json.
    assert ok(tundctl(tund, "devices", "delete", "tun0", "--json")) == ""


def test_create_with_every_option_and_kernel_named_tap(tund):
    shown = json.loads(ok(tundctl(tund, "devices", "create", "--type", "tap", "--mac", "02:00:00:00:00:42",
                                  "--queues", "2", "--down", "--policy", "report", "--owner", "0", "--group", "0",
                                  "--json")))
    name = shown["name"]
    assert name.startswith("tap") and shown["queues"] == 2 and shown["up"] is False and shown["policy"] == "report"
    link = ip_json("link", "show", name)[0]
    assert link["address"] == "02:00:00:00:00:42" and "UP" not in link["flags"]


def test_devices_set_changes_the_live_device(tund):
    create_tun0(tund)
    shown = json.loads(ok(tundctl(tund, "devices", "set", "tun0", "--mtu", "1300", "--policy", "report", "--json")))
    assert shown["mtu"] == 1300 and shown["policy"] == "report" and shown["generation"] == 2
    assert ip_json("link", "show", "tun0")[0]["mtu"] == 1300
    stale = tundctl(tund, "devices", "set", "tun0", "--mtu", "1200", "--if-match", "1")
    assert stale.returncode == 1 and "precondition_failed" in stale.stderr
    assert ip_json("link", "show", "tun0")[0]["mtu"] == 1300


def test_idempotent_create_says_it_was_replayed(tund):
    first = tundctl(tund, "devices", "create", "tun0", "--idempotency-key", "k-1", "--json")
    again = tundctl(tund, "devices", "create", "tun0", "--idempotency-key", "k-1", "--json")
    assert json.loads(ok(first))["name"] == json.loads(ok(again))["name"] == "tun0"
    assert "replayed" in again.stderr


# --- addresses and routes ----------------------------------------------------------------------------

def test_addresses_add_and_del_change_the_kernel(tund):
    create_tun0(tund)
    assert ok(tundctl(tund, "addresses", "add", "tun0", "10.10.1.1/24")).strip() == "added 10.10.1.1/24 to tun0"
    assert ok(tundctl(tund, "addresses", "add", "tun0", "fd00:10::1/64", "--json")).strip() == '{"address":"fd00:10::1/64"}'
    assert "10.10.1.1/24" in global_addresses("tun0")
    assert ok(tundctl(tund, "addresses", "list", "tun0")).split() == ["10.10.0.1/24", "10.10.1.1/24", "fd00:10::1/64"]
    # With and without its prefix length; the "/" travels percent-encoded.
    ok(tundctl(tund, "addresses", "del", "tun0", "10.10.1.1/24"))
    ok(tundctl(tund, "addresses", "del", "tun0", "fd00:10::1"))
    assert global_addresses("tun0") == ["10.10.0.1/24"]
    missing = tundctl(tund, "addresses", "del", "tun0", "10.99.0.1/24")
    assert missing.returncode == 1 and "not_found" in missing.stderr


def test_routes_add_prints_the_id_and_del_removes_it(tund):
    create_tun0(tund)
    route_id = ok(tundctl(tund, "routes", "add", "tun0", "10.30.0.0/16", "--via", "10.10.0.2", "--metric", "50")).strip()
    assert route_id.isdigit()
    assert "10.30.0.0/16" in route_destinations("tun0")
    routes = ip_json("-4", "route", "show", "10.30.0.0/16")
    assert routes[0]["gateway"] == "10.10.0.2" and routes[0]["metric"] == 50
    listed = ok(tundctl(tund, "routes", "list", "tun0")).splitlines()
    assert listed[0].split() == ["ID", "DESTINATION", "GATEWAY", "METRIC", "ACTIVE"]
    assert [route_id, "10.30.0.0/16", "10.10.0.2", "50", "yes"] in [line.split() for line in listed]
    assert ok(tundctl(tund, "routes", "del", "tun0", route_id)).strip() == f"removed route {route_id} from tun0"
    assert route_destinations("tun0") == ["10.20.0.0/16"]
    unreachable = tundctl(tund, "routes", "add", "tun0", "10.40.0.0/16", "--via", "192.0.2.1")
    assert unreachable.returncode == 1 and "kernel_rejected" in unreachable.stderr and "errno" in unreachable.stderr


# --- stats -------------------------------------------------------------------------------------------

def test_stats_once_human(tund):
    create_tun0(tund)
    text = ok(tundctl(tund, "stats", "tun0"))
    for key in ("name:", "worker:", "read:", "written:", "errors:", "protocols:", "kernel:", "drift:"):
        assert key in text, text


def test_stats_watch_json_reports_rates_while_pinging(tund):
    create_tun0(tund)
    pinger = subprocess.Popen(["ping", "-c", "8", "-i", "0.2", "-W", "1", "10.10.0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = tundctl(tund, "stats", "tun0", "--watch", "--count", "3", "--interval", "0.3", "--json", timeout=20)
    finally:
        pinger.wait(timeout=15)
    lines = ok(result).splitlines()
    assert len(lines) == 3, lines
    samples = [json.loads(line) for line in lines]
    for number, sample in enumerate(samples, start=1):
        assert sample["name"] == "tun0" and sample["sample"] == number
        assert set(sample["rates"]) == {"packets_read_per_s", "bytes_read_per_s", "packets_written_per_s", "bytes_written_per_s"}
        assert sample["interval_s"] > 0
        assert sample["rates"]["packets_written_per_s"] == 0
    assert any(sample["rates"]["packets_read_per_s"] > 0 for sample in samples), samples
    assert any(sample["rates"]["bytes_read_per_s"] > 0 for sample in samples), samples
    totals = [sample["worker"]["packets_read"] for sample in samples]
    assert totals == sorted(totals) and totals[-1] > 0


def test_stats_watch_human_prints_a_header_and_lines(tund):
    create_tun0(tund)
    lines = ok(tundctl(tund, "stats", "tun0", "--watch", "--count", "2", "--interval", "0.2")).splitlines()
    assert lines[0].split()[:3] == ["TIME", "READ", "PKT/S"] and len(lines) == 3


# --- events ------------------------------------------------------------------------------------------

def test_events_follow_prints_created_events(tund):
    follower = subprocess.Popen([tundctl_binary(), "events", "--count", "2", "--json", "--last-event-id", "0",
                                 "--server", f"http://127.0.0.1:{tund.port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # No wait for the follower: --last-event-id 0 replays every event from the first, whenever it connects.
        create_tun0(tund)
        out, err = follower.communicate(timeout=15)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(event["type"], event["device"]) for event in events] == [("device.created", "tun0"), ("worker.started", "tun0")]
    assert events[0]["detail"] == {"generation": "1"} and events[0]["sequence"] < events[1]["sequence"]

    # The human form of the same events, replayed from the ring.
    lines = ok(tundctl(tund, "events", "--count", "2", "--last-event-id", "0", timeout=15)).splitlines()
    assert lines[0].split() == [str(events[0]["sequence"]), "device.created", "tun0", "generation=1"]
    assert lines[1].split() == [str(events[1]["sequence"]), "worker.started", "tun0", "mode=count"]


# --- errors, server and environment ------------------------------------------------------------------

def test_missing_device_is_an_error_with_its_code(tund):
    result = tundctl(tund, "devices", "show", "nope0")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "(device_not_found)" in result.stderr
    as_json = tundctl(tund, "devices", "show", "nope0", "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["error"]["code"] == "device_not_found"


def test_invalid_field_names_the_field(tund):
    result = tundctl(tund, "devices", "create", "tun0", "--mtu", "10")
    assert result.returncode == 1 and "invalid_field, field mtu" in result.stderr
    assert "tun0" not in link_names()


def test_unreachable_server_exits_2():
    result = tundctl(f"http://127.0.0.1:{free_port()}", "devices", "list")
    assert result.returncode == 2 and "cannot reach tund at" in result.stderr


def test_bad_command_lines_exit_64(tund):
    assert tundctl(tund, "devices", "create", "--route", "10.0.0.0/8,bogus=1").returncode == 64
    assert tundctl("https://127.0.0.1:1", "devices", "list").returncode == 64
    assert tundctl(tund, "devices", "set", "tun0").returncode == 64


def test_server_from_the_environment(tund):
    create_tun0(tund)
    env = dict(os.environ, TUND_SERVER=f"http://127.0.0.1:{tund.port}")
    assert "tun0" in ok(tundctl(None, "devices", "list", env=env))
    env = dict(os.environ, TUND_SERVER=f"127.0.0.1:{tund.port}")
    assert json.loads(ok(tundctl(None, "devices", "show", "tun0", "--json", env=env)))["name"] == "tun0"
    # A flag wins over the environment.
    env = dict(os.environ, TUND_SERVER=f"http://127.0.0.1:{free_port()}")
    assert "tun0" in ok(tundctl(tund, "devices", "list", env=env))


def test_capture_against_the_daemon(tund, tmp_path):
    create_tun0(tund)
    output = tmp_path / "tun0.pcap"
    capture = subprocess.Popen([tundctl_binary(), "capture", "tun0", "--count", "3", "--timeout", "5",
                                "--output", str(output), "--server", f"http://127.0.0.1:{tund.port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # tundctl creates the output file once tund has accepted (and so registered) the capture.
        deadline = time.monotonic() + 10
        while not output.exists():
            assert capture.poll() is None and time.monotonic() < deadline, capture.communicate()
            time.sleep(0.02)
        subprocess.run(["ping", "-c", "5", "-i", "0.2", "-W", "1", "10.10.0.2"], capture_output=True, timeout=15)
        out, err = capture.communicate(timeout=20)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    assert capture.returncode == 0, err
    records = pcap_records(output.read_bytes())
    assert len(records) == 3 and "captured 3 packets" in err
    # A tun device carries raw IP: some of these are the pings (IPv4, ICMP, to 10.10.0.2).
    assert any(r[0] >> 4 == 4 and r[9] == 1 and r[16:20] == bytes([10, 10, 0, 2]) for r in records), records

    # The documented pipe: tundctl capture ... | tshark -r -. The pings go on (bounded: 100, 20 s) until the
    # pipe has its two packets, wherever in them the capture started.
    pinger = subprocess.Popen(["ping", "-c", "100", "-i", "0.2", "-W", "1", "10.10.0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        piped = subprocess.run(f"{tundctl_binary()} capture tun0 --count 2 --timeout 15 --server "
                               f"http://127.0.0.1:{tund.port} | tshark -r - -T fields -e ip.dst",
                               shell=True, capture_output=True, text=True, timeout=30)
    finally:
        pinger.kill()
        pinger.wait(timeout=15)
    assert piped.returncode == 0 and "10.10.0.2" in piped.stdout, piped.stderr


# --- capture and tokens against a fake server speaking the contract ------------------------------------

def pcap_file(packets):
    header = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101)  # LINKTYPE_RAW
    records = b"".join(struct.pack("<IIII", 1700000000 + i, 0, len(p), len(p)) + p for i, p in enumerate(packets))
    return header + records


def pcap_records(data):
    assert struct.unpack("<I", data[:4])[0] == 0xa1b2c3d4, data[:4]
    records, offset = [], 24
    while offset < len(data):
        _, _, included, _ = struct.unpack("<IIII", data[offset:offset + 16])
        records.append(data[offset + 16:offset + 16 + included])
        offset += 16 + included
    return records


class FakeTund(FakeServer):
    """Answers GET /devices/tun0/capture with a chunked pcap stream, sent in awkward pieces, and every
    other path with tund's 404 error; records each request's path and Authorization header."""

    def __init__(self, pcap):
        self.requests = []
        fake = self

        class Handler(QuietHandler):
            def do_GET(self):
                fake.requests.append((self.path, self.headers.get("Authorization")))
                if self.path.startswith("/devices/tun0/capture"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.tcpdump.pcap")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(pcap), 7):  # chunk boundaries fall inside pcap headers
                        piece = pcap[start:start + 7]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                self.send_body(404, b'{"error":{"code":"device_not_found","message":"no device named nope0"}}\n')

        super().__init__(Handler)


@pytest.fixture
def fake_tund():
    packets = [bytes([0x45]) + bytes(range(i, i + 40)) for i in range(3)]
    fake = FakeTund(pcap_file(packets))
    fake.pcap = pcap_file(packets)
    yield fake
    fake.close()


def test_capture_writes_the_pcap_to_a_file_with_the_token(fake_tund, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    output = tmp_path / "out.pcap"
    result = tundctl(fake_tund.url, "capture", "tun0", "--count", "3", "--timeout", "2",
                     "--output", str(output), "--token-file", str(token_file))
    ok(result)
    assert output.read_bytes() == fake_tund.pcap
    assert "captured 3 packets" in result.stderr
    assert fake_tund.requests == [("/devices/tun0/capture?count=3&timeout=2", "Bearer s3cret-token")]


def test_capture_to_standard_output_for_a_pipe(fake_tund):
    result = subprocess.run([tundctl_binary(), "capture", "tun0", "--server", fake_tund.url],
                            capture_output=True, timeout=20, env=dict(os.environ, TUND_TOKEN="from-env"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == fake_tund.pcap and len(pcap_records(result.stdout)) == 3
    assert fake_tund.requests == [("/devices/tun0/capture", "Bearer from-env")]


def test_capture_error_leaves_no_file(fake_tund, tmp_path):
    output = tmp_path / "never.pcap"
    result = tundctl(fake_tund.url, "capture", "nope0", "--output", str(output))
    assert result.returncode == 1 and "device_not_found" in result.stderr
    assert not output.exists()
    assert fake_tund.requests[0][1] is None  # no token configured, no Authorization header


def test_token_flag_and_file_together_are_refused(fake_tund, tmp_path):
    result = tundctl(fake_tund.url, "devices", "list", "--token", "a", "--token-file", str(tmp_path / "t"))
    assert result.returncode == 64 and fake_tund.requests == []


def test_unreadable_token_file_exits_3(fake_tund, tmp_path):
    result = tundctl(fake_tund.url, "devices", "list", "--token-file", str(tmp_path / "missing"))
    assert result.returncode == 3 and "token file" in result.stderr


# --- regressions ----------------------------------------------------------------------------------------

def test_tundctl_creates_and_moves_a_tunnel(tund):
    """Regression: tundctl had no --local/--remote, so it could neither create nor change a tunnel."""
    shown = json.loads(ok(tundctl(tund, "devices", "create", "vpn0", "--address", "10.202.0.1/24",
                                  "--local", "127.0.0.1:7300", "--remote", "127.0.0.1:7301", "--json")))
    assert shown["worker"] == {"mode": "tunnel", "local": "127.0.0.1:7300", "remote": "127.0.0.1:7301", "running": True}
    text = ok(tundctl(tund, "devices", "set", "vpn0", "--local", "127.0.0.1:7300", "--remote", "127.0.0.1:7302"))
    assert "127.0.0.1:7300 -> 127.0.0.1:7302" in text, text
    shown = json.loads(ok(tundctl(tund, "devices", "set", "vpn0", "--worker-mode", "echo", "--json")))
    assert shown["worker"] == {"mode": "echo", "running": True}


def test_a_mistyped_subcommand_is_named_not_answered_with_another_usage(tund):
    result = tundctl(tund, "devices", "lst")
    assert result.returncode == 64 and "'lst' is not a subcommand of 'tundctl devices'" in result.stderr, result.stderr
    assert "Usage: tundctl devices list" not in result.stderr


def test_empty_lists_say_so(tund):
    ok(tundctl(tund, "devices", "create", "tun0"))
    assert ok(tundctl(tund, "addresses", "list", "tun0")).strip() == "no addresses"
    assert ok(tundctl(tund, "routes", "list", "tun0")).strip() == "no routes"


def test_one_version_everywhere(tund):
    tundctl_version = ok(tundctl(None, "--version")).strip()
    tund_version = subprocess.run([tund_binary(), "--version"], capture_output=True, text=True, timeout=10)
    assert tund_version.returncode == 0 and tund_version.stdout.strip() == tundctl_version
    assert f'tund_build_info{{version="{tundctl_version}"}}' in tund.get("/metrics").body.decode()
