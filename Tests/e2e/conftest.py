"""End-to-end fixtures: the real tund binary, driven over HTTP, checked against the kernel with `ip -j`.

Safety: every test here creates devices, addresses and routes, so the whole session must run inside a
network namespace made for it (scripts/test.sh runs pytest under `unshare --net`). The `netns_guard`
fixture refuses to run in the machine's own namespace: it fails under CI=true and skips, saying why,
on a developer's unprivileged shell.
"""
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import programs

ROOT = pathlib.Path(__file__).resolve().parents[2]


# No test may hang the run: CI gives the whole command a fixed time, and a wait that never ends (a read
# from a pipe nobody writes, a process stuck in the kernel) would use all of it and show nothing. Each
# phase of each test (setup, call, teardown) gets PHASE_SECONDS; past that, every thread's stack is
# printed and the phase fails with TimeoutError, and the run goes on. The longest test takes ~90 s here.
PHASE_SECONDS = int(os.environ.get("TUND_TEST_PHASE_SECONDS", "300"))


class PhaseTimeout(Exception):
    pass


def _phase_expired(signum, frame):
    import faulthandler
    import sys
    print(f"\n*** test phase exceeded {PHASE_SECONDS} s; every thread's stack:", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(all_threads=True)
    raise PhaseTimeout(f"this test phase took longer than {PHASE_SECONDS} s (TUND_TEST_PHASE_SECONDS)")


def _bounded(phase):
    @pytest.hookimpl(wrapper=True)
    def hook(item):
        previous = signal.signal(signal.SIGALRM, _phase_expired)
        signal.setitimer(signal.ITIMER_REAL, PHASE_SECONDS)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    hook.__name__ = phase
    return hook


pytest_runtest_setup = _bounded("pytest_runtest_setup")
pytest_runtest_call = _bounded("pytest_runtest_call")
pytest_runtest_teardown = _bounded("pytest_runtest_teardown")


@pytest.fixture(scope="session", autouse=True)
def listed_programs_only():
    """Every subprocess a test or fixture starts runs only programs that scripts/test-programs.txt lists
    (and so the test command installs); anything else fails the test, naming the program. Installed for
    the tests only: pytest itself may run other programs (platform.architecture() runs `file`)."""
    with programs.guarded_subprocesses():
        yield


def in_private_netns() -> bool:
    """True when this process's network namespace is not the machine's own. The machine's is read from
    /proc/1 where allowed, else from TUND_HOST_NETNS, which scripts/test.sh records before `unshare`."""
    own = os.stat("/proc/self/ns/net").st_ino
    try:
        return own != os.stat("/proc/1/ns/net").st_ino
    except OSError:
        host = os.environ.get("TUND_HOST_NETNS")
        return host is not None and host.isdigit() and own != int(host)


@pytest.fixture(scope="session", autouse=True)
def netns_guard(listed_programs_only):
    problem = None
    if os.geteuid() != 0:
        problem = "end-to-end tests need root (CAP_NET_ADMIN and /dev/net/tun)"
    elif not in_private_netns():
        problem = "end-to-end tests must run inside a private network namespace (use scripts/test.sh, which wraps them in unshare --net)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " -- privileged tests must run in CI", pytrace=False)
        pytest.skip("SKIPPED LOUDLY: " + problem, allow_module_level=True)
    missing = programs.missing_from_path()
    if missing:
        pytest.exit("the tests run programs that are not on PATH: " + ", ".join(f"{p} (Debian package {d})" for p, d in missing)
                    + "; scripts/test.sh installs them", returncode=3)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def tund_binary() -> str:
    binary = os.environ.get("TUND_BIN") or str(ROOT / ".build" / "debug" / "tund")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no tund binary at {binary}: build first (swift build) or set TUND_BIN", pytrace=False)
    return binary


def tund_cni_binary() -> str:
    """The CNI plugin: TUND_CNI_BIN (scripts/test.sh sets it), else next to the tund binary."""
    binary = os.environ.get("TUND_CNI_BIN") or os.path.join(os.path.dirname(tund_binary()), "tund-cni")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no tund-cni binary at {binary}: build first (swift build) or set TUND_CNI_BIN", pytrace=False)
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Tund:
    """One tund process on 127.0.0.1 with its own database; restartable, killable."""

    def __init__(self, database: str, port: int, extra_args=(), token=None):
        self.database = database
        self.port = port
        self.extra_args = list(extra_args)
        self.token = token
        self.process = None
        self.log_path = database + ".log"

    def start(self, wait_ready=True):
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [tund_binary(), "--listen", f"127.0.0.1:{self.port}", "--database", self.database, *self.extra_args],
                stdout=log, stderr=log)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"tund exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/readyz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"tund not ready after {timeout}s:\n{self.log()}")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        # Exit closes every descriptor; the kernel unregisters each device that was not yet persistent
        # (a create or an apply cut short) one by one, which takes a while with a thousand of them.
        self.process.wait(timeout=120)

    def stop(self):
        """SIGTERM and wait; a daemon that ignores SIGTERM fails the test."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise AssertionError("tund did not stop within 10 s of SIGTERM")
        return self.process.returncode

    def log(self) -> str:
        try:
            return pathlib.Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, raw=None, timeout=10) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent_headers = dict(headers or {})
            if self.token and "Authorization" not in sent_headers:
                sent_headers["Authorization"] = f"Bearer {self.token}"
            payload = raw
            if body is not None:
                payload = json.dumps(body).encode()
                sent_headers.setdefault("Content-Type", "application/json")
            connection.request(method, path, body=payload, headers=sent_headers)
            response = connection.getresponse()
            return Response(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body=body)

    def delete(self, path):
        return self.request("DELETE", path)


def eventually(check, attempts=100):
    """Retries a kernel check while tund acts (bounded: at most 10 s); returns the last result."""
    for _ in range(attempts):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    return check()


def ip_json(*args):
    out = subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def link_names(kind=None):
    args = ["link", "show"] + (["type", kind] if kind else [])
    return {link["ifname"] for link in ip_json(*args)}


def remove_tun_links():
    for name in link_names("tun"):
        subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.fixture
def tund():
    """A running tund with a fresh database; every TUN/TAP link is removed afterwards."""
    remove_tun_links()
    directory = tempfile.mkdtemp(prefix="tund-e2e-")
    daemon = Tund(os.path.join(directory, "tund.db"), free_port())
    daemon.start()
    yield daemon
    daemon.stop()
    remove_tun_links()


@pytest.fixture
def make_tund():
    """Factory for daemons with extra arguments; stopped and cleaned up afterwards."""
    remove_tun_links()
    made = []

    def make(extra_args=(), start=True, token=None):
        directory = tempfile.mkdtemp(prefix="tund-e2e-")
        daemon = Tund(os.path.join(directory, "tund.db"), free_port(), extra_args, token)
        made.append(daemon)
        return daemon.start() if start else daemon

    yield make
    for daemon in made:
        if daemon.process and daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()
    remove_tun_links()


def pytest_terminal_summary(terminalreporter):
    """The hostile suite's count, when its cases ran: independent of test order and selection."""
    import sys
    hostile = sys.modules.get("test_hostile")
    text = hostile.summary() if hostile else None
    if text:
        terminalreporter.write_line(text)
