import Logging
import NetAddress
import Synchronization
import Testing
import TundFakes
@testable import TundCore

/// Devices in several namespaces: each namespace an in-memory kernel of its own.
@Suite struct FleetTests {
    /// Namespaces that exist until a test removes them.
    final class FakeNamespaces: NamespaceOpener, @unchecked Sendable {
        let kernels = Mutex<[String: FakeLinks]>([:])
        let present = Mutex<Set<String>>([])

        func add(_ name: String) -> FakeLinks {
            let links = FakeLinks()
            kernels.withLock { $0[name] = links }
            present.withLock { _ = $0.insert(name) }
            return links
        }

        func remove(_ name: String) { present.withLock { _ = $0.remove(name) } }

        func open(_ reference: String) throws(KernelError) -> NamespaceKernel {
            guard isPresent(reference), let links = kernels.withLock({ $0[reference] }) else {
                throw KernelError(operation: "open /run/netns/\(reference)", errno: .ENOENT)
            }
            return NamespaceKernel(links: links, notices: FakeNotices(), isPresent: { [self] in isPresent(reference) })
        }

        func isPresent(_ name: String) -> Bool { present.withLock { $0.contains(name) } }
    }

    let home = FakeLinks()
    let store = FakeStore()
    let namespaces = FakeNamespaces()

    func fleet() throws -> DeviceFleet {
        let fleet = DeviceFleet(home: TestPlane.manager(links: home, store: store), opener: namespaces)
        try fleet.restore()
        return fleet
    }

    func device(_ name: String, ifname: String? = nil, netns: String? = nil) -> DeviceSpec {
        var spec = DeviceSpec(name: name, kind: .tap, workerMode: .none)
        spec.ifname = ifname
        spec.netns = netns
        return spec
    }

    @Test func devicesAreMadeInTheirNamespaceUnderTheirKernelName() throws {
        let one = namespaces.add("one"), two = namespaces.add("two")
        let fleet = try fleet()
        _ = try fleet.create(device("pod1", ifname: "eth0", netns: "one"))
        _ = try fleet.create(device("pod2", ifname: "eth0", netns: "two"))
        _ = try fleet.create(device("local0"))
        #expect(one.table.keys.sorted() == ["eth0"] && two.table.keys.sorted() == ["eth0"] && home.table.keys.sorted() == ["local0"])
        #expect(try fleet.get("pod2").link?.name == "eth0" && fleet.list().map(\.record.name) == ["pod1", "pod2", "local0"])
        #expect(store.records["pod1"]?.spec.netns == "one" && store.records["pod1"]?.kernelName == "eth0")
        // The API name is unique across namespaces.
        #expect(throws: TundError.self) { try fleet.create(device("pod1", ifname: "eth1", netns: "two")) }
        try fleet.delete("pod1")
        #expect(one.table.isEmpty && two.table.keys.sorted() == ["eth0"])
        fleet.shutdown()
    }

    /// `one` and `/run/netns/one` are one namespace: one manager holds both devices, and a restart deletes
    /// neither as an orphan of the other's manager.
    @Test func aNamespaceNamedTwoWaysIsOneNamespace() throws {
        let one = namespaces.add("one")
        let first = try fleet()
        _ = try first.create(device("pod1", ifname: "eth0", netns: "one"))
        _ = try first.create(device("pod2", ifname: "eth1", netns: "/run/netns/one"))
        #expect(one.table.keys.sorted() == ["eth0", "eth1"])
        first.shutdown()
        let second = try fleet()
        #expect(one.table.keys.sorted() == ["eth0", "eth1"])
        #expect(try second.get("pod1").link != nil)
        #expect(try second.get("pod2").link != nil)
        #expect(second.lastRestore.failed.isEmpty)
        second.shutdown()
    }

    /// A restored fleet with device `a` (eth0) in namespace "gone" and `b` (eth0) in "kept".
    func fleetInTwoNamespaces() throws -> (fleet: DeviceFleet, kept: FakeLinks) {
        _ = namespaces.add("gone")
        let kept = namespaces.add("kept")
        let fleet = try fleet()
        _ = try fleet.create(device("a", ifname: "eth0", netns: "gone"))
        _ = try fleet.create(device("b", ifname: "eth0", netns: "kept"))
        return (fleet, kept)
    }

    @Test func aNamespaceThatGoesAwayStrandsOnlyItsDevices() throws {
        let (fleet, kept) = try fleetInTwoNamespaces()
        let tag = fleet.collectionTag
        namespaces.remove("gone")
        fleet.dropVanishedNamespaces()
        let stranded = try fleet.get("a")
        #expect(stranded.link == nil && stranded.absentReason == "namespace_missing")
        #expect(try fleet.get("b").link != nil && kept.table.keys.sorted() == ["eth0"] && home.table.isEmpty)
        #expect(fleet.collectionTag != tag)
        #expect(fleet.events.recent().contains { $0.kind == .namespaceMissing && $0.device == "a" })
        #expect(throws: TundError.namespaceMissing(name: "a", netns: "gone")) { try fleet.update("a", DevicePatch(mtu: 1400)) }
        try fleet.delete("a")
        #expect(store.records["a"] == nil)
        #expect(throws: TundError.deviceNotFound(name: "a")) { try fleet.get("a") }
        fleet.shutdown()
    }

    @Test func restoreStrandsTheDevicesOfAMissingNamespaceAndRestoresTheRest() throws {
        let (first, kept) = try fleetInTwoNamespaces()
        _ = namespaces.add("third")
        _ = try first.create(device("c", ifname: "eth0", netns: "third"))
        first.shutdown()
        kept.table = [:]
        namespaces.remove("gone")
        let readsBefore = store.fullReads
        let second = try fleet()
        #expect(store.fullReads == readsBefore + 1, "a restart reads the store once, whatever the namespaces")
        #expect(try second.get("a").absentReason == "namespace_missing")
        #expect(try second.get("b").link != nil && kept.table.keys.sorted() == ["eth0"] && home.table.isEmpty)
        #expect(second.lastRestore.failed.keys.sorted() == ["a"] && second.lastRestore.recreated == ["b"])
        #expect(second.lastRestore.reattached == ["c"])
        second.shutdown()
    }

    @Test func aDeclaredSetIsPlannedEverywhereBeforeAnythingChanges() throws {
        let one = namespaces.add("one")
        let fleet = try fleet()
        let declared = [device("x"), device("y", ifname: "eth0", netns: "one")]
        let (plan, _) = try fleet.apply(declared, dryRun: true, allowRecreate: false)
        #expect(plan.create.sorted() == ["x", "y"] && home.table.isEmpty && one.table.isEmpty)
        _ = try fleet.apply(declared, dryRun: false, allowRecreate: false)
        #expect(home.table.keys.sorted() == ["x"] && one.table.keys.sorted() == ["eth0"])
        // Moving a device between namespaces is refused, naming the member.
        #expect(throws: TundError.self) {
            try fleet.apply([device("x"), device("y", ifname: "eth0")], dryRun: false, allowRecreate: false)
        }
        #expect(home.table.keys.sorted() == ["x"] && one.table.keys.sorted() == ["eth0"])
        let (emptied, _) = try fleet.apply([], dryRun: false, allowRecreate: false)
        #expect(emptied.delete.sorted() == ["x", "y"] && home.table.isEmpty && one.table.isEmpty)
        fleet.shutdown()
    }
}
