import NetAddress
import Testing
@testable import TundCNI
import TundJSON

@Suite struct IPAMResultTests {
    @Test func readsHostLocalsResult() throws {
        let result = try IPAMResult(Fixtures.json(Fixtures.hostLocalResult), what: "the IPAM result")
        #expect(result.ips.map(\.address.description) == ["10.88.0.2/24"])
        #expect(result.ips.map(\.gateway?.description) == ["10.88.0.1"])
        #expect(result.routes.map(\.destination.description) == ["0.0.0.0/0", "10.99.0.0/16"])
        #expect(result.dns == (try Fixtures.json(#"{"nameservers": ["10.88.0.1"]}"#)))
    }

    @Test func readsOlderVersionsWithTheirIPVersionField() throws {
        let result = try IPAMResult(Fixtures.json(#"{"cniVersion": "0.3.1", "ips": [{"version": "6", "address": "fd00::2/64"}]}"#), what: "r")
        #expect(result.ips.map(\.address.description) == ["fd00::2/64"])
        #expect(result.ips.first?.gateway == nil)
        #expect(result.routes.isEmpty && result.dns == nil)
    }

    @Test func aRouteWithoutAGatewayGoesThroughTheGatewayOfItsFamily() throws {
        let result = try IPAMResult(Fixtures.json(Fixtures.hostLocalResult), what: "r")
        #expect(result.routes.map { result.gateway(for: $0)?.description } == ["10.88.0.1", "10.88.0.254"])
        let v6Route = IPAMResult.Route(destination: try IPPrefix.parse("::/0").get(), gateway: nil)
        #expect(result.gateway(for: v6Route) == nil)
    }

    @Test(arguments: [
        #"[]"#,
        #"{"ips": [{"address": "10.88.0.2"}]}"#,
        #"{"ips": [{"address": "10.88.0.2/24", "gateway": "nope"}]}"#,
        #"{"routes": [{"gw": "10.0.0.1"}]}"#,
    ])
    func unreadableResultsAreCode6(_ text: String) throws {
        let json = try Fixtures.json(text)
        #expect { try IPAMResult(json, what: "r") } throws: { ($0 as? CNIError)?.code == 6 }
    }
}
