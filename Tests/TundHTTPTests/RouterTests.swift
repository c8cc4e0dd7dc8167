import Testing
import TundHTTP
import PercentEncoding

@Suite struct RouterTests {
    let router: Router = {
        var router = Router()
        router.add("GET", "/devices") { _, _ in HTTPResponse(status: 200, body: Array("list".utf8)) }
        router.add("POST", "/devices") { _, _ in HTTPResponse(status: 201) }
        router.add("GET", "/devices/{name}") { _, path in HTTPResponse(status: 200, body: Array(path["name"].utf8)) }
        router.add("DELETE", "/devices/{name}") { _, _ in HTTPResponse(status: 204) }
        router.add("GET", "/devices/{name}/stats") { _, path in HTTPResponse(status: 200, body: Array("stats \(path["name"])".utf8)) }
        return router
    }()

    func body(_ method: String, _ path: String) -> String? {
        guard case .handler(let handler, let parameters, _, _) = router.match(method: method, path: path) else { return nil }
        return String(decoding: handler(HTTPRequest(method: method, path: path), parameters).body, as: UTF8.self)
    }

    @Test func matchesLiteralsAndParameters() {
        #expect(body("GET", "/devices") == "list")
        #expect(body("GET", "/devices/") == "list")
        #expect(body("GET", "/devices/tun0") == "tun0")
        #expect(body("GET", "/devices/tun0/stats") == "stats tun0")
    }

    /// Paths without an escape are matched on their bytes, the others segment by segment after decoding:
    /// both ways must agree, so each path is also tried with one letter escaped.
    @Test(arguments: ["", "/", "//", "/devices", "/devices/", "/devices//", "//devices", "/devices/tun0", "/devices/tun0/",
                      "/devices/tun0/stats", "/devices/tun0/stats/", "/devices//stats", "/devices/tun0/stats/x", "devices",
                      "/a/b/c/d/e/f/g/h/i/j", "/devices/" + String(repeating: "x/", count: 9)])
    func unescapedAndEscapedPathsMatchAlike(_ path: String) {
        let escaped = path.replacingFirst("e", with: "%65")
        func outcome(_ method: String, _ path: String) -> String {
            switch router.match(method: method, path: path) {
            case .handler(let handler, let parameters, let pattern, _):
                "\(pattern) \(parameters.values.map { "\($0.name)=\($0.value)" }) \(handler(HTTPRequest(method: method, path: path), parameters).status)"
            case .methodNotAllowed(let allowed): "405 \(allowed)"
            case .notFound: "404"
            case .badPath: "400"
            }
        }
        for method in ["GET", "POST", "PUT"] {
            #expect(outcome(method, path) == outcome(method, escaped), "\(method) \(path)")
        }
    }

    @Test func decodesEachSegmentAfterSplitting() {
        #expect(body("GET", "/devices/tun0%2Fstats") == "tun0/stats")
        #expect(body("GET", "/devices/%74un0") == "tun0")
        guard case .badPath = router.match(method: "GET", path: "/devices/%zz") else {
            Issue.record("malformed escape was accepted")
            return
        }
    }

    @Test func answersMethodNotAllowedWithTheAllowedMethods() {
        guard case .methodNotAllowed(let allowed) = router.match(method: "PUT", path: "/devices/tun0") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == ["GET", "DELETE"])
    }

    @Test(arguments: ["/", "/device", "/devices/tun0/stats/x", "/devices//stats", "//devices"])
    func unknownPathsAreNotFound(_ path: String) {
        guard case .notFound = router.match(method: "GET", path: path) else {
            Issue.record("\(path) matched")
            return
        }
    }

    @Test func listsItsEndpoints() {
        #expect(router.endpoints.map { "\($0.method) \($0.pattern)" } == [
            "GET /devices", "POST /devices", "GET /devices/{name}", "DELETE /devices/{name}", "GET /devices/{name}/stats",
        ])
    }
}

@Suite struct HTTPHelpersTests {
    @Test func percentDecoding() {
        #expect(percentDecode("a%20b") == "a b")
        #expect(percentDecode("a+b") == "a+b")
        #expect(percentDecode("%") == nil)
        #expect(percentDecode("%f") == nil)
        #expect(percentDecode("%ff") == nil)  // not UTF-8
        #expect(percentDecode("%C3%BC") == "ü")
    }

    @Test func listenAddresses() {
        #expect(ListenAddress("127.0.0.1:8080")?.port == 8080)
        #expect(ListenAddress("127.0.0.1:8080")?.isLoopback == true)
        #expect(ListenAddress("[::1]:9000")?.host == "::1")
        #expect(ListenAddress("[::1]:9000")?.isLoopback == true)
        #expect(ListenAddress("0.0.0.0:80")?.isLoopback == false)
        #expect(ListenAddress("localhost:80") == nil)
        #expect(ListenAddress("127.0.0.1") == nil)
        #expect(ListenAddress("127.0.0.1:99999") == nil)
        #expect(ListenAddress("[::1:80") == nil)
    }

    @Test func mediaTypeIgnoresParametersAndCase() {
        let request = HTTPRequest(method: "POST", path: "/", headers: ["content-type": "Application/JSON; charset=utf-8"])
        #expect(request.mediaType == "application/json")
    }
}

private extension String {
    func replacingFirst(_ character: Character, with replacement: String) -> String {
        guard let found = firstIndex(of: character) else { return self }
        return String(self[..<found]) + replacement + String(self[index(after: found)...])
    }
}
