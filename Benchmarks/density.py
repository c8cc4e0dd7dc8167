#!/usr/bin/env python3
"""The two measurements of Benchmarks/density.sh, run inside the namespace it made (tund on 127.0.0.1).

1. density: N count-mode devices through the API; tund's threads and resident memory before and after,
   and a ping through a responder device created last.
2. fairness: one data-plane thread serving 100 responder devices and one count device flooded with UDP;
   ping loss and RTT on the responders without the flood and during it.
Every loop is bounded in count and time.
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time


def status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0])


class Daemon:
    def __init__(self, binary, port, extra):
        self.port = port
        directory = tempfile.mkdtemp(prefix="tund-density-")
        self.log = open(os.path.join(directory, "tund.log"), "wb")
        self.process = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--database", f"{directory}/tund.db",
                                         "--max-devices", "100000", *extra], stdout=self.log, stderr=self.log)
        self.connection = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                self.connection = None
            time.sleep(0.05)
        raise SystemExit("tund did not become ready")

    def request(self, method, path, body=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = json.dumps(body).encode() if body is not None else None
        self.connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = self.connection.getresponse()
        return response.status, response.read()

    def create(self, body):
        code, answer = self.request("POST", "/devices", body)
        if code != 201:
            raise SystemExit(f"create {body['name']}: {code} {answer[:200]!r}")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def ping(address, count, interval):
    out = subprocess.run(["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1", address],
                         capture_output=True, text=True, timeout=count * interval + 15).stdout
    sent_received = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    rtt = re.search(r"= ([0-9.]+)/([0-9.]+)/([0-9.]+)/", out)
    sent, received = (int(sent_received.group(1)), int(sent_received.group(2))) if sent_received else (count, 0)
    return sent, received, (float(rtt.group(2)) if rtt else None), (float(rtt.group(3)) if rtt else None)


def ping_many(addresses, count, interval):
    """Pings every address at once (one ping process each); totals loss, RTT average of averages and max."""
    pingers = [subprocess.Popen(["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1", a],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for a in addresses]
    sent = received = 0
    averages, maxima = [], []
    for pinger in pingers:
        out, _ = pinger.communicate(timeout=count * interval + 20)
        found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        rtt = re.search(r"= ([0-9.]+)/([0-9.]+)/([0-9.]+)/", out)
        sent += int(found.group(1)) if found else count
        received += int(found.group(2)) if found else 0
        if rtt:
            averages.append(float(rtt.group(2)))
            maxima.append(float(rtt.group(3)))
    return sent, received, (sum(averages) / len(averages) if averages else None), (max(maxima) if maxima else None)


def density(binary, devices):
    daemon = Daemon(binary, 18101, [])
    threads0, rss0 = status(daemon.process.pid)
    started = time.monotonic()
    for index in range(devices):
        daemon.create({"name": f"d{index}", "type": "tun", "worker": {"mode": "count"}})
    elapsed = time.monotonic() - started
    threads1, rss1 = status(daemon.process.pid)
    daemon.create({"name": "resp0", "type": "tun", "addresses": ["10.250.0.1/24"], "worker": {"mode": "responder"}})
    sent, received, average, worst = ping("10.250.0.2", 5, 0.2)
    print(f"density: {devices} count-mode devices created in {elapsed:.1f} s ({elapsed / devices * 1000:.2f} ms each)")
    print(f"density: threads {threads0} before, {threads1} after ({threads1 - threads0:+d}); "
          f"RSS {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB after: {(rss1 - rss0) / devices:.1f} KiB per device")
    print(f"density: ping through responder resp0, created last: {received}/{sent} answered, avg {average} ms, max {worst} ms")
    daemon.stop()


def fairness(binary, flood, others, seconds):
    daemon = Daemon(binary, 18102, ["--data-plane-threads", "1"])
    addresses = []
    for index in range(others):
        third, fourth = 100 + index // 250, index % 250
        daemon.create({"name": f"r{index}", "type": "tun", "addresses": [f"10.{third}.{fourth}.1/24"], "worker": {"mode": "responder"}})
        addresses.append(f"10.{third}.{fourth}.2")
    daemon.create({"name": "flood0", "type": "tun", "addresses": ["10.99.0.1/24"], "worker": {"mode": "count"}})
    sample = addresses[::max(1, others // 20)][:20]
    sent, received, average, worst = ping_many(sample, 20, 0.1)
    print(f"fairness: 1 data-plane thread, {others} responder devices + 1 count device; pinging {len(sample)} responders, 20 each")
    print(f"fairness: quiet:          {received}/{sent} answered ({100 * (sent - received) / sent:.1f}% loss), avg RTT {average:.3f} ms, max {worst:.3f} ms")
    flooder = subprocess.Popen([flood, "10.99.0.2", "9", "64", str(seconds), "8", "64"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # measurement window: the flood is under way (not synchronisation of a result)
    sent, received, average, worst = ping_many(sample, 20, 0.1)
    out, _ = flooder.communicate(timeout=seconds + 20)
    code, body = daemon.request("GET", "/devices/flood0/stats")
    read = json.loads(body)["worker"]["packets_read"]
    print(f"fairness: during a flood: {received}/{sent} answered ({100 * (sent - received) / sent:.1f}% loss), avg RTT {average:.3f} ms, max {worst:.3f} ms")
    print(f"fairness: the flood: {out.strip()}; flood0 read {read} packets")
    daemon.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tund", required=True)
    parser.add_argument("--flood", required=True)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--others", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--sections", default="density fairness")
    arguments = parser.parse_args()
    if not 1 <= arguments.devices <= 20000 or not 1 <= arguments.others <= 1000 or not 1 <= arguments.seconds <= 60:
        raise SystemExit("devices 1..20000, others 1..1000, seconds 1..60")
    if "density" in arguments.sections:
        density(arguments.tund, arguments.devices)
    if "fairness" in arguments.sections:
        fairness(arguments.tund, arguments.flood, arguments.others, arguments.seconds)


if __name__ == "__main__":
    main()
