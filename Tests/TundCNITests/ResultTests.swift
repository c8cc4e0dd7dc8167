import Testing
@testable import TundCNI
import TundJSON

@Suite struct ResultTests {
    func ipam() throws -> IPAMResult { try IPAMResult(Fixtures.json(Fixtures.hostLocalResult), what: "r") }

    @Test func theDeviceBodyCarriesTheInterfaceTheDeviceFieldsAndTheAllocation() throws {
        let config = try NetworkConfig(parsing: Array(Fixtures.config.utf8))
        let body = DeviceBody.create(name: "cni-0123456789ab-eth0", environment: try Fixtures.environment(), config: config, ipam: try ipam())
        #expect(body == (try Fixtures.json("""
            {"name": "cni-0123456789ab-eth0", "ifname": "eth0", "netns": "/run/netns/c1",
             "type": "tap", "mtu": 1500, "worker": {"mode": "none"},
             "addresses": ["10.88.0.2/24"],
             "routes": [{"destination": "0.0.0.0/0", "gateway": "10.88.0.1"},
                        {"destination": "10.99.0.0/16", "gateway": "10.88.0.254"}]}
            """)))
    }

    @Test func theAddResultNamesTheInterfaceItsMACAndWhatIPAMGave() throws {
        let result = CNIResult.add(cniVersion: "1.0.0", environment: try Fixtures.environment(), mac: "02:00:00:00:00:01", ipam: try ipam())
        #expect(result == (try Fixtures.json("""
            {"cniVersion": "1.0.0",
             "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/c1"}],
             "ips": [{"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 0}],
             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16", "gw": "10.88.0.254"}],
             "dns": {"nameservers": ["10.88.0.1"]}}
            """)))
    }

    @Test func olderVersionsGetTheIPVersionAndNoMACWhenThereIsNone() throws {
        let result = CNIResult.add(cniVersion: "0.4.0", environment: try Fixtures.environment(), mac: nil, ipam: try ipam())
        #expect(result["cniVersion"] == .string("0.4.0"))
        #expect(result["interfaces"]?[0]?["mac"] == nil)
        #expect(result["ips"]?[0]?["version"] == .string("4"))
    }

    @Test func theErrorResultHasTheSpecsFields() {
        let error = CNIError(code: 7, msg: "invalid network configuration: name is missing", details: "d")
        #expect(error.json(cniVersion: "0.4.0") == .object([
            ("cniVersion", .string("0.4.0")), ("code", .integer(7)),
            ("msg", .string("invalid network configuration: name is missing")), ("details", .string("d")),
        ]))
    }

    @Test func anIPAMPluginsErrorResultIsPassedOn() {
        let text = #"{"cniVersion": "1.0.0", "code": 11, "msg": "no free address", "details": "range full"}"#
        #expect(IPAMDelegate.errorResult(Array(text.utf8)) == CNIError(code: 11, msg: "no free address", details: "range full"))
        #expect(IPAMDelegate.errorResult(Array("panic".utf8)) == nil)
    }
}
