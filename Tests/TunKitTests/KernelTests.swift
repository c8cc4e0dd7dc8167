#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import Synchronization
import Testing
@testable import TunKit

/// TunKit against the real kernel, inside the test run's private network namespace. Each test uses its
/// own device names and removes what it made.
@Suite(.serialized, .enabled(if: KernelTestEnvironment.available, "needs root in a private network namespace"))
struct KernelTests {
    let netlink = try! RouteNetlink()

    func remove(_ name: String) {
        if let link = try? netlink.link(named: name) { try? netlink.deleteLink(index: link.index) }
    }

    @Test func createsAndRemovesANonPersistentDevice() throws {
        let device = try TunDevice.open(name: "tktest0", kind: .tun, queues: 1, exclusive: true)
        #expect(device.name == "tktest0")
        let link = try #require(try netlink.link(named: "tktest0"))
        #expect(link.kind == "tun" && link.tun?.isTap == false && link.tun?.persistent == false)
        device.close()
        #expect(try netlink.link(named: "tktest0") == nil)
    }

    @Test func exclusiveCreateOfAnExistingNameFailsWithEBUSY() throws {
        let device = try TunDevice.open(name: "tktest1", kind: .tun, queues: 1, exclusive: true)
        defer { device.close() }
        #expect(throws: SystemError("ioctl(TUNSETIFF)", errno: EBUSY)) {
            try TunDevice.open(name: "tktest1", kind: .tun, queues: 1, exclusive: true)
        }
    }

    @Test func persistentDeviceOutlivesItsDescriptorAndCanBeReattached() throws {
        let device = try TunDevice.open(name: "tktest2", kind: .tap, queues: 2, exclusive: true)
        try device.setPersistent(true)
        device.close()
        let link = try #require(try netlink.link(named: "tktest2"))
        #expect(link.tun?.persistent == true && link.tun?.multiQueue == true && link.tun?.isTap == true)
        let again = try TunDevice.open(name: "tktest2", kind: .tap, queues: 2, exclusive: false)
        #expect(again.queueDescriptors.count == 2)
        // Attaching with the wrong kind is refused by the kernel.
        #expect(throws: SystemError.self) { try TunDevice.open(name: "tktest2", kind: .tun, queues: 1, exclusive: false) }
        try again.setPersistent(false)
        again.close()
        #expect(try netlink.link(named: "tktest2") == nil)
    }

    @Test func kernelPicksANameWhenNoneIsGiven() throws {
        let device = try TunDevice.open(name: nil, kind: .tun, queues: 1, exclusive: true)
        defer { device.close() }
        #expect(device.name.hasPrefix("tun"))
        #expect(try netlink.link(named: device.name) != nil)
    }

    @Test func configuresLinkAddressesAndRoutes() throws {
        let device = try TunDevice.open(name: "tktest3", kind: .tun, queues: 1, exclusive: true)
        defer { device.close() }
        let index = try #require(try netlink.link(named: "tktest3")).index
        try netlink.setLink(index: index, LinkChange(up: true, mtu: 1300, alias: "tund:test"))
        let link = try #require(try netlink.link(index: index))
        #expect(link.mtu == 1300 && link.isUp && link.alias == "tund:test")
        #expect(link.statistics != nil)
        #expect(try netlink.statistics(index: index) != nil)  // RTM_GETSTATS, counters only
        #expect(try netlink.statistics(index: Int32.max) == nil)  // no such ifindex: ENODEV is nil

        let v4 = try IPPrefix.parse("10.99.0.1/24").get(), v6 = try IPPrefix.parse("fd00:99::1/64").get()
        try netlink.addAddress(v4, index: index)
        try netlink.addAddress(v6, index: index)
        try netlink.addAddress(v4, index: index, replace: true)  // replace is idempotent
        #expect(throws: NetlinkError.self) { try netlink.addAddress(v4, index: index) }  // EEXIST without replace
        #expect(Set(try netlink.addresses(index: index).map(\.prefix)).isSuperset(of: [v4, v6]))

        let route = RouteRequest(destination: try IPPrefix.parse("10.98.0.0/16").get(), gateway: IPAddress("10.99.0.2"),
                                 interfaceIndex: index, metric: 50, protocol: 212)
        try netlink.addRoute(route)
        let installed = try netlink.routes().filter { $0.outputInterface == index && $0.protocol == 212 }
        #expect(installed.count == 1 && installed.first?.gateway == IPAddress("10.99.0.2") && installed.first?.metric == 50)
        try netlink.deleteRoute(route)
        #expect(try netlink.routes().filter { $0.outputInterface == index && $0.protocol == 212 }.isEmpty)
        try netlink.deleteAddress(v4, index: index)
        #expect(!(try netlink.addresses(index: index).map(\.prefix)).contains(v4))
    }

    @Test func dumpsAreFilteredByLinkAndBatchesContinuePastAFailure() throws {
        let first = try TunDevice.open(name: "tktest5", kind: .tun, queues: 1, exclusive: true)
        let second = try TunDevice.open(name: "tktest6", kind: .tun, queues: 1, exclusive: true)
        defer { first.close(); second.close() }
        let one = try #require(try netlink.link(named: "tktest5")).index
        let two = try #require(try netlink.link(named: "tktest6")).index
        let a = try IPPrefix.parse("10.97.0.1/24").get(), b = try IPPrefix.parse("10.96.0.1/24").get()
        let route = RouteRequest(destination: try IPPrefix.parse("10.95.0.0/16").get(), gateway: nil, interfaceIndex: two,
                                 metric: nil, protocol: 212)
        let results = netlink.perform([
            (RouteRequests.setLink(index: one, LinkChange(up: true)), "up one"),
            (RouteRequests.setLink(index: two, LinkChange(up: true)), "up two"),
            (RouteRequests.addAddress(a, index: one, replace: false), "a"),
            (RouteRequests.addAddress(a, index: one, replace: false), "a again"),  // EEXIST
            (RouteRequests.addAddress(b, index: two, replace: false), "b"),
            (RouteRequests.addRoute(route, replace: false), "route"),
        ])
        #expect(results.map { $0?.errno } == [nil, nil, nil, EEXIST, nil, nil])
        #expect(results[3]?.operation == "a again")
        #expect(try netlink.addresses(index: one).map(\.prefix).contains(a))
        #expect(!(try netlink.addresses(index: one).map(\.prefix)).contains(b))
        #expect(try netlink.routes(protocol: 212, index: two).map(\.destination) == [route.destination])
        #expect(try netlink.routes(protocol: 212, index: one).isEmpty)
        #expect(try netlink.routes(protocol: 212, index: Int32.max).isEmpty)  // no such link: none
    }

    @Test func aGroupDeleteTakesEveryLinkOfTheGroup() throws {
        for name in ["tktest7", "tktest8"] {
            let device = try TunDevice.open(name: name, kind: .tun, queues: 1, exclusive: true)
            try device.setPersistent(true)
            device.close()
        }
        let keep = try TunDevice.open(name: "tktest9", kind: .tun, queues: 1, exclusive: true)
        defer { keep.close() }
        let group: UInt32 = 0x7475_0001
        let indexes = try ["tktest7", "tktest8"].map { try #require(try netlink.link(named: $0)).index }
        #expect(netlink.perform(indexes.map { (RouteRequests.setGroup(index: $0, group: group), "group") }).allSatisfy { $0 == nil })
        #expect(try netlink.link(named: "tktest7")?.group == group)
        try netlink.deleteGroup(group)
        #expect(try netlink.link(named: "tktest7") == nil && netlink.link(named: "tktest8") == nil)
        #expect(try netlink.link(named: "tktest9") != nil)
    }

    @Test func theMonitorIgnoresTheChangesOfTheSocketItIsToldOf() throws {
        let device = try TunDevice.open(name: "tktest10", kind: .tun, queues: 1, exclusive: true)
        defer { device.close() }
        let index = try #require(try netlink.link(named: "tktest10")).index
        let monitor = try NetlinkMonitor()
        let seen = Mutex<[IPPrefix]>([])
        try monitor.start(ignoring: netlink.portID) { notice in
            if case .address(let address, false) = notice { seen.withLock { $0.append(address.prefix) } }
        }
        defer { monitor.stop() }
        let ours = try IPPrefix.parse("10.94.0.1/24").get(), theirs = try IPPrefix.parse("10.93.0.1/24").get()
        try netlink.addAddress(ours, index: index)
        try RouteNetlink().addAddress(theirs, index: index)  // another socket: another port id
        // Notices arrive in order: once the second is in, the first would have been.
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline && !seen.withLock({ $0.contains(theirs) }) { sched_yield() }
        #expect(seen.withLock { $0 } == [theirs])
    }

    @Test func kernelErrorsCarryErrnoAndExtendedAck() throws {
        let device = try TunDevice.open(name: "tktest4", kind: .tun, queues: 1, exclusive: true)
        defer { device.close() }
        let index = try #require(try netlink.link(named: "tktest4")).index
        try netlink.setLink(index: index, LinkChange(up: true))
        let unreachable = RouteRequest(destination: try IPPrefix.parse("10.97.0.0/16").get(), gateway: IPAddress("192.0.2.1"),
                                       interfaceIndex: index, metric: nil, protocol: 212)
        do {
            try netlink.addRoute(unreachable)
            Issue.record("a route through an unreachable gateway was accepted")
        } catch {
            #expect(error.errno == ENETUNREACH && error.errnoName == "ENETUNREACH")
            #expect(error.kernelMessage?.isEmpty == false)
        }
        #expect(throws: NetlinkError.self) { try netlink.setLink(index: index, LinkChange(mtu: 10)) }
        #expect(try netlink.link(index: 999_999) == nil)
    }

    @Test func tapMACCanBeSet() throws {
        let device = try TunDevice.open(name: "tktest5", kind: .tap, queues: 1, exclusive: true)
        defer { device.close() }
        let index = try #require(try netlink.link(named: "tktest5")).index
        try netlink.setLink(index: index, LinkChange(mac: MACAddress("02:00:00:00:00:99")))
        #expect(try netlink.link(index: index)?.mac == MACAddress("02:00:00:00:00:99"))
    }
}
