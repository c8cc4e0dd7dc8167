"""Worker mode none: tund makes and keeps a device, and its owner (here an unprivileged program standing in
for a VMM) attaches to it with TUNSETIFF, across a SIGKILL and restart of tund."""
import os
import stat
import subprocess
import tempfile
import time

from conftest import ip_json
from lines import LineReader

JSON = {"Content-Type": "application/json"}
OWNER = 1000

# The owner's program: attaches to the tap as a VMM does (IFF_TAP | IFF_NO_PI, one queue), says so, then
# echoes every frame it reads back into the device and reports each one. It ends when its stdin closes.
PEER = r"""
import fcntl, os, select, struct, sys
fd = os.open(sys.argv[2], os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0002 | 0x1000))
print("attached", os.getuid(), flush=True)
frames = 0
while True:
    ready, _, _ = select.select([fd, sys.stdin], [], [], 60)
    if sys.stdin in ready and not sys.stdin.readline():
        break
    if fd in ready:
        frame = os.read(fd, 65536)
        frames += 1
        os.write(fd, frame)
        print("frame", frames, len(frame), flush=True)
"""


def tun_node():
    """A node of the TUN/TAP driver (char 10:200) the owner may open. The host's /dev/net/tun may be
    root's only (it is 0600 on some hosts); a VMM's jailer makes its own node the same way."""
    directory = tempfile.mkdtemp(prefix="tund-owner-")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "tun")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(10, 200))
    os.chmod(path, 0o666)
    return path


def start_peer(name):
    peer = subprocess.Popen(["setpriv", "--reuid", str(OWNER), "--regid", str(OWNER), "--clear-groups",
                             "python3", "-c", PEER, name, tun_node()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    peer.lines = LineReader(peer.stdout)
    line = peer.lines.line(15) or ""
    assert line.split() == ["attached", str(OWNER)], f"the owner's program could not attach: {line!r} {peer.stderr.read() if peer.poll() is not None else ''}"
    return peer


def frames_after(peer, count, trigger, deadline_seconds=15):
    """Runs `trigger` (traffic towards the device) until the peer has reported `count` frames; returns
    the last frame number."""
    deadline = time.monotonic() + deadline_seconds
    last = 0
    while time.monotonic() < deadline:
        trigger()
        line = peer.lines.line(1) or ""
        if line.startswith("frame"):
            last = int(line.split()[1])
            if last >= count:
                return last
    raise AssertionError(f"the owner's program saw only {last} frames")


def arp_for_a_neighbour():
    # The kernel resolves 10.77.0.2 with ARP requests out of the tap: frames the owner reads.
    subprocess.run(["ping", "-c", "1", "-W", "1", "10.77.0.2"], capture_output=True)


def test_a_tap_handed_to_its_owner_survives_a_tund_restart_untouched(tund):
    created = tund.post("/devices", {"name": "vmtap0", "type": "tap", "owner": OWNER, "addresses": ["10.77.0.1/24"],
                                     "worker": {"mode": "none"}})
    assert created.status == 201, created
    assert created.json()["worker"]["mode"] == "none" and created.json()["worker"]["running"] is False
    index = ip_json("link", "show", "vmtap0")[0]["ifindex"]

    peer = start_peer("vmtap0")  # tund holds no queue: an unprivileged owner attaches
    try:
        seen = frames_after(peer, 1, arp_for_a_neighbour)

        taken = tund.request("PATCH", "/devices/vmtap0", body={"worker": {"mode": "count"}}, headers=JSON)
        assert taken.status == 422 and taken.json()["error"]["errno"] == "EBUSY", taken

        tund.kill()
        tund.start()
        state = tund.get("/devices/vmtap0").json()
        assert state["state"]["present"] is True and state["worker"]["running"] is False, state
        assert ip_json("link", "show", "vmtap0")[0]["ifindex"] == index, "restore re-created a device in use"
        assert peer.poll() is None, "the owner's program lost its device"
        # The owner's descriptor still works: more frames come, and its writes reach the kernel.
        after = frames_after(peer, seen + 1, arp_for_a_neighbour)

        stats = tund.get("/devices/vmtap0/stats").json()
        assert stats["worker"]["mode"] == "none"
        assert stats["kernel"]["tx_packets"] >= after, stats["kernel"]  # frames the kernel handed to the owner
        assert stats["kernel"]["rx_packets"] >= after, stats["kernel"]  # frames the owner wrote back
    finally:
        peer.stdin.close()
        peer.wait(timeout=10)

    # Once the owner has let go, tund can take the device back, and hand it over again.
    taken = tund.request("PATCH", "/devices/vmtap0", body={"worker": {"mode": "count"}}, headers=JSON)
    assert taken.status == 200 and taken.json()["worker"]["running"] is True, taken
    given = tund.request("PATCH", "/devices/vmtap0", body={"worker": {"mode": "none"}}, headers=JSON)
    assert given.status == 200 and given.json()["worker"]["running"] is False, given
    start_peer("vmtap0").stdin.close()


def test_a_handed_over_device_deleted_behind_tunds_back_is_made_again_persistent(tund):
    assert tund.post("/devices", {"name": "vmtap1", "type": "tap", "addresses": ["10.78.0.1/24"],
                                  "worker": {"mode": "none"}}).status == 201
    subprocess.run(["ip", "link", "del", "vmtap1"], check=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        links = ip_json("-d", "link", "show", "type", "tun")
        made = [link for link in links if link["ifname"] == "vmtap1"]
        if made and any(a.get("local") == "10.78.0.1" for a in ip_json("addr", "show", "vmtap1")[0].get("addr_info", [])):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the device was not made again")
    info = made[0]["linkinfo"]["info_data"]
    assert info["type"] == "tap" and info["persist"] is True, info
    assert tund.get("/devices/vmtap1").json()["worker"]["running"] is False
    # Made for its owner, not held: an owner can attach at once.
    start_peer("vmtap1").stdin.close()
