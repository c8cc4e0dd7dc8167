"""`tundctl apply` and `tundctl diff`: the whole device set from a JSON file, through `PUT /devices`.

Against the real daemon, every plan tundctl prints is checked against what happened: `GET /devices`, and
the kernel's view with `ip -j` (links, their ifindex to tell a change from a re-creation, addresses and
routes). Against a small fake server that speaks the documented contract, the request tundctl sends (path
and query, If-Match, the body with a bare array wrapped) and how it reports a failure half-way are checked
independently of the daemon. Every subprocess is bounded with a timeout.
"""
import json
import subprocess

import pytest

from conftest import ip_json, link_names
from fake_http import FakeServer, QuietHandler
from test_tundctl import global_addresses, ok, route_destinations, tundctl, tundctl_binary

DEVICES = [
    {"name": "ap0", "type": "tun", "mtu": 1400, "addresses": ["10.71.0.1/24"],
     "routes": [{"destination": "10.72.0.0/16", "gateway": "10.71.0.2"}]},
    {"name": "ap1", "type": "tun", "addresses": ["10.71.1.1/24", "fd00:71::1/64"]},
    {"name": "ap2", "type": "tap", "mac": "02:00:00:00:71:02", "addresses": ["10.71.2.1/24"]},
]
NAMES = ["ap0", "ap1", "ap2"]


def write_devices(tmp_path, devices, wrap=True, name="devices.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"devices": devices} if wrap else devices))
    return str(path)


def plan_rows(stdout):
    """{action: [names]} from the ACTION NAME table, and the summary line."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["ACTION", "NAME"], stdout
    rows = {}
    position = 1
    while position < len(lines) and not lines[position].startswith(("would: ", "applied: ")):
        action, name = lines[position].split()
        rows.setdefault(action, []).append(name)
        position += 1
    assert position < len(lines), f"no summary line in:\n{stdout}"
    return rows, lines[position]


def stored_names(tund):
    response = tund.get("/devices")
    assert response.status == 200, response
    return sorted(device["name"] for device in response.json()["devices"])


def ifindexes(names):
    return {name: ip_json("link", "show", name)[0]["ifindex"] for name in names}


def link_kind(name):
    """tun or tap, as the kernel says (`ip -d`)."""
    return ip_json("-d", "link", "show", name)[0]["linkinfo"]["info_data"]["type"]


def apply_all(tund, tmp_path, devices=DEVICES, *extra):
    return ok(tundctl(tund, "apply", "-f", write_devices(tmp_path, devices), *extra, timeout=60))


# --- against the daemon ------------------------------------------------------------------------------

def test_diff_on_an_empty_daemon_lists_creates_and_changes_nothing(tund, tmp_path):
    out = ok(tundctl(tund, "diff", "-f", write_devices(tmp_path, DEVICES)))
    rows, summary = plan_rows(out)
    assert rows == {"create": NAMES}, out
    assert summary == "would: 3 to create, 0 to update, 0 to re-create, 0 to delete, 0 unchanged"
    # The ETag printed is the collection's, unchanged by a dry run.
    assert f"etag: {tund.get('/devices').headers['ETag']}" in out.splitlines()
    assert stored_names(tund) == []
    assert not link_names() & set(NAMES)

    answer = json.loads(ok(tundctl(tund, "diff", "-f", write_devices(tmp_path, DEVICES), "--json")))
    assert answer["dry_run"] is True and sorted(answer["create"]) == NAMES
    assert answer["update"] == answer["recreate"] == answer["delete"] == answer["unchanged"] == []
    assert stored_names(tund) == [] and not link_names() & set(NAMES)


def test_apply_creates_them_in_the_kernel(tund, tmp_path):
    out = apply_all(tund, tmp_path)
    rows, summary = plan_rows(out)
    assert rows == {"create": NAMES}, out
    assert summary == "applied: 3 created, 0 updated, 0 re-created, 0 deleted, 0 unchanged"
    assert f"etag: {tund.get('/devices').headers['ETag']}" in out.splitlines()
    assert stored_names(tund) == NAMES

    ap0 = ip_json("link", "show", "ap0")[0]
    assert ap0["mtu"] == 1400 and "UP" in ap0["flags"]
    assert global_addresses("ap0") == ["10.71.0.1/24"]
    assert route_destinations("ap0") == ["10.72.0.0/16"]
    assert global_addresses("ap1") == ["10.71.1.1/24", "fd00:71::1/64"]
    assert link_kind("ap2") == "tap" and ip_json("link", "show", "ap2")[0]["address"] == "02:00:00:00:71:02"
    assert global_addresses("ap2") == ["10.71.2.1/24"]


def test_a_second_apply_says_all_unchanged_and_touches_nothing(tund, tmp_path):
    apply_all(tund, tmp_path)
    before = ifindexes(NAMES)
    rows, summary = plan_rows(apply_all(tund, tmp_path))
    assert rows == {"unchanged": NAMES}
    assert summary == "applied: 0 created, 0 updated, 0 re-created, 0 deleted, 3 unchanged"
    assert ifindexes(NAMES) == before
    assert global_addresses("ap1") == ["10.71.1.1/24", "fd00:71::1/64"]


def test_apply_without_a_device_deletes_it(tund, tmp_path):
    apply_all(tund, tmp_path)
    kept = ifindexes(["ap0", "ap2"])
    rows, summary = plan_rows(apply_all(tund, tmp_path, [DEVICES[0], DEVICES[2]]))
    assert rows == {"delete": ["ap1"], "unchanged": ["ap0", "ap2"]}
    assert summary == "applied: 0 created, 0 updated, 0 re-created, 1 deleted, 2 unchanged"
    assert "ap1" not in link_names()
    assert not any("10.71.1.1" in json.dumps(a) for a in ip_json("addr", "show"))
    assert stored_names(tund) == ["ap0", "ap2"]
    assert ifindexes(["ap0", "ap2"]) == kept

    # An empty set deletes everything.
    rows, summary = plan_rows(ok(tundctl(tund, "apply", "-f", write_devices(tmp_path, [], wrap=False), timeout=60)))
    assert rows == {"delete": ["ap0", "ap2"]}
    assert stored_names(tund) == [] and not link_names() & set(NAMES)


def test_apply_changes_a_device_live(tund, tmp_path):
    apply_all(tund, tmp_path)
    before = ifindexes(NAMES)
    changed = [dict(DEVICES[0], mtu=1300, addresses=["10.71.0.1/24", "10.71.9.1/24"]), DEVICES[1], DEVICES[2]]
    rows, _ = plan_rows(ok(tundctl(tund, "diff", "-f", write_devices(tmp_path, changed))))
    assert rows == {"update": ["ap0"], "unchanged": ["ap1", "ap2"]}
    assert ip_json("link", "show", "ap0")[0]["mtu"] == 1400   # diff changed nothing

    rows, summary = plan_rows(apply_all(tund, tmp_path, changed))
    assert rows == {"update": ["ap0"], "unchanged": ["ap1", "ap2"]}
    assert summary == "applied: 0 created, 1 updated, 0 re-created, 0 deleted, 2 unchanged"
    assert ip_json("link", "show", "ap0")[0]["mtu"] == 1300
    assert global_addresses("ap0") == ["10.71.0.1/24", "10.71.9.1/24"]
    assert ifindexes(NAMES) == before   # changed live, not re-created


def test_an_invalid_member_fails_naming_it_and_changes_nothing(tund, tmp_path):
    apply_all(tund, tmp_path)
    etag = tund.get("/devices").headers["ETag"]
    before = ifindexes(NAMES)
    # ap0 with an impossible MTU, ap9 new, ap1 and ap2 left out: nothing of this may happen.
    bad = [dict(DEVICES[0], mtu=10), {"name": "ap9", "type": "tun", "addresses": ["10.71.99.1/24"]}]
    result = tundctl(tund, "apply", "-f", write_devices(tmp_path, bad), timeout=60)
    assert result.returncode == 1 and result.stdout == "", result
    assert result.stderr.startswith("error: ") and "invalid_field, field devices[0].mtu" in result.stderr, result.stderr
    as_json = tundctl(tund, "apply", "-f", write_devices(tmp_path, bad), "--json", timeout=60)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["error"]["field"] == "devices[0].mtu"
    diff = tundctl(tund, "diff", "-f", write_devices(tmp_path, bad))
    assert diff.returncode == 1 and "field devices[0].mtu" in diff.stderr

    assert stored_names(tund) == NAMES
    assert tund.get("/devices").headers["ETag"] == etag
    assert "ap9" not in link_names()
    assert ifindexes(NAMES) == before and ip_json("link", "show", "ap0")[0]["mtu"] == 1400


def test_if_match_refuses_a_plan_made_stale(tund, tmp_path):
    apply_all(tund, tmp_path)
    more = DEVICES + [{"name": "ap3", "type": "tun"}]
    diff = ok(tundctl(tund, "diff", "-f", write_devices(tmp_path, more)))
    etag = next(line for line in diff.splitlines() if line.startswith("etag: "))[len("etag: "):]
    ok(tundctl(tund, "devices", "set", "ap1", "--mtu", "1300"))   # someone else changes a device

    stale = tundctl(tund, "apply", "-f", write_devices(tmp_path, more), "--if-match", etag, timeout=60)
    assert stale.returncode == 1 and "(precondition_failed" in stale.stderr, stale.stderr
    assert "note: " in stale.stderr and "diff" in stale.stderr   # tells what to do next
    assert "ap3" not in link_names() and stored_names(tund) == NAMES

    fresh = next(line for line in ok(tundctl(tund, "diff", "-f", write_devices(tmp_path, more))).splitlines()
                 if line.startswith("etag: "))[len("etag: "):]
    assert fresh != etag
    # Unquoted on the command line is accepted too: tundctl quotes it.
    rows, _ = plan_rows(ok(tundctl(tund, "apply", "-f", write_devices(tmp_path, more), "--if-match", fresh.strip('"'), timeout=60)))
    assert rows["create"] == ["ap3"] and "ap1" in rows["update"]   # ap1 goes back to MTU 1500
    assert "ap3" in link_names() and ip_json("link", "show", "ap1")[0]["mtu"] == 1500


def test_a_difference_not_live_changeable_needs_recreate(tund, tmp_path):
    apply_all(tund, tmp_path)
    before = ifindexes(NAMES)
    as_tun = [DEVICES[0], DEVICES[1], {"name": "ap2", "type": "tun", "addresses": ["10.71.2.1/24"]}]
    refused = tundctl(tund, "apply", "-f", write_devices(tmp_path, as_tun), timeout=60)
    assert refused.returncode == 1 and "(not_live_changeable, field devices[2].type" in refused.stderr, refused.stderr
    assert "ap2" in refused.stderr and "--recreate" in refused.stderr
    assert link_kind("ap2") == "tap" and ifindexes(NAMES) == before

    rows, _ = plan_rows(ok(tundctl(tund, "diff", "-f", write_devices(tmp_path, as_tun), "--recreate")))
    assert rows == {"recreate": ["ap2"], "unchanged": ["ap0", "ap1"]}
    assert link_kind("ap2") == "tap"

    rows, summary = plan_rows(apply_all(tund, tmp_path, as_tun, "--recreate"))
    assert rows == {"recreate": ["ap2"], "unchanged": ["ap0", "ap1"]}
    assert summary == "applied: 0 created, 0 updated, 1 re-created, 0 deleted, 2 unchanged"
    assert link_kind("ap2") == "tun" and global_addresses("ap2") == ["10.71.2.1/24"]
    after = ifindexes(NAMES)
    assert after["ap2"] != before["ap2"] and after["ap0"] == before["ap0"]


def test_a_bare_array_from_standard_input_with_json_output(tund):
    result = subprocess.run([tundctl_binary(), "apply", "-f", "-", "--json", "--server", f"http://127.0.0.1:{tund.port}"],
                            input=json.dumps(DEVICES[:2]), capture_output=True, text=True, timeout=60)
    answer = json.loads(ok(result))
    assert answer["dry_run"] is False and sorted(answer["create"]) == ["ap0", "ap1"]
    assert stored_names(tund) == ["ap0", "ap1"] and {"ap0", "ap1"} <= link_names()


# --- against a fake server: what tundctl sends and how it reports ---------------------------------------

class FakePutServer(FakeServer):
    """Answers every PUT with `status` and `answer` (and an ETag on success); records each request's
    method, path, If-Match header and parsed body."""

    def __init__(self, status, answer):
        self.requests = []
        fake = self

        class Handler(QuietHandler):
            def do_PUT(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((self.command, self.path, self.headers.get("If-Match"), body))
                self.send_body(status, json.dumps(answer).encode(), headers=[("ETag", '"c-8"')] if status == 200 else [])

        super().__init__(Handler)


@pytest.fixture
def fake_put():
    made = []

    def make(status, answer):
        made.append(FakePutServer(status, answer))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


PLAN = {"dry_run": False, "create": ["n1", "n2"], "update": ["u1"], "recreate": ["r1"], "delete": ["d1", "d2"],
        "unchanged": ["same-name-long"]}


def test_apply_sends_the_wrapped_file_with_if_match_and_recreate(fake_put, tmp_path):
    fake = fake_put(200, PLAN)
    out = ok(tundctl(fake.url, "apply", "-f", write_devices(tmp_path, DEVICES, wrap=False), "--recreate", "--if-match", "7"))
    assert fake.requests == [("PUT", "/devices?recreate=true", '"7"', {"devices": DEVICES})]
    assert out == ("ACTION     NAME\n"
                   "create     n1\n"
                   "create     n2\n"
                   "update     u1\n"
                   "recreate   r1\n"
                   "delete     d1\n"
                   "delete     d2\n"
                   "unchanged  same-name-long\n"
                   "applied: 2 created, 1 updated, 1 re-created, 2 deleted, 1 unchanged\n"
                   'etag: "c-8"\n')


def test_diff_is_a_dry_run_and_prints_the_raw_answer_with_json(fake_put, tmp_path):
    answer = dict(PLAN, dry_run=True)
    fake = fake_put(200, answer)
    path = write_devices(tmp_path, DEVICES)
    assert json.loads(ok(tundctl(fake.url, "diff", "-f", path, "--json"))) == answer
    out = ok(tundctl(fake.url, "diff", "-f", path))
    assert "would: 2 to create, 1 to update, 1 to re-create, 2 to delete, 1 unchanged\n" in out
    assert [request[:3] for request in fake.requests] == [("PUT", "/devices?dry_run=true", None)] * 2
    assert fake.requests[0][3] == {"devices": DEVICES}   # an object with "devices" goes as it is


def test_a_failure_half_way_says_what_was_applied(fake_put, tmp_path):
    error = {"error": {"code": "kernel_error", "message": "creating n2: the kernel said ENOMEM", "field": "devices[1]",
                       "applied": {"create": ["n1"], "update": [], "recreate": [], "delete": ["d1", "d2"]}}}
    fake = fake_put(500, error)
    result = tundctl(fake.url, "apply", "-f", write_devices(tmp_path, DEVICES))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: creating n2: the kernel said ENOMEM (kernel_error, field devices[1])",
        "note: applied before the failure: create n1; delete d1, d2"]
    as_json = tundctl(fake.url, "apply", "-f", write_devices(tmp_path, DEVICES), "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout) == error


def test_bad_device_files_are_local_errors_and_send_nothing(fake_put, tmp_path):
    fake = fake_put(200, PLAN)
    (tmp_path / "yaml").write_text("devices:\n  - name: ap0\n")
    (tmp_path / "one").write_text(json.dumps(DEVICES[0]))
    (tmp_path / "notarray").write_text('{"devices": {"name": "ap0"}}')
    for name, message in [("yaml", "is not JSON"), ("one", 'without "devices"'), ("notarray", "not an array"),
                          ("missing", "cannot read the device file")]:
        result = tundctl(fake.url, "apply", "-f", str(tmp_path / name))
        assert result.returncode == 3 and message in result.stderr, (name, result)
    assert tundctl(fake.url, "apply").returncode == 64   # -f is required
    assert fake.requests == []
