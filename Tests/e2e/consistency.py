"""Does the database agree with the kernel? Shared by the crash-consistency and concurrency tests.

Three views of the same devices are read and compared:
- the database itself (SQLite, opened read-only: rows of `devices`, `addresses`, `routes`);
- the API (`GET /devices`: the rows tund holds in memory, with the live `state`);
- the kernel (`ip -j`: links with their alias, MTU and flags, global addresses, proto-212 routes).

Addresses and routes are compared as normalized tuples (`ipaddress`), so textual forms (`/32` shown or not,
IPv6 compression) do not matter.
"""
import ipaddress
import sqlite3

from conftest import ip_json

ROUTE_PROTOCOL = "212"


def address_key(text, prefix_length=None):
    """`10.0.0.1/24` (or address + length) as a comparable interface."""
    if prefix_length is not None:
        text = f"{text}/{prefix_length}"
    return ipaddress.ip_interface(text)


def route_key(destination, gateway, metric):
    """(network, gateway, metric); no metric means the kernel's default: 0 for IPv4, 1024 for IPv6."""
    network = ipaddress.ip_network(destination, strict=False)
    if metric is None:
        metric = 0 if network.version == 4 else 1024
    return (network, ipaddress.ip_address(gateway) if gateway else None, int(metric))


def device_view(device):
    """One device of `GET /devices` as {mtu, up, addresses, routes} with normalized members."""
    return {
        "mtu": device["mtu"],
        "up": device["up"],
        "addresses": frozenset(address_key(a) for a in device["addresses"]),
        "routes": frozenset(route_key(r["destination"], r["gateway"], r["metric"]) for r in device["routes"]),
    }


def database_view(path):
    """The stored desired state: (instance, {name: {mtu, up, addresses, routes, route_ids}})."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        instance = connection.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()[0]
        devices = {}
        for device_id, name, mtu, up in connection.execute("SELECT id, name, mtu, up FROM devices"):
            addresses = frozenset(address_key(address, length) for address, length in connection.execute(
                "SELECT address, prefix_length FROM addresses WHERE device_id = ?", (device_id,)))
            rows = list(connection.execute("SELECT id, destination, gateway, metric FROM routes WHERE device_id = ?",
                                           (device_id,)))
            devices[name] = {
                "mtu": mtu, "up": bool(up), "addresses": addresses,
                "routes": frozenset(route_key(d, g, m) for _, d, g, m in rows),
                "route_ids": frozenset(route_id for route_id, _, _, _ in rows),
            }
        return instance, devices
    finally:
        connection.close()


def kernel_view():
    """Every link with its alias, kind, MTU, flags, global addresses and proto-212 routes (main table)."""
    links = {}
    for link in ip_json("-d", "link", "show"):
        links[link["ifname"]] = {
            "alias": link.get("ifalias"),
            "kind": link.get("linkinfo", {}).get("info_kind"),
            "mtu": link["mtu"],
            "up": "UP" in link.get("flags", []),
            "addresses": set(),
            "routes": set(),
        }
    for link in ip_json("addr", "show"):
        if link["ifname"] in links:
            links[link["ifname"]]["addresses"] = {
                address_key(a["local"], a["prefixlen"]) for a in link.get("addr_info", []) if a.get("scope") == "global"}
    for family in ("-4", "-6"):
        for route in ip_json(family, "route", "show"):
            if str(route.get("protocol")) == ROUTE_PROTOCOL and route.get("dev") in links:
                destination = route["dst"]
                if destination == "default":
                    destination = "0.0.0.0/0" if family == "-4" else "::/0"
                links[route["dev"]]["routes"].add(route_key(destination, route.get("gateway"), route.get("metric", 0)
                                                            if family == "-4" else route.get("metric")))
    return links


def check(tund):
    """Everything that disagrees between the database, the API and the kernel, as readable lines (empty when
    consistent), and the devices of `GET /devices` (JSON) for the caller's own model checks."""
    problems = []
    response = tund.get("/devices")
    if response.status != 200:
        return [f"GET /devices answered {response}"], []
    listed = response.json()["devices"]
    api = {device["name"]: device_view(device) for device in listed}
    instance, stored = database_view(tund.database)
    alias = f"tund:{instance}"
    kernel = kernel_view()

    # The API lists exactly the rows, with the stored values.
    if set(api) != set(stored):
        problems.append(f"GET /devices lists {sorted(api)} but the database holds {sorted(stored)}")
    for name in sorted(set(api) & set(stored)):
        row = {key: value for key, value in stored[name].items() if key != "route_ids"}
        if api[name] != row:
            problems.append(f"{name}: GET /devices says {api[name]} but its row says {row}")

    # No row without its device, in the state the row describes.
    for device in listed:
        name = device["name"]
        state = device["state"]
        if not state["present"] or state.get("restore_error"):
            problems.append(f"{name}: stored but state is {state}")
        if not device["worker"]["running"]:
            problems.append(f"{name}: stored but its worker is not running")
        link = kernel.get(name)
        if link is None:
            problems.append(f"{name}: stored but the kernel has no such link")
            continue
        want = stored.get(name, api[name])
        if link["alias"] != alias:
            problems.append(f"{name}: link alias is {link['alias']!r}, expected {alias!r}")
        if link["mtu"] != want["mtu"]:
            problems.append(f"{name}: kernel MTU {link['mtu']}, stored {want['mtu']}")
        if link["up"] != want["up"]:
            problems.append(f"{name}: kernel link up={link['up']}, stored up={want['up']}")
        if link["addresses"] != set(want["addresses"]):
            problems.append(f"{name}: kernel addresses {sorted(map(str, link['addresses']))}, "
                            f"stored {sorted(map(str, want['addresses']))}")
        if link["routes"] != set(want["routes"]):
            problems.append(f"{name}: kernel proto-212 routes {sorted(map(str, link['routes']))}, "
                            f"stored {sorted(map(str, want['routes']))}")

    # No device without its row: no link with tund's alias, and (this namespace is the test's) no TUN/TAP
    # link at all, that the database does not hold.
    for name, link in sorted(kernel.items()):
        if name in stored:
            continue
        if (link["alias"] or "").startswith("tund:"):
            problems.append(f"{name}: orphan link with alias {link['alias']!r} and no row")
        elif link["kind"] == "tun":
            problems.append(f"{name}: TUN/TAP link without a row (alias {link['alias']!r})")
        if link["routes"]:
            problems.append(f"{name}: proto-212 routes on a link tund does not store: {sorted(map(str, link['routes']))}")
    return problems, listed


def describe_kernel(names=None):
    """A compact dump of the kernel's TUN/TAP links, for failure messages."""
    lines = []
    for name, link in sorted(kernel_view().items()):
        if link["kind"] != "tun" and not (names and name in names):
            continue
        lines.append(f"  {name}: alias={link['alias']} mtu={link['mtu']} up={link['up']} "
                     f"addresses={sorted(map(str, link['addresses']))} routes={sorted(map(str, link['routes']))}")
    return "\n".join(lines)
