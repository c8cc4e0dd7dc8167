import Testing
@testable import TundCNI
import TundJSON

@Suite struct CheckTests {
    let previous = try! IPAMResult(Fixtures.json(Fixtures.hostLocalResult), what: "prevResult")

    func device(_ changes: String = "") throws -> JSONValue {
        try Fixtures.json("""
            {"name": "cni-0123456789ab-eth0", "ifname": "eth0", "netns": "/run/netns/c1",
             "addresses": ["10.88.0.2/24"],
             "state": {"present": true, "reason": null, "mac": "02:00:00:00:00:01", "addresses": ["10.88.0.2/24", "fe80::1/64"]}\(changes)}
            """)
    }

    func problems(_ device: JSONValue) throws -> [String] {
        DeviceCheck.problems(device: device, environment: try Fixtures.environment(["CNI_COMMAND": "CHECK"]), previous: previous)
    }

    @Test func aMatchingDeviceHasNoProblems() throws {
        #expect(try problems(device()).isEmpty)
    }

    @Test func aNamespaceGivenByNameIsTheSameAsItsPath() throws {
        var members = try device().objectValue!
        members[members.firstIndex { $0.0 == "netns" }!].1 = .string("c1")
        #expect(try problems(.object(members)).isEmpty)
    }

    @Test func eachDifferenceIsNamed() throws {
        let wrong = try Fixtures.json("""
            {"name": "cni-0123456789ab-eth0", "ifname": "eth1", "netns": "/run/netns/other", "addresses": ["10.88.0.3/24"],
             "state": {"present": false, "reason": "namespace_missing"}}
            """)
        #expect(try problems(wrong) == [
            "the device is not present in the kernel (namespace_missing)",
            "the device is in namespace /run/netns/other, not /run/netns/c1",
            "the device's interface is eth1, not eth0",
            "tund's device does not list 10.88.0.2/24",
        ])
    }

    @Test func anAddressTakenOffTheLinkByHandIsNamed() throws {
        let taken = try Fixtures.json("""
            {"name": "cni-0123456789ab-eth0", "ifname": "eth0", "netns": "/run/netns/c1", "addresses": ["10.88.0.2/24"],
             "state": {"present": true, "reason": null, "addresses": ["fe80::1/64"]}}
            """)
        #expect(try problems(taken) == ["the link does not hold 10.88.0.2/24 now"])
    }

    @Test func checkWithoutPrevResultIsCode7AndBeforeVersion040IsCode1() {
        var variables = Fixtures.addVariables
        variables["CNI_COMMAND"] = "CHECK"
        let noPrevious = CNIPlugin.run(environment: variables, input: Array(Fixtures.config.utf8))
        #expect(noPrevious.status == 1 && noPrevious.output["code"] == .integer(7))
        let old = Fixtures.config.replacingOccurrences("\"1.0.0\"", with: "\"0.3.1\"")
        let tooOld = CNIPlugin.run(environment: variables, input: Array(old.utf8))
        #expect(tooOld.status == 1 && tooOld.output["code"] == .integer(1) && tooOld.output["cniVersion"] == .string("0.3.1"))
    }

    @Test func versionAnswersWithTheSupportedVersions() {
        let answer = CNIPlugin.run(environment: ["CNI_COMMAND": "VERSION"], input: Array(#"{"cniVersion": "1.0.0"}"#.utf8))
        #expect(answer.status == 0)
        #expect(answer.output == .object([
            ("cniVersion", .string("1.0.0")),
            ("supportedVersions", .array(["0.3.0", "0.3.1", "0.4.0", "1.0.0"].map(JSONValue.string))),
        ]))
    }
}

extension String {
    /// Foundation's replacingOccurrences, which these tests do without.
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
