import Testing
@testable import TundHTTP

/// Requests refused from their head: smuggling-prone framing, malformed header lines, Host and Origin.
@Suite struct RequestHeadTests {
    let policy = HostPolicy.loopback(listeningOn: "127.0.0.1", port: 8080)

    func check(_ headers: [(String, String)], http10: Bool = false, policy: HostPolicy? = nil) -> HeadRejection? {
        RequestHead.check(headers.map { (name: $0.0, value: $0.1) }, http10: http10, policy: policy)
    }

    @Test func framingThatTwoParsersCouldReadDifferentlyIsRefused() {
        let host = ("Host", "127.0.0.1")
        guard case .ambiguousFraming? = check([host, ("Content-Length", "2"), ("Transfer-Encoding", "chunked")]) else { Issue.record(); return }
        guard case .ambiguousFraming? = check([host, ("Content-Length", "34"), ("Content-Length", "2")]) else { Issue.record(); return }
        guard case .ambiguousFraming? = check([host, ("Content-Length", "5, 6")]) else { Issue.record(); return }
        #expect(check([host, ("Content-Length", "7"), ("content-length", "7")]) == nil)  // the same value twice: one length
        #expect(check([host, ("Transfer-Encoding", "chunked")]) == nil)
    }

    @Test func malformedHeaderLinesAreRefused() {
        guard case .malformedHeader? = check([("Host", "x"), ("Content-Length ", "2")]) else { Issue.record(); return }
        guard case .malformedHeader? = check([("Host", "x"), ("", "value")]) else { Issue.record(); return }
    }

    @Test func http11NeedsExactlyOneHost() {
        guard case .invalidHost? = check([("Accept", "*/*")]) else { Issue.record(); return }
        guard case .invalidHost? = check([("Host", "127.0.0.1"), ("Host", "evil.example")]) else { Issue.record(); return }
        #expect(check([("Accept", "*/*")], http10: true) == nil)
    }

    @Test func withoutATokenOnlyThisServersNamesAreServed() {
        for host in ["127.0.0.1", "127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "[::1]"] {
            #expect(check([("Host", host)], policy: policy) == nil, "\(host)")
        }
        for host in ["rebind.attacker.example:8080", "rebind.attacker.example", "127.0.0.1:9090", "127.0.0.2:8080", "[::1", "localhost.:8080"] {
            guard case .foreignHost? = check([("Host", host)], policy: policy) else { Issue.record("\(host) admitted"); continue }
        }
        #expect(check([("Host", "anything.example")], policy: nil) == nil)
    }

    @Test func aForeignOriginIsRefused() {
        let host = ("Host", "127.0.0.1:8080")
        #expect(check([host, ("Origin", "http://127.0.0.1:8080")], policy: policy) == nil)
        #expect(check([host, ("Origin", "http://localhost:8080")], policy: policy) == nil)
        for origin in ["http://rebind.attacker.example:8080", "null", "http://127.0.0.1", "http://localhost:9090", "file://"] {
            guard case .foreignOrigin? = check([host, ("Origin", origin)], policy: policy) else { Issue.record("\(origin) admitted"); continue }
        }
    }
}
