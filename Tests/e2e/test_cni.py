"""tund-cni end to end: the release plugin run exactly as a container runtime runs it (CNI_* variables,
the network configuration on standard input, the result or error JSON on standard output), with
Debian's host-local IPAM keeping its leases as files in a temporary dataDir, against the real tund.

Each container's namespace is made with `ip netns add` inside the session's private namespace world
(unique names, deleted afterwards); what tund made is checked there with `ip -n NS -j`.
"""
import json
import os
import subprocess
import uuid

import pytest

from conftest import free_port, ip_json, tund_cni_binary

# Where Debian's containernetworking-plugins installs host-local.
CNI_PATH = "/usr/lib/cni"
NETWORK = "tund-e2e"


@pytest.fixture
def make_netns():
    """Makes network namespaces under /run/netns with unique names; deletes them afterwards."""
    made = []

    def make():
        name = f"tund-cni-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@pytest.fixture
def leases(tmp_path):
    """host-local's dataDir: one file per allocated address under <dataDir>/<network name>/."""
    return tmp_path / "ipam"


def network(server, leases, device=None, **extra):
    config = {"cniVersion": "1.0.0", "name": NETWORK, "type": "tund-cni", "server": server,
              "device": device if device is not None else {"type": "tap", "worker": {"mode": "none"}},
              "ipam": {"type": "host-local", "subnet": "10.88.0.0/24", "dataDir": str(leases)}}
    config.update(extra)
    return config


def server_of(tund):
    return f"http://127.0.0.1:{tund.port}"


def cni(command, config, container="", netns=None, ifname="eth0", stdin=None):
    """Runs tund-cni as a runtime does. Returns (exit status, parsed standard output or None, stderr)."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": f"/run/netns/{netns}" if netns else "",
           "CNI_IFNAME": ifname, "CNI_PATH": CNI_PATH, "CNI_ARGS": "IgnoreUnknown=1", "PATH": os.environ.get("PATH", "")}
    payload = stdin if stdin is not None else json.dumps(config)
    done = subprocess.run([tund_cni_binary()], input=payload, env=env, capture_output=True, text=True, timeout=60)
    output = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, output, done.stderr


def ok(outcome):
    status, output, stderr = outcome
    assert status == 0, f"exit {status}\nstdout: {output}\nstderr: {stderr}"
    return output


def failed(outcome, code):
    """The spec's error result with `code`, and a non-zero exit."""
    status, output, stderr = outcome
    assert status != 0, f"expected a failure, got {output}"
    assert output is not None and set(output) == {"cniVersion", "code", "msg", "details"}, (output, stderr)
    assert output["code"] == code, output
    return output


def container_id():
    return uuid.uuid4().hex + uuid.uuid4().hex


def device_name(container, ifname="eth0"):
    return f"cni-{container[:12]}-{ifname}"


def leased(leases):
    directory = leases / NETWORK
    return sorted(entry.name for entry in directory.iterdir() if entry.name[0].isdigit()) if directory.exists() else []


def addresses_in(netns, ifname):
    links = ip_json("-n", netns, "addr", "show", "dev", ifname)
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in links[0]["addr_info"] if a.get("scope") == "global")


# --- ADD, DEL, CHECK against tund with namespace support ----------------------------------------------

def test_add_makes_the_device_in_the_namespace_with_the_allocated_address(tund, make_netns, leases):
    netns = make_netns()
    container = container_id()
    result = ok(cni("ADD", network(server_of(tund), leases), container, netns))

    assert result["cniVersion"] == "1.0.0"
    link = ip_json("-n", netns, "link", "show", "dev", "eth0")[0]
    assert result["interfaces"] == [{"name": "eth0", "mac": link["address"], "sandbox": f"/run/netns/{netns}"}]
    assert result["ips"] == [{"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 0}]
    assert addresses_in(netns, "eth0") == ["10.88.0.2/24"]
    assert leased(leases) == ["10.88.0.2"]
    device = tund.get(f"/devices/{device_name(container)}").json()
    assert device["ifname"] == "eth0" and device["netns"] == f"/run/netns/{netns}"
    assert device["state"]["present"] is True and device["addresses"] == ["10.88.0.2/24"]


def test_containers_get_successive_addresses_and_del_releases_them(tund, make_netns, leases):
    first, second = container_id(), container_id()
    first_netns, second_netns = make_netns(), make_netns()
    config = network(server_of(tund), leases)
    ok(cni("ADD", config, first, first_netns))
    result = ok(cni("ADD", config, second, second_netns))
    assert result["ips"][0]["address"] == "10.88.0.3/24"
    assert addresses_in(second_netns, "eth0") == ["10.88.0.3/24"]
    assert leased(leases) == ["10.88.0.2", "10.88.0.3"]

    assert ok(cni("DEL", config, first, first_netns)) is None  # DEL prints nothing
    assert leased(leases) == ["10.88.0.3"]
    assert tund.get(f"/devices/{device_name(first)}").status == 404
    # (ip -j prints [{}] for a filter that matched nothing.)
    assert not [link for link in ip_json("-n", first_netns, "link", "show", "type", "tap") if link]
    # Repeated, as runtimes do after a failure of their own: still success.
    ok(cni("DEL", config, first, first_netns))
    assert leased(leases) == ["10.88.0.3"]


def test_check_passes_until_the_address_is_removed_by_hand(tund, make_netns, leases):
    netns = make_netns()
    container = container_id()
    # Policy report: tund leaves the hand-made change in place (with repair it would put the address back,
    # and CHECK would rightly pass again).
    config = network(server_of(tund), leases, device={"type": "tap", "policy": "report", "worker": {"mode": "none"}})
    result = ok(cni("ADD", config, container, netns))
    checked = dict(config, prevResult=result)
    assert ok(cni("CHECK", checked, container, netns)) is None

    subprocess.run(["ip", "-n", netns, "addr", "del", "10.88.0.2/24", "dev", "eth0"], check=True, timeout=30)
    error = failed(cni("CHECK", checked, container, netns), 101)
    assert "10.88.0.2/24" in error["msg"]


def test_a_refused_device_releases_its_address(tund, make_netns, leases):
    netns = make_netns()
    # tund refuses an MTU of 1; the address host-local gave must not leak.
    error = failed(cni("ADD", network(server_of(tund), leases, device={"type": "tap", "mtu": 1}), container_id(), netns), 100)
    assert "mtu" in error["msg"], error
    assert leased(leases) == []


# --- what works against any tund, or none --------------------------------------------------------------

def test_version_lists_the_supported_versions():
    assert ok(cni("VERSION", None, stdin='{"cniVersion": "1.0.0"}')) == {
        "cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}


@pytest.mark.parametrize("stdin, code", [
    ("not json", 6),
    ('{"cniVersion": "1.0.0", "type": "tund-cni"}', 7),  # no name
    ('{"cniVersion": "1.0.0", "name": "n", "type": "tund-cni", "server": "https://tund"}', 7),
    ('{"cniVersion": "9.9.9", "name": "n", "type": "tund-cni"}', 1),
])
def test_a_bad_configuration_is_the_specs_error_result(stdin, code):
    failed(cni("ADD", None, container_id(), "unused", stdin=stdin), code)


def test_missing_parameters_and_unknown_commands_are_code_4(tund, leases):
    config = network(server_of(tund), leases)
    failed(cni("ADD", config, container=""), 4)  # no container ID, no netns
    failed(cni("GC", config, container_id()), 4)


def test_del_of_what_was_never_added_succeeds_every_time(tund, leases):
    config = network(server_of(tund), leases)
    container = container_id()
    for _ in range(2):
        assert ok(cni("DEL", config, container, netns=None)) is None  # no CNI_NETNS: the namespace is gone
    assert leased(leases) == []


def test_unreachable_tund_is_try_again_later_and_keeps_no_lease(make_netns, leases):
    netns = make_netns()
    error = failed(cni("ADD", network(f"http://127.0.0.1:{free_port()}", leases), container_id(), netns), 11)
    assert "cannot reach tund" in error["msg"]
    assert leased(leases) == []
    failed(cni("DEL", network(f"http://127.0.0.1:{free_port()}", leases), container_id()), 11)


def test_the_token_is_sent_and_never_printed(make_tund, leases, tmp_path):
    token = "cni-s3cret-" + uuid.uuid4().hex
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "wrong").write_text("not-the-token\n")
    os.chmod(tmp_path / "token", 0o600)
    tund = make_tund(["--token-file", str(tmp_path / "token")], token=token)
    config = network(server_of(tund), leases, token_file=str(tmp_path / "token"))
    assert ok(cni("DEL", config, container_id())) is None
    status, output, stderr = cni("DEL", dict(config, token_file=str(tmp_path / "wrong")), container_id())
    assert failed((status, output, stderr), 100)["details"].startswith("unauthorized")
    assert token not in json.dumps(output) + stderr
    failed(cni("DEL", dict(config, token_file=str(tmp_path / "missing")), container_id()), 5)
