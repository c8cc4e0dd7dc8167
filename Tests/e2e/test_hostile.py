"""Hostile input: every endpoint fed malformed, oversized, ambiguous or sneaky requests.

test_bad_requests.py has the basic cases (one of each kind, on POST /devices); this suite extends them to
every endpoint and to the wire. Each case is one pytest id. For each one the suite sends the request on a
raw socket (so no client library tidies it up) and checks that:

- the answer is a 4xx in the case's expected set, with a JSON error `{"error": {"code", "message", ...}}`
  carrying the expected `code` (and `field` / `errno` where one is named); a 405 carries `Allow`, a 412
  `ETag`, a 401 `WWW-Authenticate`;
- every daemon still answers `/healthz` and its process is alive;
- nothing changed: the links (names, MTU, flags, MAC, alias), the addresses, the IPv4 and IPv6 routes of
  every table, `GET /devices` of each daemon and every row of each daemon's SQLite database are exactly
  as they were before the case.

Who answers, counted apart in the closing summary (`test_summary`):

- tund, with its JSON error, for everything that reaches its router, and for framing that two parsers
  could read differently (two Content-Length headers, Content-Length with chunked: 400 ambiguous_framing,
  connection closed); that includes dubious requests that libmicrohttpd lets through (an unterminated chunk
  extension, odd `Expect` values, bare LF line ends, a NUL in a header value, absolute-form targets);
- libmicrohttpd itself, with a small HTML body (so only the status is checked), for what it cannot parse:
  an HTTP/0.9 request line (400), a header line without a colon (400), a negative Content-Length (400),
  a Content-Length or a chunk size that overflows (413), a malformed chunk size (400), headers over the
  connection's memory (431) and a request-target over it (414);
- nobody: when there is no complete request, the server closes the connection without writing anything
  (or may answer 4xx): binary garbage or a missing method in the request line, a body that stops short
  (the client hangs up, or half-closes and waits), a body that trickles and then stalls, an unknown
  Transfer-Encoding. The checks are that the connection ends within a generous bound (the socket's own
  timeout, 10-15 s, against an idle timeout of 2 s), that nothing was created (each of these bodies starts
  with a complete, creatable device) and that the daemon still serves.

libmicrohttpd answers 505 to HTTP versions other than 1.0 and 1.1; that is a 5xx it is right to send, so
such requests are not part of this 4xx suite.

Two daemons serve the whole module:

- `main` (`--max-body-bytes 4194304`, so that a 1 MB string and 10 000 levels of nesting reach the JSON
  parser, and `--connection-timeout 2` for the slow and truncated bodies) with the baseline `tun0` (an
  IPv4 and an IPv6 address, a route through a gateway) and `tap0` (a MAC, an address);
- `tight` (`--max-body-bytes 1024 --token-file ...`) with `lim0`, for the body limit and the bearer token.

Cases marked `bug=` are defects this suite found in tund; they are strict xfails, so a fix turns the suite
red until the mark is removed. A case that changed state (or killed a daemon) is undone before the next
one runs: the daemon is restarted, extra devices are deleted and changed baseline devices re-created.
"""
import dataclasses
import difflib
import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import time

import pytest

from conftest import Tund, free_port, ip_json, remove_tun_links

JSON = "application/json"
TOKEN = "hostile-suite-token-0123456789abcdef"

BASELINE = {
    "main": [
        {"name": "tun0", "type": "tun", "mtu": 1400, "addresses": ["10.10.0.1/24", "fd00:10::1/64"],
         "routes": [{"destination": "10.20.0.0/16", "gateway": "10.10.0.2"}]},
        {"name": "tap0", "type": "tap", "mac": "02:00:00:00:00:42", "addresses": ["10.11.0.1/24"]},
    ],
    "tight": [
        {"name": "lim0", "type": "tun", "addresses": ["10.12.0.1/24"]},
    ],
}

# --------------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    method: str = "POST"
    target: str = "/devices"          # may hold {ROUTE} (tun0's route id) or {GEN} (its generation), as may headers
    body: bytes = None
    status: frozenset = frozenset()
    code: object = None               # a code, a frozenset of acceptable codes, or None
    field: str = None
    errno: str = None
    content_type: str = JSON          # sent when there is a body; None sends no Content-Type
    headers: tuple = ()               # extra (name, value) pairs, str or bytes
    daemon: str = "main"
    auth: bool = True                 # send the bearer token to a daemon that wants one
    wire: bytes = None                # the whole request, as bytes, instead of building one
    script: object = None             # socket-level script: (daemon) -> Reply | CLOSED | HUNG_UP
    answered_by: str = "tund"         # "tund" (JSON error), "mhd" (libmicrohttpd's own), "closed"
    bug: str = None                   # reason for a strict xfail


def j(value) -> bytes:
    return json.dumps(value).encode()


def case(id, method, target, body=None, status=(), code=None, **options) -> Case:
    status = frozenset([status] if isinstance(status, int) else status)
    if isinstance(code, (set, frozenset, list, tuple)):
        code = frozenset(code)
    if isinstance(body, (dict, list)):
        body = j(body)
    return Case(id=id, method=method, target=target, body=body, status=status, code=code, **options)


def create(id, body, status, code, field=None, **options) -> Case:
    return case(id, "POST", "/devices", body, status, code, field=field, **options)


def field_error(id, method, target, body, field, **options) -> Case:
    return case(id, method, target, body, 422, "invalid_field", field=field, **options)


def bad_create(id, body, field, **options) -> Case:
    return field_error(id, "POST", "/devices", body, field, **options)


def tun(**fields) -> dict:
    return {"name": "h0", "type": "tun", **fields}


def tap(**fields) -> dict:
    return {"name": "h1", "type": "tap", **fields}


NOT_JSON = [
    # Not JSON at all, or JSON that cannot be represented: 400 invalid_json.
    ("NaN", b'{"name":"h0","type":"tun","mtu":NaN}'),
    ("Infinity", b'{"name":"h0","type":"tun","mtu":Infinity}'),
    ("-Infinity", b'{"name":"h0","type":"tun","mtu":-Infinity}'),
    ("1e400", b'{"name":"h0","type":"tun","mtu":1e400}'),
    ("exponent of 12 digits", b'{"name":"h0","type":"tun","mtu":1e999999999999}'),
    ("integer of 400 digits", b'{"name":"h0","type":"tun","mtu":' + b"9" * 400 + b"}"),
    ("leading zero", b'{"name":"h0","type":"tun","mtu":01400}'),
    ("plus sign", b'{"name":"h0","type":"tun","mtu":+1400}'),
    ("hex number", b'{"name":"h0","type":"tun","mtu":0x578}'),
    ("bare fraction", b'{"name":"h0","type":"tun","mtu":.5}'),
    ("trailing dot", b'{"name":"h0","type":"tun","mtu":1400.}'),
    ("True capitalised", b'{"name":"h0","type":"tun","up":True}'),
    ("nesting 10000 arrays", b"[" * 10000 + b"]" * 10000),
    ("nesting 10000 objects", b'{"a":' * 10000 + b"1" + b"}" * 10000),
    ("nesting 10000 inside worker", b'{"type":"tun","worker":' + b'{"mode":' * 10000 + b'"count"' + b"}" * 10001),
    ("trailing garbage", b'{"name":"h0","type":"tun"}x'),
    ("two documents", b'{"name":"h0","type":"tun"}{"name":"h1","type":"tun"}'),
    ("NUL after the document", b'{"name":"h0","type":"tun"}\x00'),
    ("lone high surrogate", b'{"name":"\\ud800","type":"tun"}'),
    ("lone low surrogate", b'{"name":"\\udc00","type":"tun"}'),
    ("raw tab in a string", b'{"name":"a\tb","type":"tun"}'),
    ("raw newline in a string", b'{"name":"a\nb","type":"tun"}'),
    ("invalid UTF-8 byte", b'{"name":"a\xffb","type":"tun"}'),
    ("overlong UTF-8 slash", b'{"name":"a\xc0\xafb","type":"tun"}'),
    ("unknown escape", b'{"name":"\\x41","type":"tun"}'),
    ("block comment", b'{"name":"h0","type":"tun"/*x*/}'),
    ("line comment", b'{"type":"tun",//x\n"name":"h0"}'),
    ("single quotes", b"{'name':'h0','type':'tun'}"),
    ("unquoted keys", b'{name:"h0",type:"tun"}'),
    ("double comma", b'{"type":"tun",,"name":"h0"}'),
    ("leading comma", b'{,"type":"tun","name":"h0"}'),
    ("vertical tab as whitespace", b'\x0b{"type":"tun","name":"h0"}'),
    ("no-break space as whitespace", b'\xc2\xa0{"type":"tun","name":"h0"}'),
    ("whitespace only", b"   \r\n "),
    ("truncated", b'{"name":"h0","type":"tu'),
]

CASES = []
add = CASES.append

# ---- JSON syntax on POST /devices -------------------------------------------------------------------
for label, raw in NOT_JSON:
    add(create(f"json: {label}", raw, 400, "invalid_json"))
for label, raw in [("null", b"null"), ("a string", b'"tun0"'), ("a number", b"42"), ("true", b"true"),
                   ("an empty array", b"[]")]:
    add(create(f"json: body is {label}", raw, 400, "invalid_request"))
add(bad_create("json: -0 as MTU", b'{"name":"h0","type":"tun","mtu":-0}', "mtu"))
add(bad_create("json: -0.0 as MTU", b'{"name":"h0","type":"tun","mtu":-0.0}', "mtu"))
add(bad_create("json: 1e-400 as MTU", b'{"name":"h0","type":"tun","mtu":1e-400}', "mtu"))
add(bad_create("json: 2^63 as MTU", b'{"name":"h0","type":"tun","mtu":9223372036854775808}', "mtu"))
add(bad_create("json: -2^63-1 as owner", b'{"name":"h0","type":"tun","owner":-9223372036854775809}', "owner"))
add(bad_create("json: 2^64 as queues", b'{"name":"h0","type":"tun","queues":18446744073709551616}', "queues"))
add(bad_create("json: 1 MB string as name", b'{"type":"tun","name":"' + b"a" * (1 << 20) + b'"}', "name"))
add(bad_create("json: 1 MB string as address", j(tun(addresses=["1" * (1 << 20)])), "addresses[0]"))
add(bad_create("json: 1 MB key", b'{"type":"tun","' + b"k" * (1 << 20) + b'":1}', "k" * (1 << 20)))
add(bad_create("json: escaped NUL key", b'{"type":"tun","name":"h0","\\u0000":1}', "\u0000"))
add(bad_create("json: empty key", b'{"type":"tun","name":"h0","":1}', ""))
add(bad_create("json: BOM before an MTU of 0", b'\xef\xbb\xbf{"name":"h0","type":"tun","mtu":0}', "mtu"))
add(create("json: duplicate key, the second one invalid", b'{"name":"h0","type":"tun","mtu":1400,"mtu":0}',
           (400, 422), {"invalid_json", "invalid_field"}))
add(create("json: duplicate key, type tun then tux", b'{"type":"tun","type":"tux","name":"h0"}',
           (400, 422), {"invalid_json", "invalid_field"}))
add(create("json: trailing comma in an object", b'{"name":"h0","type":"tun",}', 400, "invalid_json"))
add(create("json: trailing comma in an array", b'{"name":"h0","type":"tun","addresses":["10.9.0.1/24",]}',
           400, "invalid_json"))
add(create("json: UTF-16 with BOM", '{"name":"h0","type":"tun"}'.encode("utf-16"), 400, "invalid_json"))
add(create("json: UTF-32LE without BOM", '{"name":"h0","type":"tun"}'.encode("utf-32-le"), 400, "invalid_json"))

# ---- Types and ranges on POST /devices --------------------------------------------------------------
for label, value in [("67", 67), ("65536", 65536), ("1e10", 1e10), ("1400.5", 1400.5), ("true", True),
                     ("an array", [1400]), ("an object", {"v": 1400})]:
    add(bad_create(f"mtu {label}", j(tun(mtu=value)), "mtu"))
for label, value in [("65", 65), ("-1", -1), ("1e10", 1e10), ("a string", "2"), ("2^63", 2 ** 63)]:
    add(bad_create(f"queues {label}", j(tap(queues=value)), "queues"))
for key in ("owner", "group"):
    for label, value in [("-1", -1), ("2^32-1", 2 ** 32 - 1), ("2^32", 2 ** 32), ("1.5", 1.5), ("a name", "root")]:
        add(bad_create(f"{key} {label}", j(tun(**{key: value})), key))
for label, value in [("a string", "false"), ("1", 1), ("an array", [])]:
    add(bad_create(f"up {label}", j(tun(up=value)), "up"))
for label, value in [("TUN", "TUN"), ("1", 1), ("null", None), ("with NUL", "tun\u0000"), ("empty", "")]:
    add(bad_create(f"type {label}", j({"name": "h0", "type": value}), "type"))
for label, value in [("all zero", "00:00:00:00:00:00"), ("broadcast", "ff:ff:ff:ff:ff:ff"),
                     ("multicast 33:33", "33:33:00:00:00:01"), ("garbage", "zz:zz:zz:zz:zz:zz"),
                     ("five bytes", "02:00:00:00:00"), ("seven bytes", "02:00:00:00:00:00:00"),
                     ("dashes", "02-00-00-00-00-07"), ("Cisco dots", "0200.0000.0007"), ("a number", 42),
                     ("with NUL", "02:00:00:00:00:07\u0000"), ("one-digit parts", "2:0:0:0:0:7")]:
    add(bad_create(f"mac {label}", j(tap(mac=value)), "mac"))
for label, value, field in [("empty mode", {"mode": ""}, "worker.mode"),
                            ("mode as a number", {"mode": 1}, "worker.mode"),
                            ("a string", "count", "worker"), ("an array", [], "worker"),
                            ("unknown field", {"mode": "count", "threads": 4}, "worker.threads")]:
    add(bad_create(f"worker {label}", j(tun(worker=value)), field))
for label, value in [("unknown", "ignore"), ("upper case", "REPAIR"), ("a number", 1), ("an array", ["repair"])]:
    add(bad_create(f"policy {label}", j(tun(policy=value)), "policy"))
for key in ("generation", "state", "created_at", "id", "drift"):
    add(bad_create(f"server-owned field {key}", j(tun(**{key: 1})), key))
add(bad_create("addresses as a string", j(tun(addresses="10.9.0.1/24")), "addresses"))
add(bad_create("addresses holding a number", j(tun(addresses=[167837953])), "addresses[0]"))
add(bad_create("257 addresses", j(tun(addresses=[f"10.9.{i // 250}.{i % 250 + 1}/16" for i in range(257)])), "addresses"))
add(bad_create("routes as an object", j(tun(routes={"destination": "10.9.0.0/16"})), "routes"))
add(bad_create("routes holding an array", j(tun(routes=[[]])), "routes[0]"))
add(bad_create("1025 routes", j(tun(routes=[{"destination": f"10.{i // 256}.{i % 256}.0/24"} for i in range(1025)])), "routes"))
add(bad_create("type null (required)", j({"name": "h0", "type": None}), "type"))

# ---- Names -------------------------------------------------------------------------------------------
for label, name in [(".", "."), ("../tun0", "../tun0"), ("tab", "a\tb"), ("newline", "a\nb"),
                    ("NUL", "h0\u0000"), ("NUL inside", "h\u0000x"), ("emoji", "tun\U0001f642"),
                    ("no-break space", "tun\u00a0"), ("15 bytes of non-ASCII", "\u00e9" * 7 + "a"),
                    ("256 bytes", "a" * 256), ("printf format", "tun%d"), ("colon (alias syntax)", "tun0:1"),
                    ("asterisk", "tun*"), ("leading space", " tun0"), ("backslash", "a\\b"),
                    ("fullwidth letters", "\uff54\uff55\uff4e")]:
    add(bad_create(f"name {label}", j({"name": name, "type": "tun"}), "name"))
add(bad_create("name as a number", j({"name": 0, "type": "tun"}), "name"))
add(bad_create("name as an array", j({"name": ["tun0"], "type": "tun"}), "name"))
add(create("name of a foreign link (lo)", j({"name": "lo", "type": "tun"}), 409, "name_in_use"))

# ---- Addresses and routes inside POST /devices -----------------------------------------------------------
for label, address in [("0.0.0.0/0", "0.0.0.0/0"), ("::/0", "::/0"), ("multicast", "224.0.0.1/4"),
                       ("IPv6 multicast", "ff02::1/16"), ("loopback", "127.0.0.2/8"), ("::1", "::1/128"),
                       ("broadcast", "255.255.255.255/32"), ("IPv4-mapped /96", "::ffff:10.9.0.1/96"),
                       ("/-1", "10.9.0.1/-1"), ("/024", "10.9.0.1/024"), ("/+24", "10.9.0.1/+24"),
                       ("/ 24", "10.9.0.1/ 24"), ("/24/8", "10.9.0.1/24/8"), ("empty length", "10.9.0.1/"),
                       ("/129", "fd00::9/129"), ("leading zeros", "010.9.0.1/24"), ("short form", "10.9/16"),
                       ("hex octet", "0x0a.9.0.1/24"), ("zone", "fe80::1%eth0/64"),
                       ("brackets", "[fd00::9]/64"), ("empty", ""), ("length with NUL", "10.9.0.1/24\u0000")]:
    add(bad_create(f"create with address {label}", j(tun(addresses=[address])), "addresses[0]"))
add(bad_create("IPv6 address listed twice in two spellings", j(tun(addresses=["fd00:9::1/64", "FD00:9:0::1/64"])), "addresses[1]"))
add(bad_create("create with route listed twice", j(tun(routes=[{"destination": "10.30.0.0/16"}, {"destination": "10.30.0.0/16"}])), "routes[1]"))
add(bad_create("create with route metric -1", j(tun(routes=[{"destination": "10.30.0.0/16", "metric": -1}])), "routes[0].metric"))
add(bad_create("create with route field dev", j(tun(routes=[{"destination": "10.30.0.0/16", "dev": "eth0"}])), "routes[0].dev"))
add(create("create with route through an unreachable gateway", j(tun(routes=[{"destination": "10.30.0.0/16", "gateway": "10.99.0.1"}])),
           422, "kernel_rejected", errno="ENETUNREACH"))
add(create("address with a NUL before the length, at create", j(tun(addresses=["10.9.0.1\u0000garbage/24"])),
           422, "invalid_field", field="addresses[0]"))

# ---- Idempotency-Key (the body is a valid device: nothing may be created) ---------------------------------
VALID_NEW = j({"name": "h9", "type": "tun"})
for label, key in [("empty", ""), ("256 characters", "k" * 256), ("non-ASCII", "cl\u00e9".encode()),
                   ("a space inside", "a b"), ("a tab inside", "a\tb"), ("DEL", b"a\x7fb")]:
    add(create(f"Idempotency-Key {label}", VALID_NEW, 400, "invalid_idempotency_key", headers=(("Idempotency-Key", key),)))

# ---- Content types (each with a valid body, so a 415 is the only thing between it and a change) ----------
for label, target, method, body, content_type in [
        ("text/plain on PATCH", "/devices/tun0", "PATCH", {"mtu": 1300}, "text/plain"),
        ("json-patch on PATCH", "/devices/tun0", "PATCH", {"mtu": 1300}, "application/json-patch+json"),
        ("merge-patch on PATCH", "/devices/tun0", "PATCH", {"mtu": 1300}, "application/merge-patch+json"),
        ("form on addresses", "/devices/tun0/addresses", "POST", {"address": "10.10.0.9/24"}, "application/x-www-form-urlencoded"),
        ("missing on routes", "/devices/tun0/routes", "POST", {"destination": "10.30.0.0/16"}, None),
        ("multipart on create", "/devices", "POST", {"name": "h9", "type": "tun"}, "multipart/form-data; boundary=x"),
        ("application/jsonx", "/devices", "POST", {"name": "h9", "type": "tun"}, "application/jsonx"),
        ("application/json-seq", "/devices", "POST", {"name": "h9", "type": "tun"}, "application/json-seq"),
        ("text/json", "/devices", "POST", {"name": "h9", "type": "tun"}, "text/json"),
        ("parameters only", "/devices", "POST", {"name": "h9", "type": "tun"}, "; charset=utf-8"),
        ("a list of two", "/devices", "POST", {"name": "h9", "type": "tun"}, "application/json, text/plain")]:
    add(case(f"content type {label}", method, target, body, 415, "unsupported_media_type", content_type=content_type))
for label, content_type in [("empty", ""), ("a lone semicolon", ";")]:
    add(case(f"content type {label}", "POST", "/devices", {"name": "h9", "type": "tun"}, 415, "unsupported_media_type",
             content_type=content_type))

# ---- PATCH /devices/{name} ---------------------------------------------------------------------------
for label, value in [("0", 0), ("-1", -1), ("67", 67), ("65536", 65536), ("1e10", 1e10), ("2^63", 2 ** 63),
                     ("1400.5", 1400.5), ("a string", "1400"), ("true", True), ("an array", [])]:
    add(field_error(f"PATCH mtu {label}", "PATCH", "/devices/tun0", {"mtu": value}, "mtu"))
add(field_error("PATCH up as a string", "PATCH", "/devices/tun0", {"up": "false"}, "up"))
add(field_error("PATCH up as 0", "PATCH", "/devices/tun0", {"up": 0}, "up"))
for key, value in [("type", "tap"), ("addresses", []), ("routes", []), ("generation", 99),
                   ("mac", "02:00:00:00:00:01"), ("queues", 2)]:
    add(field_error(f"PATCH read-only field {key}", "PATCH", "/devices/tun0", {key: value}, key))
add(field_error("PATCH worker mode unknown", "PATCH", "/devices/tun0", {"worker": {"mode": "teleport"}}, "worker.mode"))
add(field_error("PATCH worker as a string", "PATCH", "/devices/tun0", {"worker": "count"}, "worker"))
add(field_error("PATCH worker unknown field", "PATCH", "/devices/tun0", {"worker": {"threads": 2}}, "worker.threads"))
add(field_error("PATCH policy as an array", "PATCH", "/devices/tun0", {"policy": ["report"]}, "policy"))
add(case("PATCH body is an array", "PATCH", "/devices/tun0", b"[]", 400, "invalid_request"))
add(case("PATCH body is empty", "PATCH", "/devices/tun0", b"", 400, "invalid_json"))
add(case("PATCH body is NaN", "PATCH", "/devices/tun0", b'{"mtu":NaN}', 400, "invalid_json"))
for label, tag in [("garbage", "garbage"), ('"0"', '"0"'), ('W/"0"', 'W/"0"'), ("20 digits", '"99999999999999999999"'),
                   ('"-1"', '"-1"'), ('""', '""'), ("unterminated", '"1'), ("non-ASCII", '"\u0661"'.encode())]:
    add(case(f"PATCH If-Match {label}", "PATCH", "/devices/tun0", {"mtu": 1300}, 412, "precondition_failed",
             headers=(("If-Match", tag),)))
add(case("PATCH If-Match a list of 5000 stale tags", "PATCH", "/devices/tun0", {"mtu": 1300}, 412, "precondition_failed",
         headers=(("If-Match", ", ".join(['"0"'] * 5000)),)))
add(case("PATCH If-Match * in a list", "PATCH", "/devices/tun0", {"mtu": 1300}, 412, "precondition_failed",
         headers=(("If-Match", '*, "0"'),)))
add(case("PATCH If-Match the generation with a leading zero", "PATCH", "/devices/tun0", {"mtu": 1300}, 412,
         "precondition_failed", headers=(("If-Match", '"0{GEN}"'),)))
add(case("PATCH unknown device", "PATCH", "/devices/nosuch", {"mtu": 1300}, 404, "device_not_found"))
add(case("PATCH name with %00", "PATCH", "/devices/tun0%00", {"mtu": 1300}, 404, "device_not_found"))
add(case("PATCH name in other case", "PATCH", "/devices/TUN0", {"mtu": 1300}, 404, "device_not_found"))

# ---- POST /devices/{name}/addresses ------------------------------------------------------------------
ADDR = "/devices/tun0/addresses"
for label, address in [("already there", "10.10.0.1/24"), ("already there with another length", "10.10.0.1/16"),
                       ("IPv6 already there", "fd00:10::1/128"), ("IPv6 already there, upper case", "FD00:10:0::1/64")]:
    add(field_error(f"address {label}", "POST", ADDR, {"address": address}, "address"))
for label, address in [("IPv4-mapped", "::ffff:10.10.0.9/120"), ("0.0.0.0/0", "0.0.0.0/0"), ("multicast", "224.0.0.1/4"),
                       ("IPv6 multicast", "ff02::1/16"), ("loopback", "127.0.0.2/8"), ("::1", "::1/128"),
                       ("broadcast", "255.255.255.255/32"), ("/33", "10.10.0.9/33"), ("/-1", "10.10.0.9/-1"),
                       ("/129", "fd00:10::9/129"), ("leading zeros", "010.10.0.9/24"), ("zone", "fe80::1%eth0/64"),
                       ("three octets", "10.10.9/24"), ("empty", ""), ("a number", 42), ("an array", ["10.10.0.9/24"]),
                       ("null (required)", None), ("1 MB", "9" * (1 << 20))]:
    add(field_error(f"address {label}", "POST", ADDR, {"address": address}, "address"))
add(field_error("address missing", "POST", ADDR, {}, "address"))
add(field_error("address with an unknown field", "POST", ADDR, {"address": "10.10.0.9/24", "dev": "eth0"}, "dev"))
add(case("address body is an array", "POST", ADDR, b'["10.10.0.9/24"]', 400, "invalid_request"))
add(case("address to an unknown device", "POST", "/devices/nosuch/addresses", {"address": "10.10.0.9/24"}, 404, "device_not_found"))
add(case("address to a %2e%2e device", "POST", "/devices/%2e%2e/addresses", {"address": "10.10.0.9/24"}, 404, "device_not_found"))
add(case("address with If-Match garbage", "POST", ADDR, {"address": "10.10.0.9/24"}, 412, "precondition_failed",
         headers=(("If-Match", "garbage"),)))
add(field_error("address with a NUL before the length", "POST", ADDR, {"address": "10.10.0.77\u0000/24"}, "address"))

# ---- POST /devices/{name}/routes ---------------------------------------------------------------------
ROUTES = "/devices/tun0/routes"
add(field_error("route destination with host bits", "POST", ROUTES, {"destination": "10.30.1.2/16"}, "destination"))
add(field_error("route IPv6 destination with host bits", "POST", ROUTES, {"destination": "fd00:30::1/64"}, "destination"))
add(field_error("route IPv6 gateway for IPv4", "POST", ROUTES, {"destination": "10.30.0.0/16", "gateway": "fd00:10::2"}, "gateway"))
add(field_error("route IPv4 gateway for IPv6", "POST", ROUTES, {"destination": "fd00:30::/64", "gateway": "10.10.0.2"}, "gateway"))
add(field_error("route already stored", "POST", ROUTES, {"destination": "10.20.0.0/16", "gateway": "10.10.0.2"}, "destination"))
for label, gateway in [("multicast", "224.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("loopback", "127.0.0.1"),
                       ("broadcast", "255.255.255.255"), ("with a length", "10.10.0.2/24"), ("leading zeros", "010.10.0.2"),
                       ("a number", 168427522), ("empty", "")]:
    add(field_error(f"route gateway {label}", "POST", ROUTES, {"destination": "10.30.0.0/16", "gateway": gateway}, "gateway"))
for label, gateway in [("IPv4-mapped", "::ffff:10.10.0.2"), ("with a zone", "fe80::1%tun0"), ("IPv6 multicast", "ff02::2")]:
    add(field_error(f"route gateway {label}", "POST", ROUTES, {"destination": "fd00:30::/64", "gateway": gateway}, "gateway"))
for label, metric in [("-1", -1), ("2^32", 2 ** 32), ("a string", "5"), ("1.5", 1.5), ("1e10", 1e10), ("true", True)]:
    add(field_error(f"route metric {label}", "POST", ROUTES, {"destination": "10.30.0.0/16", "metric": metric}, "metric"))
for label, destination in [("/33", "10.30.0.0/33"), ("empty", ""), ("a number", 10), ("null (required)", None),
                           ("IPv4-mapped with host bits", "::ffff:10.30.0.1/120")]:
    add(field_error(f"route destination {label}", "POST", ROUTES, {"destination": destination}, "destination"))
add(field_error("route destination missing", "POST", ROUTES, {"gateway": "10.10.0.2"}, "destination"))
add(field_error("route field via", "POST", ROUTES, {"destination": "10.30.0.0/16", "via": "10.10.0.2"}, "via"))
add(case("route body is an array", "POST", ROUTES, b"[]", 400, "invalid_request"))
add(case("route through an unreachable IPv4 gateway", "POST", ROUTES, {"destination": "10.30.0.0/16", "gateway": "10.99.0.1"},
         422, "kernel_rejected", errno="ENETUNREACH"))
add(case("route through an unreachable IPv6 gateway", "POST", ROUTES, {"destination": "fd00:30::/64", "gateway": "fd00:99::1"},
         422, "kernel_rejected", errno="EHOSTUNREACH"))
add(case("route through a gateway reachable only through a gateway", "POST", ROUTES,
         {"destination": "10.30.0.0/16", "gateway": "10.20.0.5"}, 422, "kernel_rejected", errno="ENETUNREACH"))
add(case("route on tap0 through tun0's gateway", "POST", "/devices/tap0/routes",
         {"destination": "10.30.0.0/16", "gateway": "10.10.0.2"}, 422, "kernel_rejected", errno="ENETUNREACH"))
add(case("route over the kernel's own prefix route", "POST", ROUTES, {"destination": "10.10.0.0/24"},
         409, "kernel_rejected", errno="EEXIST"))
add(case("route over the kernel's own IPv6 prefix route", "POST", ROUTES, {"destination": "fd00:10::/64", "metric": 256},
         409, "kernel_rejected", errno="EEXIST"))
add(case("route to an unknown device", "POST", "/devices/nosuch/routes", {"destination": "10.30.0.0/16"}, 404, "device_not_found"))
add(case("route with If-Match garbage", "POST", ROUTES, {"destination": "10.30.0.0/16"}, 412, "precondition_failed",
         headers=(("If-Match", "garbage"),)))
add(field_error("route gateway with a NUL and garbage", "POST", ROUTES,
                {"destination": "10.40.0.0/16", "gateway": "10.10.0.2\u0000garbage"}, "gateway"))

# ---- DELETE /devices/{name}/addresses/{address} ----------------------------------------------------
for label, address, status, code in [
        ("not there", "10.99.99.99", 404, "address_not_found"), ("wrong length", "10.10.0.1%2F16", 404, "address_not_found"),
        ("garbage", "garbage", 404, "address_not_found"), ("%2e%2e", "%2e%2e", 404, "address_not_found"),
        ("leading zeros", "010.10.0.1", 404, "address_not_found"), ("IPv4-mapped", "::ffff:10.10.0.1", 404, "address_not_found"),
        ("two lengths", "10.10.0.1%2F24%2F8", 404, "address_not_found"), ("with a zone", "fd00:10::1%25tun0", 404, "address_not_found"),
        ("malformed escape", "10.10.0.1%zz", 400, "invalid_path"), ("overlong UTF-8", "%c0%af", 400, "invalid_path")]:
    add(case(f"DELETE address {label}", "DELETE", f"/devices/tun0/addresses/{address}", None, status, code))
add(case("DELETE another device's address", "DELETE", "/devices/tap0/addresses/10.10.0.1", None, 404, "address_not_found"))
add(case("DELETE address of an unknown device", "DELETE", "/devices/nosuch/addresses/10.10.0.1", None, 404, "device_not_found"))
add(case("DELETE address with If-Match garbage", "DELETE", "/devices/tun0/addresses/10.10.0.1", None, 412, "precondition_failed",
         headers=(("If-Match", '"0"'),)))
add(field_error("DELETE the address the route's gateway needs", "DELETE", "/devices/tun0/addresses/10.10.0.1", None, "address"))
add(case("DELETE address with %00 after it", "DELETE", "/devices/tun0/addresses/fd00:10::1%00", None, 404, "address_not_found"))

# ---- DELETE /devices/{name}/routes/{id} --------------------------------------------------------------
for label, id in [("0", "0"), ("-1", "-1"), ("abc", "abc"), ("1.0", "1.0"), ("20 digits", "99999999999999999999"),
                  ("Int64.max", "9223372036854775807"), ("hex", "0x1"), ("exponent", "1e0"), ("%00 after it", "{ROUTE}%00"),
                  ("space after it", "{ROUTE}%20")]:
    add(case(f"DELETE route id {label}", "DELETE", f"/devices/tun0/routes/{id}", None, 404, "route_not_found"))
add(case("DELETE another device's route", "DELETE", "/devices/tap0/routes/{ROUTE}", None, 404, "route_not_found"))
add(case("DELETE route of an unknown device", "DELETE", "/devices/nosuch/routes/{ROUTE}", None, 404, "device_not_found"))
add(case("DELETE route with If-Match garbage", "DELETE", "/devices/tun0/routes/{ROUTE}", None, 412, "precondition_failed",
         headers=(("If-Match", "garbage"),)))
add(case("DELETE route through ..", "DELETE", "/devices/tap0/routes/../routes/{ROUTE}", None, 404, "not_found"))

# ---- GET /devices/{name}/capture ---------------------------------------------------------------------
for label, query, field in [("count 0", "count=0", "count"), ("count -1", "count=-1", "count"),
                            ("count 100001", "count=100001", "count"), ("count abc", "count=abc", "count"),
                            ("count 1e3", "count=1e3", "count"), ("count empty", "count=", "count"),
                            ("count 20 digits", "count=99999999999999999999", "count"), ("count %zz", "count=%zz", "count"),
                            ("count %00", "count=%00", "count"), ("count 1.5", "count=1.5", "count"),
                            ("timeout 0", "count=1&timeout=0", "timeout"), ("timeout 3601", "count=1&timeout=3601", "timeout"),
                            ("timeout -5", "count=1&timeout=-5", "timeout"), ("timeout 11 digits", "count=1&timeout=99999999999", "timeout")]:
    add(field_error(f"capture {label}", "GET", f"/devices/tun0/capture?{query}", None, field))
add(case("capture of an unknown device", "GET", "/devices/nosuch/capture?count=1&timeout=1", None, 404, "device_not_found"))
add(case("capture of tun0%00", "GET", "/devices/tun0%00/capture?count=1&timeout=1", None, 404, "device_not_found"))
add(case("capture by POST", "POST", "/devices/tun0/capture", {}, 405, "method_not_allowed"))

# ---- Paths: traversal, escapes, length ---------------------------------------------------------------
for label, method, target, status, code in [
        ("/devices/../devices", "GET", "/devices/../devices", 404, "not_found"),
        ("DELETE /devices/../devices/tun0", "DELETE", "/devices/../devices/tun0", 404, "not_found"),
        ("DELETE /devices/tun0/..", "DELETE", "/devices/tun0/..", 404, "not_found"),
        ("DELETE /devices/./tun0", "DELETE", "/devices/./tun0", 404, "not_found"),
        ("DELETE /./devices/tun0", "DELETE", "/./devices/tun0", 404, "not_found"),
        ("DELETE //devices/tun0", "DELETE", "//devices/tun0", 404, "not_found"),
        ("DELETE /devices//tun0", "DELETE", "/devices//tun0", 404, "not_found"),
        ("DELETE /devices/%2e%2e", "DELETE", "/devices/%2e%2e", 404, "device_not_found"),
        ("GET /devices/%2e%2e/", "GET", "/devices/%2e%2e/", 404, "device_not_found"),
        ("DELETE /devices/%2E%2E%2Ftun0", "DELETE", "/devices/%2E%2E%2Ftun0", 404, "device_not_found"),
        ("DELETE /devices/.", "DELETE", "/devices/.", 404, "device_not_found"),
        ("DELETE /devices/..", "DELETE", "/devices/..", 404, "device_not_found"),
        ("DELETE /devices/tun0%00", "DELETE", "/devices/tun0%00", 404, "device_not_found"),
        ("DELETE /devices/tun0%2F", "DELETE", "/devices/tun0%2F", 404, "device_not_found"),
        ("DELETE /devices/tun0%20", "DELETE", "/devices/tun0%20", 404, "device_not_found"),
        ("DELETE /devices/tun0%3F", "DELETE", "/devices/tun0%3F", 404, "device_not_found"),
        ("DELETE /devices/tun0#fragment", "DELETE", "/devices/tun0#fragment", 404, "device_not_found"),
        ("DELETE /devices/tun0;v=1", "DELETE", "/devices/tun0;v=1", 404, "device_not_found"),
        ("DELETE /devices/TUN0", "DELETE", "/devices/TUN0", 404, "device_not_found"),
        ("DELETE double-encoded %2574un0", "DELETE", "/devices/%2574un0", 404, "device_not_found"),
        ("GET double-encoded %252e%252e", "GET", "/devices/%252e%252e", 404, "device_not_found"),
        ("GET /%2e%2e/%2e%2e/etc/passwd", "GET", "/%2e%2e/%2e%2e/etc/passwd", 404, "not_found"),
        ("GET /devices/..%2f..%2fetc%2fpasswd", "GET", "/devices/..%2f..%2fetc%2fpasswd", 404, "device_not_found"),
        ("GET overlong UTF-8 %c0%af", "GET", "/devices/%c0%af", 400, "invalid_path"),
        ("GET %ff", "GET", "/devices/%ff", 400, "invalid_path"),
        ("GET UTF-8 surrogate %ed%a0%80", "GET", "/devices/%ed%a0%80", 400, "invalid_path"),
        ("GET a lone %", "GET", "/devices/%", 400, "invalid_path"),
        ("GET a truncated %2", "GET", "/devices/%2", 400, "invalid_path"),
        ("GET %%32%65", "GET", "/devices/%%32%65", 400, "invalid_path"),
        ("DELETE %zz", "DELETE", "/devices/tun0%zz", 400, "invalid_path"),
        ("GET an 8 KB name", "GET", "/devices/" + "a" * 8192, 404, "device_not_found"),
        ("DELETE an 8 KB name", "DELETE", "/devices/" + "a" * 8192, 404, "device_not_found"),
        ("GET 2000 segments", "GET", "/devices" * 2000, 404, "not_found"),
        ("GET a raw non-UTF-8 byte", "GET", b"/devices/\xff\xfe", 404, "device_not_found"),
        ("GET a raw space inside", "GET", "/devices /x", 404, "not_found"),
        ("GET *", "GET", "*", 404, "not_found"),
        ("GET an empty path with a query", "GET", "?x=1", 404, "not_found")]:
    add(case(f"path {label}", method, target, None, status, code))
add(case("path absolute-form POST (with a bad MTU)", "POST", "http://127.0.0.1/devices", {"name": "h0", "type": "tun", "mtu": 0},
         {404, 422}, {"not_found", "invalid_field"}))
add(case("path absolute-form DELETE", "DELETE", "http://127.0.0.1/devices/nosuch", None, 404, {"not_found", "device_not_found"}))
add(case("path raw NUL after the name (DELETE)", "DELETE", b"/devices/tap0\x00garbage", None, {400, 404},
         {"invalid_path", "not_found", "device_not_found"}))

# ---- Methods -----------------------------------------------------------------------------------------
for method, target in [("PUT", "/devices/tun0"), ("TRACE", "/devices"), ("OPTIONS", "/devices/tun0"), ("HEAD", "/devices"),
                       ("FOO", "/devices/tun0/routes"), ("DELETE", "/devices"), ("PATCH", "/devices"),
                       ("POST", "/devices/tun0"), ("DELETE", "/devices/tun0/addresses"), ("PUT", "/devices/tun0/routes/{ROUTE}"),
                       ("GET", "/devices/tun0/routes"), ("PATCH", "/devices/tun0/stats"), ("POST", "/healthz"),
                       ("delete", "/devices/tun0"), ("A" * 100, "/devices/tun0"), ("PROPFIND", "/devices/tun0"),
                       ("CONNECT", "/devices")]:
    add(case(f"method {method[:12]} {target}", method, target, None, 405, "method_not_allowed"))
add(case("method OPTIONS *", "OPTIONS", "*", None, 404, "not_found"))
add(case("method CONNECT authority-form", "CONNECT", "127.0.0.1:22", None, 404, "not_found"))

# ---- Wire level: answered by tund, libmicrohttpd, or by closing --------------------------------------


def wire(*lines, body=b"") -> bytes:
    return b"".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\r\n" + body


POST_HEAD = "POST /devices HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
BAD_BODY = b'{"name":"h0","type":"tun","mtu":0}'
for label, request, status in [
        ("HTTP/0.9 request line", b"GET /devices\r\n", 400),
        ("header line without a colon", wire("GET /devices HTTP/1.1\r\nHost: x\r\nBogus header line\r\nConnection: close\r\n"), 400),
        ("negative Content-Length", wire(POST_HEAD, "Content-Length: -5\r\n", body=b"{}"), 400),
        ("Content-Length over 2^64", wire(POST_HEAD, "Content-Length: 99999999999999999999999\r\n", body=b"{}"), 413),
        ("invalid chunk size", wire(POST_HEAD, "Transfer-Encoding: chunked\r\n", body=b"zz\r\nabc\r\n0\r\n\r\n"), 400),
        ("chunk size over 2^64", wire(POST_HEAD, "Transfer-Encoding: chunked\r\n", body=b"FFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"), 413),
        ("100 KB header", wire("GET /devices HTTP/1.1\r\nHost: x\r\nX-Big: ", "a" * 100_000, "\r\nConnection: close\r\n"), 431),
        ("5000 headers", wire("GET /devices HTTP/1.1\r\nHost: x\r\n", "".join(f"X-{i}: y\r\n" for i in range(5000)), "Connection: close\r\n"), 431),
        ("100 KB request-target", wire("GET /devices/", "a" * 100_000, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"), 414)]:
    add(Case(id=f"wire: {label}", wire=request, status=frozenset([status]), answered_by="mhd"))
# Framing two parsers could read differently (request smuggling): refused from the head, connection closed.
for label, request in [
        ("two different Content-Lengths", wire(POST_HEAD, "Content-Length: 34\r\nContent-Length: 2\r\n", body=BAD_BODY)),
        ("Content-Length and chunked", wire(POST_HEAD, "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                                            body=b"%x\r\n%s\r\n0\r\n\r\n" % (len(BAD_BODY), BAD_BODY)))]:
    add(Case(id=f"wire: {label}", wire=request, status=frozenset([400]), code="ambiguous_framing"))
for label, request in [
        ("unterminated chunk extension", wire(POST_HEAD, "Transfer-Encoding: chunked\r\n",
                                              body=b'%x;ext="x\r\n%s\r\n0\r\n\r\n' % (len(BAD_BODY), BAD_BODY))),
        ("Expect 100-continue", wire(POST_HEAD, "Expect: 100-continue\r\nContent-Length: %d\r\n" % len(BAD_BODY), body=BAD_BODY)),
        ("Expect of nonsense", wire(POST_HEAD, "Expect: 999-bogus\r\nContent-Length: %d\r\n" % len(BAD_BODY), body=BAD_BODY)),
        ("NUL inside a header value", wire(POST_HEAD, b"X-A: a\x00b\r\nContent-Length: %d\r\n" % len(BAD_BODY), body=BAD_BODY)),
        ("bare LF line ends", POST_HEAD.replace("\r\n", "\n").encode() + b"Content-Length: %d\n\n" % len(BAD_BODY) + BAD_BODY),
        ("POST without Content-Length or chunked", wire(POST_HEAD, body=BAD_BODY))]:
    add(Case(id=f"wire: {label}", wire=request, status=frozenset([400, 422]), code=frozenset(["invalid_field", "invalid_json"])))
# libmicrohttpd waits for the rest of a request it cannot parse until the idle timeout (2 s on `main`).
for label, request in [("binary garbage", b"\x00\x01garbage\r\n\r\n"), ("no method", b" /devices HTTP/1.1\r\nHost: x\r\n\r\n")]:
    add(Case(id=f"wire: {label}", wire=request, answered_by="closed"))


# ---- Socket scripts: truncated and slow bodies, body limits ---------------------------------------------
# The truncated and slow bodies are a complete, valid, creatable device (`h5`) followed by padding that
# never arrives: a server that handled what it had would create h5, which the state check would catch.
CLOSED = "closed without an answer"
HUNG_UP = "the client hung up"
NEVER_CLOSED = "the server kept the connection open"
CREATABLE = b'{"name":"h5","type":"tun"}'
PADDED_LENGTH = len(CREATABLE) + 64


def truncated_then_close(daemon):
    """Content-Length says 64 bytes more than the device that is sent; then the client closes."""
    with connect(daemon) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", CREATABLE, content_length=PADDED_LENGTH))
    # The positive event: the server has closed its side too. A server that wrongly handled the partial
    # body would have done so before closing, so the state check that follows sees it.
    deadline = time.monotonic() + 10
    while half_closed_by_the_client(daemon.port):
        assert time.monotonic() < deadline, "the server did not close a connection its client had closed"
        time.sleep(0.02)
    return HUNG_UP


def half_closed_by_the_client(port):
    """True while a connection to `port` waits in CLOSE_WAIT: its client closed, the server has not yet
    (read from this namespace's /proc/net/tcp and tcp6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "08":
                    return True
    return False


def truncated_then_half_close(daemon):
    """The same, but the client half-closes (shutdown SHUT_WR) and waits: the server must end it, not hang."""
    with connect(daemon) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", CREATABLE, content_length=PADDED_LENGTH))
        sock.shutdown(socket.SHUT_WR)
        return read_reply(sock)


def slow_then_stall(daemon):
    """The device, its last four bytes one every 0.5 s, then nothing: the idle timeout (2 s) must close it."""
    with connect(daemon, timeout=15) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", CREATABLE[:-4], content_length=PADDED_LENGTH))
        for byte in CREATABLE[-4:]:
            time.sleep(0.5)
            sock.sendall(bytes([byte]))
        return read_reply(sock)


def slow_without_end(daemon):
    """The device, then one space every 0.5 s for 6 s (3 times the 2 s timeout). README: --connection-timeout
    is how long a connection may 'sit idle (or trickle a body) before it is closed'."""
    with connect(daemon) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", CREATABLE, content_length=len(CREATABLE) + 1000))
        sock.settimeout(0.05)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                sock.sendall(b" ")
                data = sock.recv(4096)
                return parse_reply(data) if data else CLOSED
            except socket.timeout:
                pass
            except OSError:
                return CLOSED
            time.sleep(0.45)
        return NEVER_CLOSED


def unknown_transfer_encoding(daemon):
    """Transfer-Encoding: gzip, which nobody here speaks, around a plain device."""
    with connect(daemon) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", CREATABLE, content_length=None,
                                   headers=(("Transfer-Encoding", "gzip"),)))
        return read_reply(sock)


def declared_over_the_limit(daemon):
    """Content-Length 5000 against a 1024-byte limit: 413 before any of the body is sent."""
    with connect(daemon) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", b"", content_length=5000))
        return read_reply(sock)


def chunked_over_the_limit(daemon):
    """2000 one-byte chunks of whitespace, then a device: valid JSON of 2 KB against a 1024-byte limit."""
    body = b"".join(b"1\r\n \r\n" for _ in range(2000)) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(CREATABLE), CREATABLE)
    with connect(daemon) as sock:
        sock.sendall(request_bytes(daemon, "POST", "/devices", body, content_length=None,
                                   headers=(("Transfer-Encoding", "chunked"),)))
        return read_reply(sock)


for label, script, daemon, answered_by, status, code in [
        ("truncated body, client closes", truncated_then_close, "main", "closed", (), None),
        ("truncated body, client half-closes", truncated_then_half_close, "main", "closed", (), None),
        ("slow body that stalls", slow_then_stall, "main", "closed", (), None),
        ("unknown Transfer-Encoding", unknown_transfer_encoding, "main", "closed", (), None),
        ("Content-Length over --max-body-bytes", declared_over_the_limit, "tight", "tund", (413,), "payload_too_large"),
        ("chunked body over --max-body-bytes", chunked_over_the_limit, "tight", "tund", (413,), "payload_too_large")]:
    add(Case(id=f"socket: {label}", daemon=daemon, script=script, answered_by=answered_by, status=frozenset(status), code=code))
add(Case(id="socket: slow body that never ends", script=slow_without_end, answered_by="closed"))

# ---- The tight daemon: the bearer token on a destructive request ---------------------------------------
# (test_security.py checks the token's near misses on reads; these aim at a DELETE of a device that exists.)
for label, value in [("missing", None), ("wrong", "Bearer wrong-token-wrong-token-00"),
                     ("with a non-ASCII byte more", f"Bearer {TOKEN}\u00e9".encode())]:
    headers = () if value is None else (("Authorization", value),)
    add(case(f"auth {label} on DELETE", "DELETE", "/devices/lim0", None, 401, "unauthorized", daemon="tight",
             auth=False, headers=headers))
add(case("auth token in the query string", "DELETE", f"/devices/lim0?access_token={TOKEN}", None, 401, "unauthorized",
         daemon="tight", auth=False))
add(case("auth token in another header", "DELETE", "/devices/lim0", None, 401, "unauthorized", daemon="tight",
         auth=False, headers=(("X-Auth-Token", TOKEN),)))

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"

# --------------------------------------------------------------------------------------------------
# The wire: requests built by hand, replies parsed by hand
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def connect(daemon, timeout=10.0):
    return socket.create_connection(("127.0.0.1", daemon.port), timeout=timeout)


def request_bytes(daemon, method, target, body, content_length="auto", headers=(), content_type="default", auth=True) -> bytes:
    """One request, exactly as given. `content_type`: "default" sends application/json with a body, None sends none."""
    lines = [as_bytes(method) + b" " + as_bytes(target) + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    names = {as_bytes(name).lower() for name, _ in headers}
    if auth and getattr(daemon, "token", None) and b"authorization" not in names:
        lines.append(b"Authorization: Bearer " + daemon.token.encode())
    if content_type == "default":
        content_type = JSON if body is not None and b"content-type" not in names else None
    if content_type is not None:
        lines.append(b"Content-Type: " + as_bytes(content_type))
    lines += [as_bytes(name) + b": " + as_bytes(value) for name, value in headers]
    if body is not None and content_length == "auto":
        lines.append(b"Content-Length: %d" % len(body))
    elif isinstance(content_length, int):
        lines.append(b"Content-Length: %d" % content_length)
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def parse_reply(data: bytes):
    while data.startswith(b"HTTP/1.1 1"):  # interim answers (100 Continue)
        data = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    if not data:
        return CLOSED
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split(" ")[1]), headers, body)


def read_reply(sock):
    """Everything until the server closes (every request says Connection: close)."""
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"the server neither answered nor closed the connection; got {b''.join(chunks)[:200]!r}")
    return parse_reply(b"".join(chunks))


def exchange(daemon, raw: bytes, timeout=10.0):
    with connect(daemon, timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413, 431) and closed; the answer is still readable
        return read_reply(sock)


def api(daemon, method, path, body=None):
    """A well-formed request from a well-behaved client (the suite's own, for snapshots and setup)."""
    reply = exchange(daemon, request_bytes(daemon, method, path, None if body is None else j(body)))
    assert isinstance(reply, Reply), f"{method} {path}: {reply}"
    return reply


# --------------------------------------------------------------------------------------------------
# State: the kernel, the API and the databases
# --------------------------------------------------------------------------------------------------


def kernel_state():
    links = sorted(
        (link["ifname"], link.get("link_type"), link.get("mtu"), link.get("address"), link.get("ifalias"),
         sorted(link.get("flags", [])))
        for link in ip_json("link", "show"))
    addresses = sorted(
        (entry["ifname"], info.get("family"), info.get("local"), info.get("prefixlen"), info.get("address"))
        for entry in ip_json("address", "show") for info in entry.get("addr_info", []))
    routes = {family: sorted(json.dumps(route, sort_keys=True) for route in ip_json(family, "route", "show", "table", "all"))
              for family in ("-4", "-6")}
    return {"links": links, "addresses": addresses, "routes": routes}


def database_rows(path):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"')) for table in tables}
    finally:
        connection.close()


def snapshot(env):
    state = {"kernel": kernel_state()}
    for role, daemon in env.daemons.items():
        state[f"api:{role}"] = json.loads(api(daemon, "GET", "/devices").body)
        state[f"database:{role}"] = database_rows(daemon.database)
    return state


def describe_difference(before, after) -> str:
    lines = []
    for key in before:
        if before[key] != after.get(key):
            old = json.dumps(before[key], indent=1, sort_keys=True, default=str).splitlines()
            new = json.dumps(after.get(key), indent=1, sort_keys=True, default=str).splitlines()
            lines.append(f"{key} changed:")
            lines += list(difflib.unified_diff(old, new, lineterm="", n=1))[2:40]
    return "\n".join(lines)


def settle(env, timeout=8.0):
    """Waits until IPv6 duplicate address detection is over and two snapshots in a row agree."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        tentative = any(info.get("tentative") for entry in ip_json("address", "show") for info in entry.get("addr_info", []))
        if not tentative:
            current = snapshot(env)
            if current == previous:
                return current
            previous = current
        time.sleep(0.25)
    raise AssertionError("the baseline did not settle")


def create_baseline(env, roles):
    """Gives each daemon in `roles` its baseline devices again (all deleted, then created), removes links no
    daemon owns, and takes the new baseline."""
    for role in roles:
        daemon = env.daemons[role]
        for device in json.loads(api(daemon, "GET", "/devices").body)["devices"]:
            assert api(daemon, "DELETE", f"/devices/{device['name']}").status == 204
        for spec in BASELINE[role]:
            reply = api(daemon, "POST", "/devices", spec)
            assert reply.status == 201, f"baseline {spec['name']}: {reply}"
    known = {spec["name"] for specs in BASELINE.values() for spec in specs} | {"lo"}
    for link in ip_json("link", "show"):
        if link["ifname"] not in known:
            subprocess.run(["ip", "link", "del", link["ifname"]], capture_output=True)
    env.baseline = settle(env)


def answers(daemon) -> bool:
    try:
        reply = exchange(daemon, request_bytes(daemon, "GET", "/healthz", None), timeout=5)
    except (OSError, AssertionError):
        return False
    return isinstance(reply, Reply) and reply.status == 200


def devices_of(listing):
    """name -> device, from `GET /devices` as bytes or as parsed JSON."""
    if isinstance(listing, bytes):
        listing = json.loads(listing)
    return {device["name"]: device for device in listing["devices"]}


def restore(env, role):
    """After a case that failed: undo whatever it changed, so that the next case starts from the baseline.
    A daemon that died is started again first (its devices are persistent, so it re-attaches them). Extra
    devices are deleted; baseline devices that differ are re-created."""
    for daemon in env.daemons.values():
        if not answers(daemon):
            try:
                daemon.process.wait(timeout=10)  # a crashing Swift process prints its backtrace first
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                daemon.process.wait()
            launch(daemon)
    for name, daemon in env.daemons.items():
        wanted = devices_of(env.baseline[f"api:{name}"])
        for device in devices_of(api(daemon, "GET", "/devices").body):
            if device not in wanted:
                assert api(daemon, "DELETE", f"/devices/{device}").status == 204
    current = snapshot(env)
    if current == env.baseline:
        return
    for name, daemon in env.daemons.items():
        wanted, present = devices_of(env.baseline[f"api:{name}"]), devices_of(current[f"api:{name}"])
        for device in wanted:
            if present.get(device) != wanted[device]:
                if device in present:
                    assert api(daemon, "DELETE", f"/devices/{device}").status == 204
                spec = next(spec for spec in BASELINE[name] if spec["name"] == device)
                reply = api(daemon, "POST", "/devices", spec)
                assert reply.status == 201, f"baseline {device}: {reply}"
    known = {spec["name"] for specs in BASELINE.values() for spec in specs} | {"lo"}
    for link in ip_json("link", "show"):
        if link["ifname"] not in known:
            subprocess.run(["ip", "link", "del", link["ifname"]], capture_output=True)
    env.baseline = settle(env)


# --------------------------------------------------------------------------------------------------
# Fixtures and the tests
# --------------------------------------------------------------------------------------------------


class Environment:
    def __init__(self):
        self.daemons = {}
        self.baseline = None

    def fill(self, text):
        """Replaces {ROUTE} (the id of tun0's route) and {GEN} (tun0's generation) in a target or header."""
        if not isinstance(text, str) or not ("{ROUTE}" in text or "{GEN}" in text):
            return text
        tun0 = json.loads(api(self.daemons["main"], "GET", "/devices/tun0").body)
        return text.replace("{ROUTE}", str(tun0["routes"][0]["id"])).replace("{GEN}", str(tun0["generation"]))


def start_daemon(extra_args, token=None):
    directory = tempfile.mkdtemp(prefix="tund-hostile-")
    args = list(extra_args)
    if token:
        token_file = os.path.join(directory, "token")
        with open(token_file, "w") as handle:
            handle.write(token + "\n")
        os.chmod(token_file, 0o600)
        args += ["--token-file", token_file]
    daemon = Tund(os.path.join(directory, "tund.db"), free_port(), args)
    daemon.token = token
    return launch(daemon)


def launch(daemon):
    """Starts (or restarts, on the same port and database) and waits for /readyz, with the token if any."""
    daemon.start(wait_ready=False)
    deadline = time.monotonic() + 15
    while True:
        assert daemon.process.poll() is None, f"tund exited:\n{daemon.log()}"
        try:
            if exchange(daemon, request_bytes(daemon, "GET", "/readyz", None), timeout=2).status == 200:
                return daemon
        except (OSError, AssertionError, AttributeError):
            pass
        assert time.monotonic() < deadline, f"tund not ready:\n{daemon.log()}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def env():
    remove_tun_links()
    environment = Environment()
    try:
        environment.daemons["main"] = start_daemon(["--max-body-bytes", str(4 << 20), "--connection-timeout", "2"])
        environment.daemons["tight"] = start_daemon(["--max-body-bytes", "1024"], token=TOKEN)
        create_baseline(environment, environment.daemons)
        yield environment
    finally:
        for daemon in environment.daemons.values():
            daemon.stop()
        remove_tun_links()


RESULTS = []


def send(hostile, daemon, env):
    if hostile.script is not None:
        return hostile.script(daemon)
    if hostile.wire is not None:
        return exchange(daemon, hostile.wire)
    target = env.fill(hostile.target)
    headers = tuple((name, env.fill(value)) for name, value in hostile.headers)
    content_type = hostile.content_type if hostile.body is not None else None
    return exchange(daemon, request_bytes(daemon, hostile.method, target, hostile.body, headers=headers,
                                          content_type=content_type, auth=hostile.auth))


def check_answer(hostile, outcome):
    if hostile.answered_by == "closed":
        # No request to answer: closing is right; so would be a 4xx (408, 400) if the server chose to send one.
        if outcome in (CLOSED, HUNG_UP):
            return
        assert isinstance(outcome, Reply) and 400 <= outcome.status < 500, \
            f"expected the server to close the connection (or answer 4xx), got: {outcome}"
        return
    assert isinstance(outcome, Reply), f"expected an answer, got: {outcome}"
    assert 400 <= outcome.status < 500, outcome
    assert outcome.status in hostile.status, f"status {outcome.status}, expected one of {sorted(hostile.status)}: {outcome!r}"
    is_json = outcome.headers.get("content-type") == JSON
    if hostile.answered_by == "mhd" and not is_json:
        return  # libmicrohttpd's own HTML answer; only its status is part of the contract
    assert is_json, f"not a JSON error: {outcome.headers} {outcome!r}"
    if hostile.method == "HEAD" and hostile.wire is None:
        assert outcome.body == b"", "a HEAD answer has no body"
    else:
        error = json.loads(outcome.body)["error"]
        assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str) and error["message"]
        if isinstance(hostile.code, frozenset):
            assert error["code"] in hostile.code, error
        elif hostile.code is not None:
            assert error["code"] == hostile.code, error
        if hostile.field is not None:
            assert error.get("field") == hostile.field, error
        if hostile.errno is not None:
            assert error.get("errno") == hostile.errno, error
    if outcome.status == 405:
        assert outcome.headers.get("allow"), "405 without Allow"
    if outcome.status == 412:
        assert outcome.headers.get("etag"), "412 without ETag"
    if outcome.status == 401:
        assert outcome.headers.get("www-authenticate", "").startswith("Bearer"), "401 without WWW-Authenticate"


def params():
    for hostile in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=hostile.bug)] if hostile.bug else []
        yield pytest.param(hostile, id=hostile.id.replace(" ", "_"), marks=marks)


@pytest.mark.parametrize("hostile", params())
def test_hostile_input_is_refused_and_changes_nothing(env, hostile):
    before = env.baseline
    daemon = env.daemons[hostile.daemon]
    record = {"id": hostile.id, "bug": hostile.bug, "outcome": None, "unchanged": False}
    RESULTS.append(record)
    try:
        outcome = send(hostile, daemon, env)
        if isinstance(outcome, Reply):
            record["outcome"] = "tund" if outcome.headers.get("content-type") == JSON else "mhd"
            record["status"] = outcome.status
        else:
            record["outcome"], record["status"] = "closed", None
        check_answer(hostile, outcome)
        for role, each in env.daemons.items():
            assert each.process.poll() is None, f"the {role} daemon died:\n{each.log()}"
            health = exchange(each, request_bytes(each, "GET", "/healthz", None))
            assert isinstance(health, Reply) and health.status == 200, f"the {role} daemon stopped serving: {health}"
        after = snapshot(env)
        assert after == before, "state changed:\n" + describe_difference(before, after)
        record["unchanged"] = True
    finally:
        if not record["unchanged"]:
            restore(env, hostile.daemon)


def summary():
    """The closing count, printed by conftest's pytest_terminal_summary after every test, whatever their
    order or selection: how each case that ran was refused. Each case asserts its own outcome; this only
    counts."""
    if not RESULTS:
        return None
    clean = [r for r in RESULTS if not r["bug"]]
    refused = [r for r in clean if r["unchanged"] and (r["outcome"] == "closed" or 400 <= (r.get("status") or 0) < 500)]
    by_outcome = {kind: sum(1 for r in refused if r["outcome"] == kind) for kind in ("tund", "mhd", "closed")}
    statuses = sorted({r["status"] for r in refused if r["outcome"] != "closed"})
    bugs = [r for r in RESULTS if r["bug"]]
    return (f"hostile suite: {len(RESULTS)} cases. {len(refused)} of the {len(clean)} without a known bug were refused "
            f"and changed nothing: {by_outcome['tund']} with tund's JSON 4xx, {by_outcome['mhd']} with libmicrohttpd's "
            f"own 4xx, {by_outcome['closed']} closed without an answer (statuses {statuses}). "
            f"{len(bugs)} cases are known bugs (strict xfail).")
