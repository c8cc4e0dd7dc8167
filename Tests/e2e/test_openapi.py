"""The contract in api/openapi.yaml against the real daemon.

The spec must be valid OpenAPI 3.1, and it must say what tund does: every answer the daemon gives is
one the spec lists for that operation and status, with the headers it declares (required ones present,
values matching their schemas) and a body that its schema accepts (schemas are closed, so an undocumented
key fails too); every event of the event stream is an `Event`; every operation it lists is served; every
path serves exactly the methods it lists; and the request schemas draw the line where the daemon does.
"""
import http.client
import json
import pathlib
import socket
import subprocess
import time

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = pathlib.Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
# A hierarchical base URI, so that the spec's own "#/components/..." references resolve against it.
SPEC_URI = "https://tund.invalid/api/openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON = {"Content-Type": "application/json"}
# The parameter every path template names, by the `{...}` it fills.
PATH_PARAMETERS = {"{name}": "DeviceName", "{address}": "Address", "{id}": "RouteId"}


def escape(token: str) -> str:
    """One JSON-pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class Contract:
    """The spec, with lookups by operation and status and validators for the schemas it declares."""

    def __init__(self, document):
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)

    def operations(self):
        for path, item in self.document["paths"].items():
            for method in HTTP_METHODS:
                if method in item:
                    yield path, method

    def operation(self, path, method):
        item = self.document["paths"].get(path)
        assert item is not None, f"the spec has no path {path}"
        assert method in item, f"the spec has no {method.upper()} {path}"
        return item[method]

    def follow(self, tokens):
        """The object at `tokens` and its own location, following a local `$ref` there (to the end)."""
        tokens = list(tokens)
        node = self.document
        for token in tokens:
            node = node[token]
        while isinstance(node, dict) and "$ref" in node:
            reference = node["$ref"]
            assert reference.startswith("#/"), reference
            tokens = [unescape(token) for token in reference[2:].split("/")]
            node = self.document
            for token in tokens:
                node = node[token]
        return node, tokens

    def response_location(self, path, method, status):
        return self.follow(["paths", path, method, "responses", status])

    def responses(self, path, method):
        """The operation's responses by status, `$ref`s resolved."""
        return {status: self.response_location(path, method, status)[0]
                for status in self.operation(path, method)["responses"]}

    def parameters(self, path, method):
        return [self.follow(["paths", path, method, "parameters", index])[0]
                for index in range(len(self.operation(path, method).get("parameters", [])))]

    def validator_at(self, tokens):
        pointer = "".join("/" + escape(str(token)) for token in tokens)
        return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry,
                                    format_checker=Draft202012Validator.FORMAT_CHECKER)

    def validator(self, *pointer_tokens):
        return self.validator_at(pointer_tokens)

    def schema_validator(self, name):
        return self.validator("components", "schemas", name)

    def response_validator(self, path, method, status, media="application/json"):
        _, tokens = self.response_location(path, method, status)
        return self.validator_at(tokens + ["content", media, "schema"])

    def check_headers(self, path, method, status, response):
        """Every required header of the declared answer is present, and every declared one that is
        present has a value its schema accepts."""
        _, location = self.response_location(path, method, status)
        declared = self.follow(location)[0].get("headers", {})
        headers = {name.lower(): value for name, value in response.headers.items()}
        for name in declared:
            header, header_location = self.follow(location + ["headers", name])
            value = headers.get(name.lower())
            if value is None:
                assert not header.get("required"), f"{method.upper()} {path} {status}: header {name} missing"
                continue
            if header["schema"].get("type") == "integer":
                assert value.isdigit(), f"{method.upper()} {path} {status}: header {name}: {value!r}"
                value = int(value)
            errors = list(self.validator_at(header_location + ["schema"]).iter_errors(value))
            assert not errors, f"{method.upper()} {path} {status}: header {name}: {value!r}: {errors[0].message}"

    def check(self, path, method, response):
        """Asserts that the live `response` to `method path` is one the spec declares; returns its JSON."""
        responses = self.responses(path, method)
        status = str(response.status)
        assert status in responses, (
            f"{method.upper()} {path} answered {response!r}, a status the spec does not list ({sorted(responses)})")
        declared = responses[status]
        self.check_headers(path, method, status, response)
        headers = {name.lower(): value for name, value in response.headers.items()}
        if "content" not in declared:
            assert response.body == b"", f"{method.upper()} {path} {status}: the spec declares no body, got {response!r}"
            return None
        assert headers.get("content-type", "").split(";")[0].strip() == "application/json", headers
        assert list(declared["content"]) == ["application/json"]
        body = response.json()
        errors = sorted(self.response_validator(path, method, status).iter_errors(body), key=str)
        assert not errors, (f"{method.upper()} {path} {status} does not match the spec:\n"
                            + "\n".join(f"- at {list(error.absolute_path)}: {error.message}" for error in errors)
                            + f"\nbody: {body}")
        return body

    def check_event(self, event_id, kind, data):
        """One event of the stream: its data is an `Event`, its SSE id and type are its sequence and type."""
        errors = sorted(self.schema_validator("Event").iter_errors(data), key=str)
        assert not errors, ("event does not match the Event schema:\n"
                            + "\n".join(f"- at {list(error.absolute_path)}: {error.message}" for error in errors)
                            + f"\nevent: {data}")
        assert event_id == str(data["sequence"]) and kind == data["type"], (event_id, kind, data)
        return data


class EventStream:
    """`GET /events`, read incrementally with a socket timeout, so that a test never hangs on it."""

    def __init__(self, tund, contract, last_event_id=None, query=None, timeout=10.0):
        self.contract = contract
        self.connection = http.client.HTTPConnection("127.0.0.1", tund.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", "/events" + (f"?{query}" if query else ""), headers=headers)
        self.response = self.connection.getresponse()
        self.buffer = b""
        self.comments = []
        self.retry = None
        self.headers = dict(self.response.getheaders())
        contract.check_headers("/events", "get", str(self.response.status), self)
        assert self.response.status == 200, self.response.status
        declared = contract.responses("/events", "get")["200"]["content"]
        assert list(declared) == ["text/event-stream"], declared
        assert self.headers["Content-Type"].split(";")[0].strip() == "text/event-stream"

    def next_block(self):
        while b"\n\n" not in self.buffer:
            chunk = self.response.read1(65536)
            if not chunk:
                raise EOFError(f"the event stream ended; unparsed: {self.buffer!r}")
            self.buffer += chunk
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        return block.decode()

    def next_event(self):
        """The next event as (id, type, data), its data checked against `Event`; comments are skipped."""
        while True:
            fields = {}
            for line in self.next_block().split("\n"):
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                key, _, value = line.partition(":")
                assert key in ("id", "event", "data", "retry"), f"unknown SSE field in {line!r}"
                assert key not in fields, f"{key} twice in one event"
                fields[key] = value[1:] if value.startswith(" ") else value
            if "retry" in fields:
                self.retry = fields.pop("retry")
            if not fields:
                continue
            assert set(fields) == {"id", "event", "data"}, fields
            data = json.loads(fields["data"])
            self.contract.check_event(fields["id"], fields["event"], data)
            return fields["id"], fields["event"], data

    def until(self, predicate, limit=100):
        """Events up to and including the first that matches (bounded in count and by the timeout)."""
        seen = []
        for _ in range(limit):
            seen.append(self.next_event())
            if predicate(seen[-1]):
                return seen
        raise AssertionError(f"no matching event among {seen}")

    def close(self):
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as file:
        return yaml.safe_load(file)


@pytest.fixture(scope="module")
def contract(spec):
    return Contract(spec)


def call(tund, contract, method, pattern, path=None, body=None, headers=None, raw=None):
    """Sends a request to `path` (default: `pattern`) and checks the answer against `pattern`'s operation."""
    response = tund.request(method.upper(), path or pattern, body=body, headers=headers, raw=raw)
    return response, contract.check(pattern, method, response)


def error_code(response):
    return response.json()["error"]["code"]


def etag(response):
    return response.headers.get("ETag")


def create(tund, contract, body, headers=None):
    response, device = call(tund, contract, "post", "/devices", body=body, headers=headers)
    assert response.status == 201, response
    assert response.headers.get("Location") == f"/devices/{device['name']}"
    assert etag(response) == f'"{device["generation"]}"'
    return device


def generation(tund, contract, name):
    response, device = call(tund, contract, "get", "/devices/{name}", f"/devices/{name}")
    assert response.status == 200 and etag(response) == f'"{device["generation"]}"'
    return device["generation"]


def eventually(check, attempts=100):
    """Retries a check while the daemon catches up (at most 10 s); returns the last result."""
    for _ in range(attempts):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    return check()


# ---------------------------------------------------------------------------------------------------
# The document itself


def test_spec_is_valid_openapi_3_1(spec):
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "tund"
    assert spec["info"]["version"] == "0.1.0"


def test_spec_layout_is_what_the_line_based_swift_check_reads():
    """Under `paths:` only path keys sit at 2 spaces and only lower-case methods at 4; no anchors or aliases."""
    lines = SPEC_PATH.read_text().splitlines()
    start = lines.index("paths:")
    end = next(index for index in range(start + 1, len(lines)) if lines[index][:1] not in ("", " "))
    paths = []
    for line in lines[start + 1:end]:
        indent = len(line) - len(line.lstrip(" "))
        if indent == 2:
            assert line.startswith("  /") and line.endswith(":"), line
            paths.append(line.strip()[:-1])
        elif indent == 4:
            assert line.strip()[:-1] in HTTP_METHODS and line.endswith(":"), line
    assert paths == list(yaml.safe_load(SPEC_PATH.read_text())["paths"])
    for event in yaml.parse(SPEC_PATH.read_text()):
        assert not isinstance(event, yaml.AliasEvent) and getattr(event, "anchor", None) is None, event


def test_every_operation_is_documented(contract):
    operation_ids = []
    for path, method in contract.operations():
        operation = contract.operation(path, method)
        for key in ("operationId", "summary", "description", "tags", "responses"):
            assert operation.get(key), f"{method.upper()} {path} has no {key}"
        operation_ids.append(operation["operationId"])
        if "{name}" in path:
            assert {"$ref": "#/components/parameters/DeviceName"} in operation.get("parameters", []), \
                f"{method.upper()} {path} does not declare its name parameter"
        for status, response in operation["responses"].items():
            if "content" in response:
                errors = status >= "400"
                schema = response["content"]["application/json"]["schema"]
                assert (schema == {"$ref": "#/components/schemas/Error"}) == errors, (path, method, status)
    assert len(operation_ids) == len(set(operation_ids)), operation_ids


def test_examples_match_their_schemas(contract):
    """Every named example in the spec is valid against the schema it illustrates."""
    checked = 0
    for path, method in contract.operations():
        operation = contract.operation(path, method)
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            validator = contract.validator("paths", path, method, "requestBody", "content", "application/json", "schema")
            for name, example in body.get("examples", {}).items():
                errors = list(validator.iter_errors(example["value"]))
                assert not errors, f"request example {name} of {method.upper()} {path}: {errors[0].message}"
                checked += 1
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json")
            if not media:
                continue
            validator = contract.response_validator(path, method, status)
            for name, example in media.get("examples", {}).items():
                errors = list(validator.iter_errors(example["value"]))
                assert not errors, f"example {name} of {method.upper()} {path} {status}: {errors[0].message}"
                if status >= "400":
                    assert f"`{example['value']['error']['code']}`" in response["description"], \
                        f"example {name} of {method.upper()} {path} {status}: its code is not named in the description"
                checked += 1
    assert checked > 30


# ---------------------------------------------------------------------------------------------------
# Live answers against the spec


def test_live_answers_match_the_spec(tund, contract):
    # Health.
    response, body = call(tund, contract, "get", "/healthz")
    assert response.status == 200 and body == {"status": "ok"}
    response, body = call(tund, contract, "get", "/readyz")
    assert response.status == 200 and body == {"status": "ready"}

    # Creates: a tun with an address and a route, a tap with a MAC and two queues, one named by the kernel.
    tun = create(tund, contract, {"name": "spec0", "type": "tun", "addresses": ["10.77.0.1/24"],
                                  "routes": [{"destination": "10.78.0.0/16", "gateway": "10.77.0.2", "metric": 100}]})
    assert tun["state"]["present"] is True and tun["routes"][0]["gateway"] == "10.77.0.2"
    tap = create(tund, contract, {"name": "spec1", "type": "tap", "mac": "02:00:00:00:77:01", "queues": 2})
    assert tap["mac"] == "02:00:00:00:77:01" and tap["queues"] == 2
    unnamed = create(tund, contract, {"type": "tun"})
    assert unnamed["name"].startswith("tun")

    # A packet through the tun, so that its counters and last_packet_at are not all zero and null.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"tund", ("10.78.0.9", 9))

    # Reads.
    response, body = call(tund, contract, "get", "/devices")
    assert response.status == 200
    assert [device["name"] for device in body["devices"]] == ["spec0", "spec1", unnamed["name"]]
    for name in ("spec0", "spec1"):
        response, body = call(tund, contract, "get", "/devices/{name}", f"/devices/{name}")
        assert response.status == 200 and body["name"] == name
    for name in ("spec0", "spec1"):
        response, body = call(tund, contract, "get", "/devices/{name}/stats", f"/devices/{name}/stats")
        assert response.status == 200 and body["name"] == name and body["kernel"] is not None
    assert len(body["worker"]["queues"]) == 2

    # Bad creates, each with the status the spec gives it.
    json_headers = {"Content-Type": "application/json"}
    response, body = call(tund, contract, "post", "/devices", raw=b'{"type":', headers=json_headers)
    assert response.status == 400 and error_code(response) == "invalid_json"
    response, body = call(tund, contract, "post", "/devices", raw=b"", headers=json_headers)
    assert response.status == 400 and error_code(response) == "invalid_json"
    response, body = call(tund, contract, "post", "/devices", body=["tun"])
    assert response.status == 400 and error_code(response) == "invalid_request"
    response, body = call(tund, contract, "post", "/devices", raw=b'{"type":"tun"}', headers={"Content-Type": "text/plain"})
    assert response.status == 415 and error_code(response) == "unsupported_media_type"
    response, body = call(tund, contract, "post", "/devices", body={"name": "spec9", "type": "tunnel"})
    assert response.status == 422 and body["error"]["code"] == "invalid_field" and body["error"]["field"] == "type"
    response, body = call(tund, contract, "post", "/devices", body={"type": "tun", "mut": 1400})
    assert response.status == 422 and body["error"]["field"] == "mut"
    response, body = call(tund, contract, "post", "/devices", body={"name": "spec0", "type": "tun"})
    assert response.status == 409 and error_code(response) == "device_exists"
    response, body = call(tund, contract, "post", "/devices", body={"name": "lo", "type": "tun"})
    assert response.status == 409 and error_code(response) == "name_in_use"
    response, body = call(tund, contract, "post", "/devices", body={
        "name": "spec2", "type": "tun", "addresses": ["10.79.0.1/24"], "routes": [{"destination": "10.78.0.0/16", "metric": 100}]})
    assert response.status == 409 and error_code(response) == "kernel_rejected" and body["error"]["errno"] == "EEXIST"
    response, body = call(tund, contract, "post", "/devices", body={
        "name": "spec3", "type": "tun", "routes": [{"destination": "10.80.0.0/16", "gateway": "10.81.0.1"}]})
    assert response.status == 422 and error_code(response) == "kernel_rejected" and "errno" in body["error"]
    response, body = call(tund, contract, "post", "/devices", raw=b" " * 70000, headers=json_headers)
    assert response.status == 413 and error_code(response) == "payload_too_large"

    # Unknown devices and malformed paths.
    for method, pattern in (("get", "/devices/{name}"), ("get", "/devices/{name}/stats"), ("delete", "/devices/{name}")):
        response, body = call(tund, contract, method, pattern, pattern.replace("{name}", "nosuch0"))
        assert response.status == 404 and error_code(response) == "device_not_found"
        response, body = call(tund, contract, method, pattern, pattern.replace("{name}", "bad%zz"))
        assert response.status == 400 and error_code(response) == "invalid_path"

    # Delete, and the device is gone.
    response, body = call(tund, contract, "delete", "/devices/{name}", "/devices/spec1")
    assert response.status == 204 and body is None
    response, body = call(tund, contract, "get", "/devices/{name}", "/devices/spec1")
    assert response.status == 404
    response, body = call(tund, contract, "get", "/devices")
    assert [device["name"] for device in body["devices"]] == ["spec0", unnamed["name"]]


def test_counters_after_traffic_match_the_spec(tund, contract):
    create(tund, contract, {"name": "spec4", "type": "tun", "addresses": ["10.82.0.1/24", "fd00:82::1/64"]})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(3):
            sender.sendto(b"x" * 100, ("10.82.0.2", 9))
    response, stats = call(tund, contract, "get", "/devices/{name}/stats", "/devices/spec4/stats")
    assert response.status == 200
    worker = stats["worker"]
    assert worker["protocols"]["udp"] >= 3 and worker["protocols"]["ipv4"] >= 3
    assert worker["last_packet_at"] is not None
    protocols = worker["protocols"]
    assert protocols["arp"] + protocols["icmp"] + protocols["icmpv6"] + protocols["tcp"] + protocols["udp"] \
        + protocols["other"] == worker["packets_read"] - worker["dropped"]
    assert stats["kernel"]["tx_packets"] >= 3


def test_request_examples_are_accepted(tund, contract, spec):
    examples = spec["paths"]["/devices"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert {"tun", "tap", "minimal"} <= set(examples)
    for name, example in examples.items():
        response, device = call(tund, contract, "post", "/devices", body=example["value"])
        assert response.status == 201, f"example {name}: {response!r}"
        response, _ = call(tund, contract, "delete", "/devices/{name}", f"/devices/{device['name']}")
        assert response.status == 204


# Bodies that DeviceCreate rejects, with the field the daemon names. The schema and the daemon must agree.
REJECTED = [
    ({}, "type"),
    ({"type": None}, "type"),
    ({"type": "tunnel"}, "type"),
    ({"type": "tun", "name": ""}, "name"),
    ({"type": "tun", "name": "a" * 16}, "name"),
    ({"type": "tun", "name": "bad/name"}, "name"),
    ({"type": "tun", "name": ".."}, "name"),
    ({"type": "tun", "name": 7}, "name"),
    ({"type": "tun", "mtu": 67}, "mtu"),
    ({"type": "tun", "mtu": 65536}, "mtu"),
    ({"type": "tun", "mtu": "1500"}, "mtu"),
    ({"type": "tun", "mtu": 1500.5}, "mtu"),
    ({"type": "tun", "up": "yes"}, "up"),
    ({"type": "tun", "owner": -1}, "owner"),
    ({"type": "tun", "group": 4294967295}, "group"),
    ({"type": "tun", "queues": 0}, "queues"),
    ({"type": "tun", "queues": 65}, "queues"),
    ({"type": "tun", "mac": "02:00:00:00:00:01"}, "mac"),
    ({"type": "tap", "mac": "01:00:5e:00:00:01"}, "mac"),
    ({"type": "tap", "mac": "00:00:00:00:00:00"}, "mac"),
    ({"type": "tap", "mac": "02-00-00-00-00-01"}, "mac"),
    ({"type": "tun", "addresses": "10.0.0.1/24"}, "addresses"),
    ({"type": "tun", "addresses": ["10.0.0.1/33"]}, "addresses[0]"),
    ({"type": "tun", "addresses": ["10.0.0.1/024"]}, "addresses[0]"),
    ({"type": "tun", "addresses": ["example.com"]}, "addresses[0]"),
    ({"type": "tun", "addresses": ["10.0.0.1/24", "10.0.0.1/24"]}, "addresses[1]"),
    ({"type": "tun", "addresses": ["10.0.%d.%d/16" % (index // 200, index % 200 + 1) for index in range(257)]}, "addresses"),
    ({"type": "tun", "mtu": 1279, "addresses": ["fd00::1/64"]}, "addresses[0]"),
    ({"type": "tun", "up": False, "routes": [{"destination": "10.1.0.0/16"}]}, "routes"),
    ({"type": "tun", "routes": [{}]}, "routes[0].destination"),
    ({"type": "tun", "routes": [{"destination": "10.1.0.0/16", "via": "10.0.0.1"}]}, "routes[0].via"),
    ({"type": "tun", "routes": [{"destination": "10.1.0.0/16", "gateway": "gw"}]}, "routes[0].gateway"),
    ({"type": "tun", "routes": [{"destination": "10.1.0.0/16", "metric": 4294967296}]}, "routes[0].metric"),
    ({"type": "tun", "routes": ["10.1.0.0/16"]}, "routes[0]"),
    ({"type": "tun", "worker": {"mode": "echo"}}, "worker.mode"),
    ({"type": "tun", "worker": {"threads": 2}}, "worker.threads"),
    ({"type": "tun", "worker": "count"}, "worker"),
]

# Bodies that DeviceCreate accepts at its edges; the daemon must create them.
ACCEPTED = [
    {"type": "tun", "name": "a" * 15},
    {"type": "tun", "name": "x.y_z-1", "mtu": 68, "queues": 64},
    {"type": "tun", "mtu": None, "up": None, "owner": None, "group": None, "queues": None, "mac": None,
     "addresses": None, "routes": None, "worker": None, "name": None},
    {"type": "tun", "mtu": 65535, "owner": 4294967294, "group": 0, "worker": {"mode": None}},
    {"type": "tun", "up": False, "routes": []},
    {"type": "tun", "mtu": 1280, "addresses": ["fd00:83::1/64", "10.83.0.1"]},
    {"type": "tap", "mac": "0A:BC:DE:F0:12:34", "worker": {"mode": "count"}},
    {"type": "tun", "addresses": ["10.84.0.1/24"],
     "routes": [{"destination": "10.85.0.0/16", "gateway": None, "metric": None},
                {"destination": "10.85.0.0/16", "metric": 4294967295}]},
]


def test_request_schema_and_daemon_agree(tund, contract):
    schema = contract.schema_validator("DeviceCreate")
    for body, field in REJECTED:
        assert not schema.is_valid(body), f"DeviceCreate accepts {body}, which the daemon rejects"
        response, answer = call(tund, contract, "post", "/devices", body=body)
        assert response.status == 422, f"{body}: {response!r}"
        assert (answer["error"]["code"], answer["error"].get("field")) == ("invalid_field", field), f"{body}: {response!r}"
    for body in ACCEPTED:
        errors = list(schema.iter_errors(body))
        assert not errors, f"DeviceCreate rejects {body}: {errors[0].message}"
        response, device = call(tund, contract, "post", "/devices", body=body)
        assert response.status == 201, f"{body}: {response!r}"
        response, _ = call(tund, contract, "delete", "/devices/{name}", f"/devices/{device['name']}")
        assert response.status == 204


# ---------------------------------------------------------------------------------------------------
# The spec's operations are exactly the daemon's


def test_every_operation_in_the_spec_is_served(tund, contract, spec):
    minimal = spec["paths"]["/devices"]["post"]["requestBody"]["content"]["application/json"]["examples"]["minimal"]["value"]
    create(tund, contract, {"name": "reach0", "type": "tun"})
    create(tund, contract, {"name": "reach1", "type": "tun"})
    # DELETE last, on a device of its own.
    operations = sorted(contract.operations(), key=lambda operation: operation[1] == "delete")
    for path, method in operations:
        target = path.replace("{name}", "reach1" if method == "delete" else "reach0")
        body = minimal if contract.operation(path, method).get("requestBody") else None
        response, answer = call(tund, contract, method, path, target, body=body)
        assert response.status != 405, f"{method.upper()} {target}: {response!r}"
        assert not (response.status == 404 and answer["error"]["code"] == "not_found"), f"{method.upper()} {target}: {response!r}"
        assert response.status < 400, f"{method.upper()} {target}: {response!r}"


def test_each_path_serves_exactly_the_methods_in_the_spec(tund, contract, spec):
    create(tund, contract, {"name": "reach0", "type": "tun"})
    for path, item in spec["paths"].items():
        declared = {method.upper() for method in HTTP_METHODS if method in item}
        target = path.replace("{name}", "reach0")
        probe = next(method for method in ("PUT", "PATCH", "POST", "DELETE", "GET") if method not in declared)
        response = tund.request(probe, target, body={"type": "tun"})
        assert response.status == 405 and error_code(response) == "method_not_allowed", f"{probe} {target}: {response!r}"
        allowed = {method.strip() for method in response.headers.get("Allow", "").split(",") if method.strip()}
        assert allowed == declared, f"{path}: the daemon serves {sorted(allowed)}, the spec lists {sorted(declared)}"
