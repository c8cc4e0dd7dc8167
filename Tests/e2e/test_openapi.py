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
        media = headers.get("content-type", "").split(";")[0].strip()
        assert media in declared["content"], f"{method.upper()} {path} {status}: {media} is not among {list(declared['content'])}"
        if media != "application/json":
            return response.body  # metrics text, pcap: the spec types them as strings
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
        parameters = operation.get("parameters", [])
        for placeholder, parameter in PATH_PARAMETERS.items():
            if placeholder in path:
                assert {"$ref": f"#/components/parameters/{parameter}"} in parameters, \
                    f"{method.upper()} {path} does not declare its {placeholder} parameter"
        in_path = [parameter["name"] for parameter in contract.parameters(path, method) if parameter["in"] == "path"]
        assert sorted("{" + name + "}" for name in in_path) == sorted(part for part in path.split("/") if part.startswith("{"))
        for status, response in contract.responses(path, method).items():
            assert response.get("description"), (path, method, status)
            for media, content in response.get("content", {}).items():
                schema = content["schema"]
                if media == "text/event-stream":
                    # A stream is a string to OpenAPI 3.1; its events are described by the Event schema.
                    assert status == "200" and schema["type"] == "string", (path, method, status)
                    assert "#/components/schemas/Event" in schema["description"] + response["description"]
                    continue
                if media in ("text/plain", "application/vnd.tcpdump.pcap"):
                    assert status == "200" and schema["type"] == "string", (path, method, status)
                    continue
                assert media == "application/json", (path, method, status, media)
                assert (schema == {"$ref": "#/components/schemas/Error"}) == (status >= "400"), (path, method, status)
            if status >= "400":
                assert "content" in response, (path, method, status)
    assert len(operation_ids) == len(set(operation_ids)), operation_ids
    # With a token, every endpoint but the probes needs it.
    assert contract.document["security"] == [{}, {"bearerToken": []}]
    for path, method in contract.operations():
        if path in ("/healthz", "/readyz"):
            assert contract.operation(path, method)["security"] == [] and "401" not in contract.responses(path, method)
        else:
            assert contract.operation(path, method)["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}, (path, method)
    # Every change takes If-Match, and answers 412 with the current ETag.
    for path, method in contract.operations():
        if method in ("patch", "delete") or (method == "post" and path != "/devices"):
            assert {"$ref": "#/components/parameters/IfMatch"} in contract.operation(path, method)["parameters"], (path, method)
            assert "ETag" in contract.responses(path, method)["412"]["headers"], (path, method)


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
        for status, response in contract.responses(path, method).items():
            stream = response.get("content", {}).get("text/event-stream")
            if stream:
                for name, example in stream.get("examples", {}).items():
                    for block in example["value"].split("\n\n"):
                        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
                        if "data" in fields:
                            contract.check_event(fields["id"], fields["event"], json.loads(fields["data"]))
                            checked += 1
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
    components = contract.document["components"]
    for name, schema in components["schemas"].items():
        for example in schema.get("examples", []):
            errors = list(contract.schema_validator(name).iter_errors(example))
            assert not errors, f"example of schema {name}: {errors[0].message}"
            checked += 1
    for kind in ("parameters", "headers"):
        for name, item in components[kind].items():
            examples = [example["value"] for example in item.get("examples", {}).values()] + item["schema"].get("examples", [])
            for example in examples:
                errors = list(contract.validator("components", kind, name, "schema").iter_errors(example))
                assert not errors, f"example {example!r} of {kind} {name}: {errors[0].message}"
                checked += 1
    assert checked > 80
    # The Event schema knows every kind the stream can send, each shown by an example or the stream's.
    kinds = set(components["schemas"]["Event"]["properties"]["type"]["enum"])
    assert {"device.created", "device.updated", "device.deleted", "drift.detected", "drift.repaired",
            "worker.started", "worker.stopped", "link.up", "link.down", "resync"} <= kinds


# ---------------------------------------------------------------------------------------------------
# Live answers against the spec


def test_live_answers_match_the_spec(tund, make_tund, contract):
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
    # A daemon with a small limit, so the client is still sending when the server answers at the limit.
    small = make_tund(["--max-body-bytes", "65536"])
    response, body = call(small, contract, "post", "/devices", raw=b" " * 70000, headers=json_headers)
    assert response.status == 413 and error_code(response) == "payload_too_large"

    # Unknown devices and malformed paths, on every operation of a device.
    bodies = {"patch": {"mtu": 1400}, "post": None}
    for path, method in contract.operations():
        if "{name}" not in path:
            continue
        body = {"/devices/{name}/addresses": {"address": "10.77.0.9/24"},
                "/devices/{name}/routes": {"destination": "10.91.0.0/16"},
                "/devices/{name}/peers": {"public_key": PEER_KEY},
                "/devices/{name}/peers/{public_key}": {"endpoint": "10.99.0.3:51820"}}.get(path, bodies.get(method))
        target = path.replace("{address}", "10.77.0.9").replace("{id}", "1").replace("{public_key}", PEER_KEY_IN_PATH)
        response, answer = call(tund, contract, method, path, target.replace("{name}", "nosuch0"), body=body)
        assert response.status == 404 and error_code(response) == "device_not_found", (method, path, response)
        response, answer = call(tund, contract, method, path, target.replace("{name}", "bad%zz"), body=body)
        assert response.status == 400 and error_code(response) == "invalid_path", (method, path, response)

    # Delete, and the device is gone.
    response, body = call(tund, contract, "delete", "/devices/{name}", "/devices/spec1")
    assert response.status == 204 and body is None
    response, body = call(tund, contract, "get", "/devices/{name}", "/devices/spec1")
    assert response.status == 404
    response, body = call(tund, contract, "get", "/devices")
    assert [device["name"] for device in body["devices"]] == ["spec0", unnamed["name"]]


def test_live_changes_match_the_spec(tund, contract):
    """PATCH, the address and route operations, ETag and If-Match, against the spec."""
    device = create(tund, contract, {"name": "live0", "type": "tun", "addresses": ["10.60.0.1/24", "fd00:60::1/64"],
                                     "routes": [{"destination": "10.61.0.0/16", "gateway": "10.60.0.2"}]})
    other = create(tund, contract, {"name": "live1", "type": "tun", "addresses": ["10.62.0.1/24"],
                                    "routes": [{"destination": "10.63.0.0/16", "metric": 5}]})
    assert device["generation"] == 1 and other["generation"] == 1

    # PATCH: 200 with the next generation as ETag; the same If-Match again is stale (412, current ETag).
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body={"mtu": 1400},
                          headers=dict(JSON, **{"If-Match": '"1"'}))
    assert response.status == 200 and body["mtu"] == 1400 and body["state"]["mtu"] == 1400
    assert body["generation"] == 2 and etag(response) == '"2"'
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body={"mtu": 1300},
                          headers=dict(JSON, **{"If-Match": '"1"'}))
    assert response.status == 412 and error_code(response) == "precondition_failed" and etag(response) == '"2"'
    for tag in ("garbage", '"x"', "W/1"):
        response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body={"mtu": 1300},
                              headers=dict(JSON, **{"If-Match": tag}))
        assert response.status == 412 and etag(response) == '"2"', (tag, response)
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body={"policy": "report"},
                          headers=dict(JSON, **{"If-Match": 'W/"2"'}))
    assert response.status == 200 and body["policy"] == "report" and etag(response) == '"3"'
    # A body that changes nothing: 200, same generation. `*` matches any.
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body={},
                          headers=dict(JSON, **{"If-Match": "*"}))
    assert response.status == 200 and body["generation"] == 3 and etag(response) == '"3"'
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body={"mtu": 1400, "policy": None})
    assert response.status == 200 and body["generation"] == 3
    # Bad PATCHes: 422 with the field (rules of the stored configuration name it), 400, 415.
    for patch, field in (({"mtu": "big"}, "mtu"), ({"name": "x"}, "name"), ({"up": "no"}, "up"),
                         ({"mtu": 1000}, "mtu"), ({"policy": "ignore"}, "policy")):
        response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body=patch)
        assert response.status == 422 and body["error"]["code"] == "invalid_field" and body["error"]["field"] == field, (patch, response)
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", body=[1])
    assert response.status == 400 and error_code(response) == "invalid_request"
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", raw=b"{", headers=JSON)
    assert response.status == 400 and error_code(response) == "invalid_json"
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live0", raw=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status == 415 and error_code(response) == "unsupported_media_type"
    assert generation(tund, contract, "live0") == 3

    # Addresses: 201 with the address, its Location and the new ETag; 204 with the ETag; 404; 412; 409; 422.
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "10.60.0.5/24"}, headers=dict(JSON, **{"If-Match": '"3"'}))
    assert response.status == 201 and body == {"address": "10.60.0.5/24"} and etag(response) == '"4"'
    assert response.headers["Location"] == "/devices/live0/addresses/10.60.0.5"
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "fd00:60:0:0::5/64"})
    assert response.status == 201 and body == {"address": "fd00:60::5/64"}
    assert response.headers["Location"] == "/devices/live0/addresses/fd00:60::5"
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "10.60.0.6"})
    assert response.status == 201 and body == {"address": "10.60.0.6/32"} and etag(response) == '"6"'
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "10.60.0.7/24"}, headers=dict(JSON, **{"If-Match": '"3"'}))
    assert response.status == 412 and etag(response) == '"6"'
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "10.60.0.5/24"})
    assert response.status == 422 and body["error"]["field"] == "address", response
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "nope"})
    assert response.status == 422 and body["error"]["field"] == "address"
    # An address someone else put on the link: the kernel refuses to add it again (EEXIST, 409).
    subprocess.run(["ip", "addr", "add", "10.60.0.77/24", "dev", "live0"], check=True)
    response, body = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/live0/addresses",
                          body={"address": "10.60.0.77/24"})
    assert response.status == 409 and error_code(response) == "kernel_rejected" and body["error"]["errno"] == "EEXIST"
    response, body = call(tund, contract, "delete", "/devices/{name}/addresses/{address}", "/devices/live0/addresses/10.60.0.5",
                          headers={"If-Match": '"5"'})
    assert response.status == 412 and etag(response) == '"6"'
    response, body = call(tund, contract, "delete", "/devices/{name}/addresses/{address}", "/devices/live0/addresses/10.60.0.5",
                          headers={"If-Match": '"6"'})
    assert response.status == 204 and body is None and etag(response) == '"7"'
    response, body = call(tund, contract, "delete", "/devices/{name}/addresses/{address}",
                          "/devices/live0/addresses/fd00:60::5%2F64")
    assert response.status == 204 and etag(response) == '"8"'
    for missing in ("10.60.0.5", "10.60.0.6%2F24", "10.60.0.77", "nope"):
        response, body = call(tund, contract, "delete", "/devices/{name}/addresses/{address}", f"/devices/live0/addresses/{missing}")
        assert response.status == 404 and error_code(response) == "address_not_found", (missing, response)
    response, device = call(tund, contract, "get", "/devices/{name}", "/devices/live0")
    assert device["addresses"] == ["10.60.0.1/24", "fd00:60::1/64", "10.60.0.6/32"] and device["generation"] == 8

    # Routes: 201 with the route object, its Location and the new ETag; 204; 404 for unknown ids; 409; 422.
    response, route = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes",
                           body={"destination": "10.64.0.0/16", "gateway": "10.60.0.2", "metric": 7},
                           headers=dict(JSON, **{"If-Match": '"8"'}))
    assert response.status == 201 and etag(response) == '"9"'
    assert route == {"id": route["id"], "destination": "10.64.0.0/16", "gateway": "10.60.0.2", "metric": 7, "active": True}
    assert response.headers["Location"] == f"/devices/live0/routes/{route['id']}"
    response, onlink = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes",
                            body={"destination": "10.65.0.0/16"})
    assert response.status == 201 and onlink["gateway"] is None and onlink["metric"] is None and onlink["id"] > route["id"]
    response, body = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes",
                          body={"destination": "10.66.0.0/16"}, headers=dict(JSON, **{"If-Match": '"8"'}))
    assert response.status == 412 and etag(response) == '"10"'
    response, body = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes",
                          body={"destination": "10.63.0.0/16", "metric": 5})
    assert response.status == 409 and error_code(response) == "kernel_rejected" and body["error"]["errno"] == "EEXIST"
    response, body = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes",
                          body={"destination": "10.66.0.0/16", "gateway": "192.0.2.1"})
    assert response.status == 422 and error_code(response) == "kernel_rejected" and body["error"]["errno"] == "ENETUNREACH"
    for bad, field in (({"destination": "10.66.0.1/16"}, "destination"), ({"destination": "10.66.0.0/16", "via": "x"}, "via"),
                       ({"destination": "10.64.0.0/16", "metric": 7}, "destination")):
        response, body = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes", body=bad)
        assert response.status == 422 and body["error"]["field"] == field, (bad, response)
    response, body = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live0/routes", body="10.66.0.0/16")
    assert response.status == 400 and error_code(response) == "invalid_request"
    response, body = call(tund, contract, "delete", "/devices/{name}/routes/{id}", f"/devices/live0/routes/{route['id']}",
                          headers={"If-Match": '"9"'})
    assert response.status == 412 and etag(response) == '"10"'
    response, body = call(tund, contract, "delete", "/devices/{name}/routes/{id}", f"/devices/live0/routes/{route['id']}",
                          headers={"If-Match": '"10"'})
    assert response.status == 204 and body is None and etag(response) == '"11"'
    for missing in (route["id"], other["routes"][0]["id"], 0, 99999, "abc", "-1"):
        response, body = call(tund, contract, "delete", "/devices/{name}/routes/{id}", f"/devices/live0/routes/{missing}")
        assert response.status == 404 and error_code(response) == "route_not_found", (missing, response)
    # A device with routes can go down: they stay stored, inactive; one added while down is stored only,
    # and all come back with the link.
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live1", body={"up": False})
    assert response.status == 200 and body["up"] is False and "UP" not in body["state"]["flags"]
    assert [r["active"] for r in body["routes"]] == [False] and etag(response) == '"2"'
    response, body = call(tund, contract, "post", "/devices/{name}/routes", "/devices/live1/routes", body={"destination": "10.63.0.0/16"})
    assert response.status == 201 and body["active"] is False and etag(response) == '"3"'
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/live1", body={"up": True})
    assert response.status == 200 and [r["active"] for r in body["routes"]] == [True, True]

    response, device = call(tund, contract, "get", "/devices/{name}", "/devices/live0")
    assert [r["destination"] for r in device["routes"]] == ["10.61.0.0/16", "10.65.0.0/16"] and device["generation"] == 11
    # DELETE with a stale If-Match is refused and the device stays; with the current one it goes.
    response, _ = call(tund, contract, "delete", "/devices/{name}", "/devices/live0", headers={"If-Match": '"10"'})
    assert response.status == 412 and etag(response) == '"11"'
    response, _ = call(tund, contract, "delete", "/devices/{name}", "/devices/live0", headers={"If-Match": '"11"'})
    assert response.status == 204


def test_idempotent_creates_match_the_spec(tund, contract):
    body = {"name": "idem0", "type": "tun", "addresses": ["10.66.0.1/24"]}
    key = {"Idempotency-Key": "create-idem0-7f3a"}
    first = create(tund, contract, body, headers=key)
    response, _ = call(tund, contract, "get", "/devices/{name}", "/devices/idem0")
    assert "Idempotent-Replayed" not in response.headers
    response, again = call(tund, contract, "post", "/devices", body=body, headers=key)
    assert response.status == 201 and response.headers["Idempotent-Replayed"] == "true"
    assert response.headers["Location"] == "/devices/idem0" and etag(response) == '"1"'
    assert (again["name"], again["created_at"], again["generation"]) == (first["name"], first["created_at"], 1)
    # Defaults spelt out are the same request.
    response, _ = call(tund, contract, "post", "/devices", body=dict(body, mtu=1500, up=True), headers=key)
    assert response.status == 201 and response.headers["Idempotent-Replayed"] == "true"
    response, answer = call(tund, contract, "post", "/devices", body={"name": "idem1", "type": "tun"}, headers=key)
    assert response.status == 422 and error_code(response) == "idempotency_key_reused"
    for bad in ("has space", "x" * 256, "caf\u00e9"):
        response = tund.request("POST", "/devices", body={"name": "idem1", "type": "tun"},
                                headers={"Idempotency-Key": bad.encode("utf-8").decode("latin-1")})
        contract.check("/devices", "post", response)
        assert response.status == 400 and error_code(response) == "invalid_idempotency_key", (bad, response)
    # The body is checked before the key.
    response, answer = call(tund, contract, "post", "/devices", body={"type": "tunnel"}, headers={"Idempotency-Key": "has space"})
    assert response.status == 422 and answer["error"]["field"] == "type"
    response, _ = call(tund, contract, "delete", "/devices/{name}", "/devices/idem0")
    assert response.status == 204
    response, answer = call(tund, contract, "post", "/devices", body=body, headers=key)
    assert response.status == 422 and error_code(response) == "idempotency_key_reused"
    assert "deleted" in answer["error"]["message"]
    response, device = call(tund, contract, "post", "/devices", body=body, headers={"Idempotency-Key": "x" * 255})
    assert response.status == 201 and "Idempotent-Replayed" not in response.headers


def test_event_stream_matches_the_spec(tund, contract):
    """Events are `Event`s, numbered by their SSE ids, for creates, changes, drift, link state and deletes."""
    with EventStream(tund, contract) as events:
        create(tund, contract, {"name": "ev0", "type": "tun", "mtu": 1400, "addresses": ["10.67.0.1/24"]})
        seen = events.until(lambda event: event[1] == "worker.started")
        assert [(kind, data["device"]) for _, kind, data in seen] == [("device.created", "ev0"), ("worker.started", "ev0")]
        assert seen[0][2]["detail"] == {"generation": "1"} and events.retry == "1000"
        response, _ = call(tund, contract, "patch", "/devices/{name}", "/devices/ev0", body={"mtu": 1300})
        _, kind, data = events.next_event()
        assert kind == "device.updated" and data["detail"] == {"change": "updated", "generation": "2"}
        response, _ = call(tund, contract, "post", "/devices/{name}/addresses", "/devices/ev0/addresses", body={"address": "10.67.0.2/24"})
        assert events.next_event()[2]["detail"] == {"change": "address added", "generation": "3"}
        response, _ = call(tund, contract, "post", "/devices/{name}/routes", "/devices/ev0/routes", body={"destination": "10.68.0.0/16"})
        assert events.next_event()[2]["detail"] == {"change": "route added", "generation": "4"}

        # Drift, by someone else: detected and repaired (policy repair), and the device shows it.
        subprocess.run(["ip", "link", "set", "ev0", "mtu", "1500"], check=True)
        seen = events.until(lambda event: event[1] == "drift.repaired")
        detected = [data for _, kind, data in seen if kind == "drift.detected"]
        assert detected and "mtu 1500, stored 1300" in detected[0]["detail"]["findings"]
        assert seen[-1][2]["detail"]["policy"] == "repair"
        response, device = call(tund, contract, "get", "/devices/{name}", "/devices/ev0")
        assert device["drift"]["repaired"] >= 1 and device["drift"]["last"]["repaired"] is True
        assert device["generation"] == 4  # a repair restores the stored state; it is not a change of it
        response, stats = call(tund, contract, "get", "/devices/{name}/stats", "/devices/ev0/stats")
        assert stats["drift"]["repaired"] >= 1

        # Policy report: detected, not repaired, and the link state changes are announced.
        response, _ = call(tund, contract, "patch", "/devices/{name}", "/devices/ev0", body={"policy": "report"})
        events.until(lambda event: event[1] == "device.updated")
        subprocess.run(["ip", "link", "set", "ev0", "down"], check=True)
        seen = events.until(lambda event: event[1] == "drift.detected")
        assert ("link.down", "ev0") in [(kind, data["device"]) for _, kind, data in seen]
        assert seen[-1][2]["detail"]["policy"] == "report"
        response, device = call(tund, contract, "get", "/devices/{name}", "/devices/ev0")
        assert device["drift"]["last"]["repaired"] is False and device["drift"]["last"]["error"] is None
        subprocess.run(["ip", "link", "set", "ev0", "up"], check=True)
        events.until(lambda event: event[1] == "link.up")

        response, _ = call(tund, contract, "delete", "/devices/{name}", "/devices/ev0")
        seen = events.until(lambda event: event[1] == "device.deleted")
        assert [kind for _, kind, _ in seen][-2:] == ["worker.stopped", "device.deleted"]
        last = int(seen[-1][0])

    # Reconnecting: the missed events again, by header or by query argument, in order.
    for replay in ({"last_event_id": 0}, {"query": "last_event_id=2"}):
        with EventStream(tund, contract, **replay) as events:
            seen = events.until(lambda event: int(event[0]) == last, limit=200)
            ids = [int(event_id) for event_id, _, _ in seen]
            first = 1 if "last_event_id" in replay else 3
            assert ids == list(range(first, last + 1)), ids
            assert events.comments[:1] == [": tund event stream"]
    # An id past everything held: only new events.
    with EventStream(tund, contract, last_event_id=last) as events:
        create(tund, contract, {"name": "ev1", "type": "tun"})
        seen = events.until(lambda event: event[1] == "device.created" and event[2]["device"] == "ev1")
        assert all(int(event_id) > last for event_id, _, _ in seen), seen
        # Every mode is one the spec knows, in events and in the counters.
        wireguard_device(tund, contract, "ev2", 51900)
        seen = events.until(lambda event: event[1] == "worker.started" and event[2]["device"] == "ev2")
        assert seen[-1][2]["detail"] == {"mode": "wireguard"}
        response, _ = call(tund, contract, "post", "/devices/{name}/peers", "/devices/ev2/peers",
                           body={"public_key": PEER_KEY, "endpoint": "127.0.0.1:51901", "allowed_ips": ["10.66.0.2/32"]})
        assert response.status == 201
        seen = events.until(lambda event: event[1] == "device.updated" and event[2]["device"] == "ev2")
        assert seen[-1][2]["detail"]["change"] == "peer added"
        # Peers belong to wireguard workers: on another device the request conflicts with its state.
        response, _ = call(tund, contract, "post", "/devices/{name}/peers", "/devices/ev1/peers", body={"public_key": PEER_KEY})
        assert response.status == 409 and error_code(response) == "not_wireguard"
        # A declared set that changes the device in place.
        response, _ = call(tund, contract, "put", "/devices", body={"devices": [
            {"name": "ev1", "type": "tun", "mtu": 1300},
            {"name": "ev2", "type": "tun", "worker": {"mode": "wireguard", "listen_port": 51900, "peers": [
                {"public_key": PEER_KEY, "endpoint": "127.0.0.1:51901", "allowed_ips": ["10.66.0.2/32"]}]}}]})
        assert response.status == 200
        seen = events.until(lambda event: event[1] == "device.updated" and event[2]["device"] == "ev1")
        assert seen[-1][2]["detail"]["change"] == "apply"
    response, stats = call(tund, contract, "get", "/devices/{name}/stats", "/devices/ev2/stats")
    assert response.status == 200 and stats["worker"]["mode"] == "wireguard" and stats["worker"]["running"] is True
    assert [peer["public_key"] for peer in stats["peers"]] == [PEER_KEY]


def test_metrics_and_capture_match_the_spec(tund, contract):
    create(tund, contract, {"name": "obs0", "type": "tun", "addresses": ["10.69.0.1/24"]})
    # Metrics: every family the daemon exposes is one the spec names.
    response, text = call(tund, contract, "get", "/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    described = contract.operation("/metrics", "get")["description"]
    families = [line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE ")]
    assert "tund_devices" in families and "tund_http_requests_total" in families
    for family in families:
        assert f"`{family}`" in described, f"metric family {family} is not described in the spec"
    # Capture: a pcap file header, at least, then the end at the timeout.
    response, body = call(tund, contract, "get", "/devices/{name}/capture", "/devices/obs0/capture?count=1&timeout=1")
    assert response.status == 200 and body[:4] == (0xA1B2C3D4).to_bytes(4, "little") and len(body) >= 24
    assert response.headers["Content-Disposition"] == 'attachment; filename="obs0-1.pcap"'
    for query, field in (("count=0", "count"), ("count=abc", "count"), ("count=100001", "count"),
                         ("timeout=0", "timeout"), ("timeout=3601", "timeout"), ("timeout=1.5", "timeout")):
        response, answer = call(tund, contract, "get", "/devices/{name}/capture", f"/devices/obs0/capture?{query}")
        assert response.status == 422 and answer["error"]["field"] == field, (query, response)
        parameter = next(p for p in contract.parameters("/devices/{name}/capture", "get") if p["name"] == field)
        value = query.split("=")[1]
        assert not Draft202012Validator(parameter["schema"]).is_valid(int(value) if value.isdigit() else value)


def test_bearer_token_matches_the_spec(make_tund, contract, tmp_path):
    token = "s3cret-token-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    daemon = make_tund(["--token-file", str(token_file)], start=False)
    daemon.start(wait_ready=False)
    authorized = {"Authorization": f"Bearer {token}"}
    for _ in range(150):
        try:
            if daemon.request("GET", "/readyz", headers=authorized).status == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    response, body = call(daemon, contract, "get", "/healthz")
    assert response.status == 200
    response, body = call(daemon, contract, "get", "/readyz")
    assert response.status == 200 and body == {"status": "ready"}
    for path, method in contract.operations():
        if path in ("/healthz", "/readyz"):
            continue
        target = path.replace("{name}", "tun0").replace("{address}", "10.10.0.1").replace("{id}", "1")
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": token}):
            response, answer = call(daemon, contract, method, path, target, body={} if method in ("post", "patch") else None,
                                    headers=dict(headers, **JSON))
            assert response.status == 401 and answer["error"]["code"] == "unauthorized", (method, path, headers, response)
    response, body = call(daemon, contract, "post", "/devices", body={"name": "tok0", "type": "tun"}, headers=authorized)
    assert response.status == 201
    response, body = call(daemon, contract, "get", "/devices", headers=authorized)
    assert response.status == 200 and [device["name"] for device in body["devices"]] == ["tok0"]


def test_device_limit_matches_the_spec(make_tund, contract):
    daemon = make_tund(["--max-devices", "1"])
    create(daemon, contract, {"name": "lim0", "type": "tun"})
    response, body = call(daemon, contract, "post", "/devices", body={"name": "lim1", "type": "tun"})
    assert response.status == 409 and error_code(response) == "device_limit_reached"
    response, body = call(daemon, contract, "post", "/devices", body={"name": "lim0", "type": "tun"})
    assert response.status == 409 and error_code(response) == "device_exists"


def test_counters_after_traffic_match_the_spec(tund, contract):
    create(tund, contract, {"name": "spec4", "type": "tun", "addresses": ["10.82.0.1/24", "fd00:82::1/64"]})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(3):
            sender.sendto(b"x" * 100, ("10.82.0.2", 9))
    # The worker publishes its counters once per batch: wait (bounded) until it has read the three.
    for _ in range(50):
        response, stats = call(tund, contract, "get", "/devices/{name}/stats", "/devices/spec4/stats")
        assert response.status == 200
        if stats["worker"]["protocols"]["udp"] >= 3:
            break
        time.sleep(0.1)
    worker = stats["worker"]
    assert worker["protocols"]["udp"] >= 3 and worker["protocols"]["ipv4"] >= 3
    assert worker["last_packet_at"] is not None
    protocols = worker["protocols"]
    assert protocols["arp"] + protocols["icmp"] + protocols["icmpv6"] + protocols["tcp"] + protocols["udp"] \
        + protocols["other"] == worker["packets_read"] - worker["dropped"]
    assert stats["kernel"]["tx_packets"] >= 3

    # The other worker modes: a responder ignoring UDP, and two tunnels carrying a packet between them.
    create(tund, contract, {"name": "resp0", "type": "tun", "addresses": ["10.205.0.1/24"], "worker": {"mode": "responder"}})
    create(tund, contract, {"name": "tnl0", "type": "tun", "addresses": ["10.206.0.1/24"],
                            "worker": {"mode": "tunnel", "local": "127.0.0.1:7300", "remote": "127.0.0.1:7301"}})
    response, tunnel = call(tund, contract, "get", "/devices/{name}", "/devices/tnl0")
    assert tunnel["worker"] == {"mode": "tunnel", "local": "127.0.0.1:7300", "remote": "127.0.0.1:7301", "running": True}
    create(tund, contract, {"name": "tnl1", "type": "tun", "addresses": ["10.207.0.1/24"],
                            "worker": {"mode": "tunnel", "local": "127.0.0.1:7301", "remote": "127.0.0.1:7300"}})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(3):
            sender.sendto(b"y" * 50, ("10.205.0.2", 9))
            sender.sendto(b"z" * 50, ("10.206.0.2", 9))
    for _ in range(50):
        response, responder = call(tund, contract, "get", "/devices/{name}/stats", "/devices/resp0/stats")
        response, sender_side = call(tund, contract, "get", "/devices/{name}/stats", "/devices/tnl0/stats")
        response, receiver_side = call(tund, contract, "get", "/devices/{name}/stats", "/devices/tnl1/stats")
        if (responder["worker"]["dropped_reasons"]["ignored"] >= 3 and sender_side["worker"]["peer"]["packets_sent"] >= 3
                and receiver_side["worker"]["peer"]["packets_received"] >= 3):
            break
        time.sleep(0.1)
    assert responder["worker"]["mode"] == "responder" and responder["worker"]["dropped_reasons"]["ignored"] >= 3
    assert sender_side["worker"]["peer"]["packets_sent"] >= 3, sender_side
    assert receiver_side["worker"]["peer"]["packets_received"] >= 3 and receiver_side["worker"]["packets_written"] >= 3
    # A tunnel's local port can be bound once.
    response, answer = call(tund, contract, "post", "/devices", body={
        "name": "tnl2", "type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:7300", "remote": "127.0.0.1:7302"}})
    assert response.status == 409 and answer["error"]["errno"] == "EADDRINUSE"
    response, answer = call(tund, contract, "patch", "/devices/{name}", "/devices/resp0", body={
        "worker": {"mode": "tunnel", "local": "127.0.0.1:7301", "remote": "127.0.0.1:7302"}})
    assert response.status == 409 and answer["error"]["errno"] == "EADDRINUSE"
    response, device = call(tund, contract, "get", "/devices/{name}", "/devices/resp0")
    assert device["worker"] == {"mode": "responder", "running": True} and device["generation"] == 1


def request_examples(spec, path, method):
    return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"]


# A WireGuard peer key (any 32 bytes in canonical base64), and as a path segment.
PEER_KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PEER_KEY_IN_PATH = PEER_KEY.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def wireguard_device(tund, contract, name, port):
    """A tun device in worker mode wireguard, for the peer operations."""
    return create(tund, contract, {"name": name, "type": "tun", "worker": {"mode": "wireguard", "listen_port": port}})


def test_request_examples_are_accepted(tund, contract, spec):
    examples = request_examples(spec, "/devices", "post")
    assert {"tun", "tap", "minimal"} <= set(examples)
    for name, example in examples.items():
        response, device = call(tund, contract, "post", "/devices", body=example["value"])
        assert response.status == 201, f"example {name}: {response!r}"
        if name != "tun":
            response, _ = call(tund, contract, "delete", "/devices/{name}", f"/devices/{device['name']}")
            assert response.status == 204
    # The examples of the other operations, on the device of the `tun` example.
    name = examples["tun"]["value"]["name"]
    wireguard = wireguard_device(tund, contract, "examplewg0", 51830)["name"]
    # A peer's key from the POST example, so that the PATCH example has a peer to change.
    peer_key = request_examples(spec, "/devices/{name}/peers", "post")["peer"]["value"]["public_key"]
    operations = sorted(contract.operations(), key=lambda operation: operation[1] != "post")
    for path, method in operations:
        if path == "/devices" or not contract.operation(path, method).get("requestBody"):
            continue
        device = wireguard if "/peers" in path else name
        target = path.replace("{name}", device).replace("{public_key}", peer_key.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"))
        for example_name, example in request_examples(spec, path, method).items():
            response, answer = call(tund, contract, method, path, target, body=example["value"])
            assert response.status < 300, f"example {example_name} of {method.upper()} {path}: {response!r}"
    response, _ = call(tund, contract, "delete", "/devices/{name}", f"/devices/{name}")
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
    ({"type": "tun", "routes": [{}]}, "routes[0].destination"),
    ({"type": "tun", "routes": [{"destination": "10.1.0.0/16", "via": "10.0.0.1"}]}, "routes[0].via"),
    ({"type": "tun", "routes": [{"destination": "10.1.0.0/16", "gateway": "gw"}]}, "routes[0].gateway"),
    ({"type": "tun", "routes": [{"destination": "10.1.0.0/16", "metric": 4294967296}]}, "routes[0].metric"),
    ({"type": "tun", "routes": ["10.1.0.0/16"]}, "routes[0]"),
    ({"type": "tun", "worker": {"mode": "bogus"}}, "worker.mode"),
    ({"type": "tun", "worker": {"mode": "tunnel"}}, "worker.remote"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:7000"}}, "worker.remote"),
    ({"type": "tun", "worker": {"mode": "tunnel", "remote": "127.0.0.1:7000"}}, "worker.local"),
    ({"type": "tun", "worker": {"mode": "count", "local": "127.0.0.1:7000", "remote": "127.0.0.1:7001"}}, "worker.local"),
    ({"type": "tun", "worker": {"local": "127.0.0.1:7000", "remote": "127.0.0.1:7001"}}, "worker.local"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1", "remote": "127.0.0.1:7001"}}, "worker.local"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:0", "remote": "127.0.0.1:7001"}}, "worker.local"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:7000", "remote": "127.0.0.1:65536"}}, "worker.remote"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:7000", "remote": "::1:7001"}}, "worker.remote"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:7000", "remote": "[::1]:7001"}}, "worker.remote"),
    ({"type": "tun", "worker": {"mode": "tunnel", "local": "[::1]:7000", "remote": "127.0.0.1:7001"}}, "worker.remote"),
    ({"type": "tun", "worker": {"threads": 2}}, "worker.threads"),
    ({"type": "tun", "worker": "count"}, "worker"),
    ({"type": "tun", "ifname": "eth0"}, "name"),
]

# Bodies that DeviceCreate accepts at its edges; the daemon must create them.
ACCEPTED = [
    {"type": "tun", "name": "a" * 15},
    {"type": "tun", "name": "a" * 63, "ifname": "b" * 15},
    {"type": "tun", "name": "x.y_z-1", "mtu": 68, "queues": 64},
    {"type": "tun", "mtu": None, "up": None, "owner": None, "group": None, "queues": None, "mac": None,
     "addresses": None, "routes": None, "worker": None, "name": None},
    {"type": "tun", "mtu": 65535, "owner": 4294967294, "group": 0, "worker": {"mode": None}},
    {"type": "tun", "up": False, "routes": []},
    {"type": "tun", "up": False, "routes": [{"destination": "10.84.0.0/16"}]},
    {"type": "tun", "mtu": 1280, "addresses": ["fd00:83::1/64", "10.83.0.1"]},
    {"type": "tap", "mac": "0A:BC:DE:F0:12:34", "worker": {"mode": "count"}},
    {"type": "tun", "worker": {}},
    {"type": "tun", "worker": {"mode": "echo", "local": None, "remote": None}},
    {"type": "tap", "worker": {"mode": "responder"}},
    {"type": "tun", "worker": {"mode": "tunnel", "local": "127.0.0.1:7000", "remote": "127.0.0.1:07001"}},
    {"type": "tun", "worker": {"mode": "tunnel", "local": "[::1]:65535", "remote": "[::1]:1"}},
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


# Bodies that the other request schemas reject, with the field the daemon names, and edge bodies they accept.
REJECTED_PATCHES = [
    ({"mtu": 67}, "mtu"),
    ({"mtu": 65536}, "mtu"),
    ({"mtu": "1500"}, "mtu"),
    ({"mtu": 1500.5}, "mtu"),
    ({"up": "no"}, "up"),
    ({"name": "x"}, "name"),
    ({"type": "tap"}, "type"),
    ({"queues": 2}, "queues"),
    ({"addresses": []}, "addresses"),
    ({"routes": []}, "routes"),
    ({"worker": "count"}, "worker"),
    ({"worker": {"mode": "bogus"}}, "worker.mode"),
    ({"worker": {"mode": "tunnel"}}, "worker.remote"),
    ({"worker": {"mode": "echo", "local": "127.0.0.1:7000", "remote": "127.0.0.1:7001"}}, "worker.local"),
    ({"worker": {"threads": 2}}, "worker.threads"),
    ({"policy": "ignore"}, "policy"),
    ({"policy": 1}, "policy"),
]
ACCEPTED_PATCHES = [
    {},
    {"mtu": None, "up": None, "worker": None, "policy": None},
    {"mtu": 68},
    {"mtu": 65535, "worker": {"mode": None}},
    {"up": False, "policy": "report"},
    {"up": True, "mtu": 1500, "worker": {"mode": "count"}, "policy": "repair"},
    {"worker": {"mode": "responder"}},
    {"worker": {"mode": "tunnel", "local": "127.0.0.1:7200", "remote": "127.0.0.1:7201"}},
    {"worker": {"mode": "tunnel", "local": "127.0.0.1:7202", "remote": "127.0.0.1:7201"}},
    {"worker": {}},
]
REJECTED_ADDRESSES = [
    ({}, "address"),
    ({"address": None}, "address"),
    ({"address": 5}, "address"),
    ({"address": "nope"}, "address"),
    ({"address": "10.0.0.1/33"}, "address"),
    ({"address": "10.0.0.1/024"}, "address"),
    ({"address": "fd00::1/129"}, "address"),
    ({"addr": "10.0.0.1"}, "addr"),
    ({"address": "10.0.0.1", "label": "x"}, "label"),
]
ACCEPTED_ADDRESSES = [{"address": "10.86.0.2"}, {"address": "10.87.0.1/16"}, {"address": "fd00:86::1/64"}]
REJECTED_ROUTES = [
    ({}, "destination"),
    ({"destination": None}, "destination"),
    ({"destination": 5}, "destination"),
    ({"destination": "x"}, "destination"),
    ({"destination": "10.1.0.0/33"}, "destination"),
    ({"destination": "10.1.0.0/16", "via": "10.0.0.1"}, "via"),
    ({"destination": "10.1.0.0/16", "gateway": "gw"}, "gateway"),
    ({"destination": "10.1.0.0/16", "gateway": 5}, "gateway"),
    ({"destination": "10.1.0.0/16", "metric": -1}, "metric"),
    ({"destination": "10.1.0.0/16", "metric": 4294967296}, "metric"),
    ({"destination": "10.1.0.0/16", "metric": "5"}, "metric"),
]
ACCEPTED_ROUTES = [
    {"destination": "10.88.0.0/16"},
    {"destination": "10.89.0.0/16", "gateway": "10.86.0.9", "metric": 0},
    {"destination": "10.90.0.0/16", "gateway": None, "metric": None},
    {"destination": "10.90.0.0/16", "metric": 4294967295},
    {"destination": "10.86.0.77"},
    {"destination": "fd00:88::/64"},
]


def test_other_request_schemas_and_daemon_agree(tund, contract):
    create(tund, contract, {"name": "agree0", "type": "tun", "addresses": ["10.86.0.1/24"]})
    for pattern, schema_name, rejected, accepted in (
            ("/devices/{name}", "DevicePatch", REJECTED_PATCHES, ACCEPTED_PATCHES),
            ("/devices/{name}/addresses", "AddressCreate", REJECTED_ADDRESSES, ACCEPTED_ADDRESSES),
            ("/devices/{name}/routes", "RouteCreate", REJECTED_ROUTES, ACCEPTED_ROUTES)):
        method = "patch" if pattern == "/devices/{name}" else "post"
        target = pattern.replace("{name}", "agree0")
        schema = contract.schema_validator(schema_name)
        for body, field in rejected:
            assert not schema.is_valid(body), f"{schema_name} accepts {body}, which the daemon rejects"
            before = generation(tund, contract, "agree0")
            response, answer = call(tund, contract, method, pattern, target, body=body)
            assert response.status == 422, f"{method.upper()} {body}: {response!r}"
            assert (answer["error"]["code"], answer["error"].get("field")) == ("invalid_field", field), f"{body}: {response!r}"
            assert generation(tund, contract, "agree0") == before
        for body in accepted:
            errors = list(schema.iter_errors(body))
            assert not errors, f"{schema_name} rejects {body}: {errors[0].message}"
            response, answer = call(tund, contract, method, pattern, target, body=body)
            assert response.status in (200, 201), f"{method.upper()} {body}: {response!r}"
            if pattern == "/devices/{name}/addresses":
                address = answer["address"].replace("/", "%2F")
                response, _ = call(tund, contract, "delete", "/devices/{name}/addresses/{address}", f"{target}/{address}")
                assert response.status == 204, response
            elif pattern == "/devices/{name}/routes":
                response, _ = call(tund, contract, "delete", "/devices/{name}/routes/{id}", f"{target}/{answer['id']}")
                assert response.status == 204, response


# ---------------------------------------------------------------------------------------------------
# The spec's operations are exactly the daemon's


def test_every_operation_in_the_spec_is_served(tund, contract, spec):
    reach0 = create(tund, contract, {"name": "reach0", "type": "tun", "addresses": ["10.10.0.1/24", "10.10.0.9/24"],
                                     "routes": [{"destination": "10.40.0.0/16"}]})
    create(tund, contract, {"name": "reach1", "type": "tun"})
    reachwg = wireguard_device(tund, contract, "reachwg", 51831)
    values = {"{address}": "10.10.0.9", "{id}": str(reach0["routes"][0]["id"]), "{public_key}": PEER_KEY_IN_PATH}
    # DELETEs last: the device's own on a device of its own, the others on what reach0 was made with.
    operations = sorted(contract.operations(), key=lambda operation: operation[1] == "delete")
    for path, method in operations:
        device = "reach1" if (method, path) == ("delete", "/devices/{name}") else "reach0"
        target = path.replace("{name}", reachwg["name"] if "/peers" in path else device)
        for placeholder, value in values.items():
            target = target.replace(placeholder, value)
        if path == "/events":
            # A stream that never ends: check its status and media type, read nothing, close.
            with EventStream(tund, contract, timeout=5) as events:
                assert events.response.status == 200
            continue
        if path == "/devices/{name}/capture":
            target += "?count=1&timeout=1"  # a stream that ends within a second
        if (method, path) == ("put", "/devices"):
            target += "?dry_run=true"  # any declared set deletes the devices it leaves out
        body = None
        if contract.operation(path, method).get("requestBody"):
            body = next(iter(request_examples(spec, path, method).values()))["value"]
        response, answer = call(tund, contract, method, path, target, body=body)
        assert response.status != 405, f"{method.upper()} {target}: {response!r}"
        assert not (response.status == 404 and answer["error"]["code"] == "not_found"), f"{method.upper()} {target}: {response!r}"
        assert response.status < 400, f"{method.upper()} {target}: {response!r}"


def test_each_path_serves_exactly_the_methods_in_the_spec(tund, contract, spec):
    create(tund, contract, {"name": "reach0", "type": "tun"})
    for path, item in spec["paths"].items():
        declared = {method.upper() for method in HTTP_METHODS if method in item}
        target = path.replace("{name}", "reach0").replace("{address}", "10.10.0.9").replace("{id}", "1")
        probe = next(method for method in ("PUT", "PATCH", "POST", "DELETE", "GET") if method not in declared)
        response = tund.request(probe, target, body={"type": "tun"})
        assert response.status == 405 and error_code(response) == "method_not_allowed", f"{probe} {target}: {response!r}"
        allowed = {method.strip() for method in response.headers.get("Allow", "").split(",") if method.strip()}
        assert allowed == declared, f"{path}: the daemon serves {sorted(allowed)}, the spec lists {sorted(declared)}"


def test_if_match_lists_match_the_spec(tund, contract):
    """Regression: the spec said only the first tag of a list counts, while tund (rightly, RFC 9110
    13.1.1) takes any tag that matches. The spec now says what the daemon does."""
    description = contract.document["components"]["parameters"]["IfMatch"]["description"]
    assert "any of" in description and "Only the first tag" not in description
    assert "Only the first tag" not in contract.document["info"]["description"]
    create(tund, contract, {"name": "im0", "type": "tun"})
    response, body = call(tund, contract, "patch", "/devices/{name}", "/devices/im0", body={"mtu": 1400},
                          headers=dict(JSON, **{"If-Match": '"201", "1"'}))
    assert response.status == 200 and body["generation"] == 2
