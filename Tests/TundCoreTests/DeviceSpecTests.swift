import NetAddress
import Testing
import TundCore

@Suite struct DeviceSpecTests {
    func field(of spec: DeviceSpec) -> String? {
        do {
            try spec.validate()
            return nil
        } catch {
            if case .invalidField(let field, _) = error { return field }
            return "other: \(error)"
        }
    }

    @Test func acceptsAFullSpec() throws {
        let spec = DeviceSpec(name: "tun0", kind: .tun, mtu: 1400,
                              addresses: [try IPPrefix.parse("10.10.0.1/24").get(), try IPPrefix.parse("fd00:10::1/64").get()],
                              routes: [RouteSpec(destination: try IPPrefix.parse("10.20.0.0/16").get(), gateway: IPAddress("10.10.0.2"), metric: 5)])
        #expect(field(of: spec) == nil)
    }

    @Test(arguments: ["", "abcdefghijklmnop", "a/b", "a b", "a:b", "tun%d", ".", "..", "tün", "a\u{0}b"])
    func rejectsBadNames(_ name: String) {
        #expect(field(of: DeviceSpec(name: name, kind: .tun)) == "name")
    }

    @Test(arguments: ["tun0", "a", "abcdefghijklmno", "vpn-eu.1", "x_y"])
    func acceptsGoodNames(_ name: String) {
        #expect(field(of: DeviceSpec(name: name, kind: .tun)) == nil)
    }

    @Test func aKernelNameOfItsOwnLetsTheNameBeLonger() {
        var spec = DeviceSpec(name: "cni-0123456789ab-eth0", kind: .tap)
        #expect(field(of: spec) == "name")
        spec.ifname = "eth0"
        #expect(field(of: spec) == nil && spec.kernelName == "eth0")
        spec.ifname = "abcdefghijklmnop"
        #expect(field(of: spec) == "ifname")
        spec.ifname = "eth0"
        spec.name = String(repeating: "a", count: 64)
        #expect(field(of: spec) == "name")
        spec.name = nil
        #expect(field(of: spec) == "name")
    }

    @Test(arguments: ["vm1", "cni-1234", "/run/netns/vm1", "/var/run/netns/cni-1234", "/proc/42/ns/net"])
    func acceptsNamespaceReferences(_ netns: String) {
        var spec = DeviceSpec(name: "tap0", kind: .tap)
        spec.netns = netns
        #expect(field(of: spec) == nil)
    }

    @Test(arguments: ["", "a/b", "..", ".", "../x", "/run/netns/../../etc/x", "vm 1", "/a\u{0}b"])
    func rejectsBadNamespaceReferences(_ netns: String) {
        var spec = DeviceSpec(name: "tap0", kind: .tap)
        spec.netns = netns
        #expect(field(of: spec) == "netns")
    }

    @Test func aWireGuardWorkerIsATunWithAKeyAPortAndDistinctPeers() throws {
        let key = [UInt8](repeating: 7, count: 32)
        var spec = DeviceSpec(name: "wg0", kind: .tun, workerMode: .wireguard)
        #expect(field(of: spec) == "worker.listen_port")
        spec.wireguard = WireGuardSpec(privateKey: key, listenPort: 51820,
                                       peers: [WireGuardPeerSpec(publicKey: [UInt8](repeating: 1, count: 32), allowedIPs: [try IPPrefix.parse("10.0.0.2/32").get()])])
        #expect(field(of: spec) == nil)
        spec.wireguard!.peers.append(spec.wireguard!.peers[0])
        #expect(field(of: spec) == "worker.peers[1].public_key")
        spec.wireguard!.peers = [WireGuardPeerSpec(publicKey: [1, 2, 3])]
        #expect(field(of: spec) == "worker.peers[0].public_key")
        spec.wireguard!.peers = []
        spec.wireguard!.privateKey = [UInt8](repeating: 0, count: 32)
        #expect(field(of: spec) == "worker.private_key")
        spec.wireguard!.privateKey = key
        spec.kind = .tap
        #expect(field(of: spec) == "worker.mode")
        spec.kind = .tun
        spec.workerMode = .count
        #expect(field(of: spec) == "worker.peers")
    }

    @Test func aSpecNeverPrintsItsSecrets() {
        var spec = DeviceSpec(name: "wg0", kind: .tun, workerMode: .wireguard)
        let secret = [UInt8](repeating: 0xab, count: 32)
        spec.wireguard = WireGuardSpec(privateKey: secret, listenPort: 51820,
                                       peers: [WireGuardPeerSpec(publicKey: [UInt8](repeating: 1, count: 32), presharedKey: secret)])
        let printed = "\(spec)"
        #expect(!printed.contains("171") && !printed.lowercased().contains("abab") && printed.contains("<secret>"))
    }

    @Test func checksRangesAndCombinations() throws {
        #expect(field(of: DeviceSpec(kind: .tun, mtu: 67)) == "mtu")
        #expect(field(of: DeviceSpec(kind: .tun, mtu: 65536)) == "mtu")
        #expect(field(of: DeviceSpec(kind: .tun, queues: 0)) == "queues")
        #expect(field(of: DeviceSpec(kind: .tun, queues: 65)) == "queues")
        #expect(field(of: DeviceSpec(kind: .tun, owner: -1)) == "owner")
        #expect(field(of: DeviceSpec(kind: .tun, mac: MACAddress("02:00:00:00:00:01"))) == "mac")
        #expect(field(of: DeviceSpec(kind: .tap, mac: MACAddress("00:00:00:00:00:00"))) == "mac")
        #expect(field(of: DeviceSpec(kind: .tun, mtu: 1279, addresses: [try IPPrefix.parse("fd00::1/64").get()])) == "addresses[0]")
        #expect(field(of: DeviceSpec(kind: .tun, addresses: [try IPPrefix.parse("127.0.0.2/8").get()])) == "addresses[0]")
        let route = RouteSpec(destination: try IPPrefix.parse("10.20.0.0/16").get())
        #expect(field(of: DeviceSpec(kind: .tun, up: false, routes: [route])) == nil)  // stored, installed when up
        #expect(field(of: DeviceSpec(kind: .tun, routes: [route, route])) == "routes[1]")
        #expect(field(of: DeviceSpec(kind: .tun, routes: [RouteSpec(destination: try IPPrefix.parse("10.20.0.1/16").get())])) == "routes[0].destination")
        #expect(field(of: DeviceSpec(kind: .tun, routes: [RouteSpec(destination: try IPPrefix.parse("10.20.0.0/16").get(), gateway: IPAddress("fd00::1"))])) == "routes[0].gateway")
    }
}
