import Testing
import TundCNI
import TundJSON

@Suite struct ConfigTests {
    func parse(_ text: String) throws -> NetworkConfig { try NetworkConfig(parsing: Array(text.utf8)) }

    func code(_ text: String) -> Int? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return (error as? CNIError)?.code
        }
    }

    @Test func readsTheDocumentedExample() throws {
        let config = try parse(Fixtures.config)
        #expect(config.cniVersion == "1.0.0")
        #expect(config.name == "vms")
        #expect(config.server.endpoint == .unix(path: "/run/tund/tund.sock"))
        #expect(config.tokenFile == "/etc/tund/token")
        #expect(config.device.map(\.0) == ["type", "mtu", "worker"])
        #expect(config.ipamType == "host-local")
        #expect(config.prevResult == nil)
    }

    @Test func serverTakesTundctlsForms() throws {
        let config = try parse(#"{"cniVersion": "0.4.0", "name": "n", "type": "tund-cni", "server": "http://127.0.0.1:8080"}"#)
        #expect(config.server.endpoint == .tcp(host: "127.0.0.1", port: 8080))
        #expect(config.ipamType == nil && config.device.isEmpty && config.tokenFile == nil)
    }

    @Test func notJSONIsCode6() {
        #expect(code("not json") == 6)
        #expect(code("[1]") == 6)
        #expect(code("") == 6)
    }

    @Test func anUnsupportedVersionIsCode1() {
        #expect(code(#"{"cniVersion": "2.0.0", "name": "n", "type": "tund-cni"}"#) == 1)
    }

    @Test(arguments: [
        #"{"name": "n", "type": "tund-cni"}"#,
        #"{"cniVersion": "1.0.0", "type": "tund-cni"}"#,
        #"{"cniVersion": "1.0.0", "name": "n"}"#,
        #"{"cniVersion": "1.0.0", "name": "n", "type": "tund-cni", "server": "https://x"}"#,
        #"{"cniVersion": "1.0.0", "name": "n", "type": "tund-cni", "server": 8080}"#,
        #"{"cniVersion": "1.0.0", "name": "n", "type": "tund-cni", "device": "tap"}"#,
        #"{"cniVersion": "1.0.0", "name": "n", "type": "tund-cni", "device": {"name": "mine"}}"#,
        #"{"cniVersion": "1.0.0", "name": "n", "type": "tund-cni", "ipam": {"subnet": "10.0.0.0/24"}}"#,
    ])
    func invalidConfigurationsAreCode7(_ text: String) {
        #expect(code(text) == 7)
    }
}
