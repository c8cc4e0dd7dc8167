"""Bad input gets a clear 4xx JSON error with a stable code, and changes nothing."""
import pytest

from conftest import link_names


def snapshot(tund):
    return (sorted(link_names()), tund.get("/devices").json())


def post_raw(tund, raw, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return tund.request("POST", "/devices", raw=raw, headers=headers)


BAD_BODIES = [
    ("invalid JSON", b'{"name":', 400, "invalid_json", None),
    ("empty body", b"", 400, "invalid_json", None),
    ("not an object", b'["tun0"]', 400, "invalid_request", None),
    ("name of 16 bytes", b'{"name":"abcdefghijklmnop","type":"tun"}', 422, "invalid_field", "name"),
    ("name with slash", b'{"name":"a/b","type":"tun"}', 422, "invalid_field", "name"),
    ("name with space", b'{"name":"a b","type":"tun"}', 422, "invalid_field", "name"),
    ("name dot-dot", b'{"name":"..","type":"tun"}', 422, "invalid_field", "name"),
    ("name non-ASCII", '{"name":"tün0","type":"tun"}'.encode(), 422, "invalid_field", "name"),
    ("empty name", b'{"name":"","type":"tun"}', 422, "invalid_field", "name"),
    ("bad CIDR length", b'{"name":"x1","type":"tun","addresses":["10.0.0.1/33"]}', 422, "invalid_field", "addresses[0]"),
    ("bad CIDR address", b'{"name":"x1","type":"tun","addresses":["10.0.0.300/24"]}', 422, "invalid_field", "addresses[0]"),
    ("IPv4-mapped IPv6", b'{"name":"x1","type":"tun","addresses":["::ffff:10.0.0.1/120"]}', 422, "invalid_field", "addresses[0]"),
    ("duplicate address", b'{"name":"x1","type":"tun","addresses":["10.0.0.1/24","10.0.0.1/16"]}', 422, "invalid_field", "addresses[1]"),
    ("route with host bits", b'{"name":"x1","type":"tun","routes":[{"destination":"10.1.2.3/16"}]}', 422, "invalid_field", "routes[0].destination"),
    ("route family mismatch", b'{"name":"x1","type":"tun","routes":[{"destination":"10.1.0.0/16","gateway":"fd00::1"}]}', 422, "invalid_field", "routes[0].gateway"),
    ("unknown type", b'{"name":"x2","type":"tux"}', 422, "invalid_field", "type"),
    ("missing type", b'{"name":"x2"}', 422, "invalid_field", "type"),
    ("MTU too large", b'{"name":"x3","type":"tun","mtu":70000}', 422, "invalid_field", "mtu"),
    ("MTU zero", b'{"name":"x3","type":"tun","mtu":0}', 422, "invalid_field", "mtu"),
    ("MTU negative", b'{"name":"x3","type":"tun","mtu":-1}', 422, "invalid_field", "mtu"),
    ("MTU huge number", b'{"name":"x3","type":"tun","mtu":1e300}', 422, "invalid_field", "mtu"),
    ("MTU as string", b'{"name":"x3","type":"tun","mtu":"1400"}', 422, "invalid_field", "mtu"),
    ("IPv6 below 1280", b'{"name":"x3","type":"tun","mtu":1000,"addresses":["fd00::1/64"]}', 422, "invalid_field", "addresses[0]"),
    ("queues zero", b'{"name":"x4","type":"tun","queues":0}', 422, "invalid_field", "queues"),
    ("MAC on tun", b'{"name":"x5","type":"tun","mac":"02:00:00:00:00:01"}', 422, "invalid_field", "mac"),
    ("multicast MAC", b'{"name":"x5","type":"tap","mac":"01:00:5e:00:00:01"}', 422, "invalid_field", "mac"),
    ("unknown field", b'{"name":"x6","type":"tun","mut":1400}', 422, "invalid_field", "mut"),
    ("unknown worker mode", b'{"name":"x6","type":"tun","worker":{"mode":"teleport"}}', 422, "invalid_field", "worker.mode"),
]


@pytest.mark.parametrize("label,raw,status,code,field", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_body_is_rejected_and_changes_nothing(tund, label, raw, status, code, field):
    assert tund.post("/devices", {"name": "keep0", "type": "tap"}).status == 201
    before = snapshot(tund)
    response = post_raw(tund, raw)
    assert response.status == status, response
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    if field:
        assert error["field"] == field
    assert snapshot(tund) == before


def test_duplicate_name_is_a_conflict(tund):
    assert tund.post("/devices", {"name": "tap0", "type": "tap"}).status == 201
    before = snapshot(tund)
    response = tund.post("/devices", {"name": "tap0", "type": "tun"})
    assert response.status == 409 and response.json()["error"]["code"] == "device_exists"
    assert snapshot(tund) == before


def test_body_over_the_limit(make_tund):
    tund = make_tund(["--max-body-bytes", "1024"])
    before = snapshot(tund)
    big = b'{"type":"tun","name":"big0","addresses":[' + b",".join([b'"10.0.0.1/24"'] * 200) + b"]}"
    response = post_raw(tund, big)
    assert response.status == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert snapshot(tund) == before
    assert tund.get("/healthz").status == 200


def test_chunked_body_over_the_limit(make_tund):
    tund = make_tund(["--max-body-bytes", "1024"])
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", tund.port, timeout=10)
    chunks = (b'{"type":"tun","x":"' + b"a" * 500 + b'"}' for _ in range(5))
    connection.request("POST", "/devices", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert tund.get("/devices").json()["devices"] == []


def test_wrong_content_type(tund):
    response = post_raw(tund, b'{"type":"tun"}', content_type="text/plain")
    assert response.status == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    response = post_raw(tund, b'{"type":"tun"}', content_type=None)
    assert response.status == 415
    assert link_names("tun") == set()


def test_json_content_type_with_charset_is_accepted(tund):
    response = post_raw(tund, b'{"type":"tun","name":"cs0"}', content_type="application/json; charset=utf-8")
    assert response.status == 201, response


def test_unknown_path_and_method(tund):
    response = tund.get("/nothing")
    assert response.status == 404 and response.json()["error"]["code"] == "not_found"
    response = tund.request("PATCH", "/devices")
    assert response.status == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST", "PUT"}
    response = tund.request("POST", "/devices/x/stats")
    assert response.status == 405 and response.headers["Allow"] == "GET"


def test_percent_encoded_slash_stays_inside_the_name(tund):
    assert tund.post("/devices", {"name": "tun0", "type": "tun"}).status == 201
    # "tun0%2Fstats" is one segment, the name "tun0/stats": no such device, not the stats endpoint.
    response = tund.get("/devices/tun0%2Fstats")
    assert response.status == 404 and response.json()["error"]["code"] == "device_not_found"
    assert tund.get("/devices/%74un0").status == 200
    assert tund.get("/devices/tun0%zz").status == 400


def test_daemon_keeps_serving_after_bad_input(tund):
    for raw in (b"{", b"\x00\xff", b'{"type":' * 1000, b"[" * 5000):
        assert 400 <= post_raw(tund, raw).status < 500
    assert tund.get("/healthz").status == 200
    assert tund.post("/devices", {"name": "ok0", "type": "tun"}).status == 201
