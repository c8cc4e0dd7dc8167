import Testing
import TundCNI

@Suite struct EnvironmentTests {
    @Test func readsTheParametersOfAdd() throws {
        let environment = try Fixtures.environment()
        #expect(environment.command == .add)
        #expect(environment.containerID == "0123456789abcdef0123")
        #expect(environment.netns == "/run/netns/c1")
        #expect(environment.ifname == "eth0")
        #expect(environment.path == ["/opt/cni/bin", "/usr/lib/cni"])
    }

    @Test func versionNeedsNothingElse() throws {
        #expect(try CNIEnvironment(["CNI_COMMAND": "VERSION"]).command == .version)
    }

    @Test func delMayComeWithoutANamespace() throws {
        let environment = try Fixtures.environment(["CNI_COMMAND": "DEL", "CNI_NETNS": nil])
        #expect(environment.netns == nil)
    }

    @Test(arguments: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])
    func addWithoutAParameterIsCode4(_ missing: String) {
        #expect(throws: CNIError(code: 4, msg: "\(missing) is not set", details: "CNI_COMMAND ADD needs it")) {
            try Fixtures.environment([missing: nil])
        }
        #expect(throws: CNIError(code: 4, msg: "\(missing) is not set", details: "CNI_COMMAND ADD needs it")) {
            try Fixtures.environment([missing: ""])
        }
    }

    @Test func unknownOrMissingCommandsAreCode4() {
        #expect { try Fixtures.environment(["CNI_COMMAND": "GC"]) } throws: { ($0 as? CNIError)?.code == 4 }
        #expect { try Fixtures.environment(["CNI_COMMAND": nil]) } throws: { ($0 as? CNIError)?.code == 4 }
    }

    @Test func theIPAMPluginGetsEveryVariableWithItsOwnCommand() throws {
        let passed = try Fixtures.environment().environment(command: .del)
        #expect(Set(passed) == Set(Fixtures.addVariables.map { "\($0.key)=\($0.value)" }.filter { !$0.hasPrefix("CNI_COMMAND=") } + ["CNI_COMMAND=DEL"]))
    }
}
