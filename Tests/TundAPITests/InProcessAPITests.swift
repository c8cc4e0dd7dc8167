import Logging
import Testing
import TundCore
import TundFakes
import TundHTTP
import TundJSON
@testable import TundAPI

/// The API driven in process through its request-to-response function, over an in-memory kernel and
/// store: no socket, no root. The end-to-end suite covers the same ground against the real binary.
@Suite struct InProcessAPITests {
    static let token = "in-process-token-0123456789"
    let links = FakeLinks()
    let store = FakeStore()

    struct Answer {
        let status: Int
        let headers: [(String, String)]
        let json: JSONValue?

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func api(token: String? = Self.token, restored: Bool = true) throws -> TundAPI {
        let manager = TestPlane.manager(links: links, store: store)
        if restored { try manager.restore() }
        return TundAPI(fleet: DeviceFleet(home: manager, opener: nil), logger: Logger(label: "test"), token: token)
    }

    func send(_ api: TundAPI, _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
              authorized: Bool = true) -> Answer {
        var sent = headers
        if authorized { sent["authorization"] = "Bearer \(Self.token)" }
        if body != nil { sent["content-type"] = sent["content-type"] ?? "application/json" }
        let response = api.respond(to: HTTPRequest(method: method, path: path, headers: HTTPHeaders(lines: sent.map { ($0.key, $0.value) }), body: Array((body ?? "").utf8)))
        return Answer(status: response.status, headers: response.headers, json: try? JSONValue.parse(response.body))
    }

    @Test func everythingButTheProbesNeedsTheToken() throws {
        let api = try api()
        #expect(send(api, "GET", "/healthz", authorized: false).status == 200)
        #expect(send(api, "GET", "/readyz", authorized: false).status == 200)
        let refused = send(api, "GET", "/devices", authorized: false)
        #expect(refused.status == 401 && refused.json?["error"]?["code"] == .string("unauthorized"))
        #expect(refused.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        #expect(send(api, "GET", "/metrics", authorized: false).status == 401 && send(api, "GET", "/events", authorized: false).status == 401)
        #expect(send(api, "GET", "/devices", headers: ["authorization": "Bearer wrong-token-0123456789"], authorized: false).status == 401)
        #expect(send(api, "GET", "/devices").status == 200)
    }

    @Test func createThenChangeWithETagAndIfMatch() throws {
        let api = try api()
        let created = send(api, "POST", "/devices", body: #"{"name":"tun0","type":"tun","addresses":["10.10.0.1/24"]}"#)
        #expect(created.status == 201 && created.header("Location") == "/devices/tun0" && created.header("ETag") == "\"1\"")
        #expect(links.table["tun0"]?.addresses.map(\.description) == ["10.10.0.1/24"])
        let stale = send(api, "PATCH", "/devices/tun0", body: #"{"mtu":1400}"#, headers: ["if-match": "\"7\""])
        #expect(stale.status == 412 && stale.header("ETag") == "\"1\"" && stale.json?["error"]?["code"] == .string("precondition_failed"))
        let changed = send(api, "PATCH", "/devices/tun0", body: #"{"mtu":1400}"#, headers: ["if-match": "\"1\""])
        #expect(changed.status == 200 && changed.header("ETag") == "\"2\"" && changed.json?["mtu"] == .integer(1400))
        #expect(links.table["tun0"]?.state.mtu == 1400)
        #expect(send(api, "DELETE", "/devices/tun0", headers: ["if-match": "\"2\""]).status == 204)
        #expect(links.table["tun0"] == nil && store.records.isEmpty)
    }

    @Test func statusesForWhatTheRouterAndValidationRefuse() throws {
        let api = try api()
        let wrongMethod = send(api, "PUT", "/devices/tun0/stats")
        #expect(wrongMethod.status == 405 && wrongMethod.header("Allow") == "GET")
        #expect(send(api, "GET", "/nowhere").status == 404)
        #expect(send(api, "GET", "/devices/nope0").json?["error"]?["code"] == .string("device_not_found"))
        let invalid = send(api, "POST", "/devices", body: #"{"type":"tap","mtu":65535}"#)
        #expect(invalid.status == 422 && invalid.json?["error"]?["field"] == .string("mtu"))
        #expect(send(api, "POST", "/devices", body: "{", headers: [:]).status == 400)
        #expect(send(api, "POST", "/devices", body: "{}", headers: ["content-type": "text/plain"]).status == 415)
        #expect(links.table.isEmpty)
    }

    @Test func changesWaitForRestore() throws {
        let api = try api(restored: false)
        let early = send(api, "POST", "/devices", body: #"{"name":"tun0","type":"tun"}"#)
        #expect(early.status == 503 && early.json?["error"]?["code"] == .string("not_ready"))
        #expect(send(api, "GET", "/readyz", authorized: false).status == 503)
        #expect(send(api, "GET", "/healthz", authorized: false).status == 200)
    }
}
