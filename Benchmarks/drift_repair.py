"""Times drift repairs inside the current (private) network namespace; see drift-repair.sh."""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PORT = 18099
BIN = os.environ["TUND_BIN"]
ITERATIONS = int(os.environ.get("ITERATIONS", "20"))


def ip_json(*args):
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def request(method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    connection.request(method, path, body=json.dumps(body) if body else None, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def repaired():
    links = ip_json("link", "show", "tun0")
    if not links or links[0]["mtu"] != 1400:
        return False
    addresses = {a["local"] for a in ip_json("addr", "show", "tun0")[0]["addr_info"]}
    return {"10.10.0.1", "fd00:10::1"} <= addresses and ip_json("route", "show", "10.20.0.0/16") != []


def time_repair(action):
    start = time.perf_counter()
    subprocess.run(action, check=True, capture_output=True)
    while not repaired():
        if time.perf_counter() - start > 10:
            raise SystemExit(f"not repaired within 10 s after {' '.join(action)}")
        time.sleep(0.002)
    return (time.perf_counter() - start) * 1000


def main():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    directory = tempfile.mkdtemp(prefix="tund-drift-")
    daemon = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{PORT}", "--database", f"{directory}/tund.db", "--log-level", "warning"],
                              stderr=open(f"{directory}/log", "w"))
    try:
        for _ in range(100):
            try:
                if request("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        status, body = request("POST", "/devices", {"name": "tun0", "type": "tun", "mtu": 1400,
                                                    "addresses": ["10.10.0.1/24", "fd00:10::1/64"],
                                                    "routes": [{"destination": "10.20.0.0/16", "gateway": "10.10.0.2"}]})
        assert status == 201, body
        cases = {
            "ip link del tun0": ["ip", "link", "del", "tun0"],
            "ip addr del 10.10.0.1/24": ["ip", "addr", "del", "10.10.0.1/24", "dev", "tun0"],
            "ip route del 10.20.0.0/16": ["ip", "route", "del", "10.20.0.0/16"],
            "ip link set tun0 mtu 1500": ["ip", "link", "set", "tun0", "mtu", "1500"],
        }
        print(f"drift repair latency, {ITERATIONS} iterations each (ms from the command's start to the kernel state being whole again)")
        print(f"{'change made behind tund':30} {'median':>8} {'min':>8} {'max':>8}")
        for label, action in cases.items():
            samples = [time_repair(action) for _ in range(ITERATIONS)]
            print(f"{label:30} {statistics.median(samples):8.1f} {min(samples):8.1f} {max(samples):8.1f}")
            time.sleep(0.2)
        _, body = request("GET", "/devices/tun0")
        drift = json.loads(body)["drift"]
        print(f"tund counted: detected {drift['detected']}, repaired {drift['repaired']}")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
