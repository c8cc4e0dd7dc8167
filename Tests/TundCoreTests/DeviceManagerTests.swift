#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import Testing
import TundFakes
@testable import TundCore

@Suite struct DeviceManagerTests {
    let links = FakeLinks()
    let store = FakeStore()
    var manager: DeviceManager { TestPlane.manager(links: links, store: store) }

    func ready() throws -> DeviceManager {
        let manager = self.manager
        try manager.restore()
        return manager
    }

    func tunSpec(_ name: String = "tun0") throws -> DeviceSpec {
        DeviceSpec(name: name, kind: .tun, mtu: 1400, addresses: [try IPPrefix.parse("10.10.0.1/24").get()],
                   routes: [RouteSpec(destination: try IPPrefix.parse("10.20.0.0/16").get(), gateway: IPAddress("10.10.0.2"))])
    }

    @Test func refusesMutationsUntilRestoreFinished() throws {
        let manager = self.manager
        #expect(throws: TundError.notReady) { try manager.create(try tunSpec()) }
        try manager.restore()
        #expect(manager.isReady)
    }

    @Test func createConfiguresStoresAndPersists() throws {
        let manager = try ready()
        let snapshot = try manager.create(try tunSpec()).device
        #expect(snapshot.record.id == 1 && snapshot.workerRunning)
        #expect(snapshot.record.routes.map(\.id) == [1])
        let link = try #require(links.table["tun0"])
        #expect(link.persistent && link.state.mtu == 1400 && link.state.up && link.state.alias == "tund:cafe0001")
        #expect(link.addresses.map(\.description) == ["10.10.0.1/24"] && link.routes.count == 1)
        #expect(store.records["tun0"] != nil)
        manager.shutdown()
    }

    @Test func aLinkGoesDownWithRoutesAndGetsThemBackWhenUp() throws {
        let manager = try ready()
        _ = try manager.create(try tunSpec())
        let down = try manager.update("tun0", DevicePatch(up: false))
        #expect(!down.record.spec.up && down.record.routes.count == 1 && down.activeRouteIDs.isEmpty)
        #expect(links.table["tun0"]!.state.up == false && links.table["tun0"]!.routes.isEmpty)
        // A route added while down is stored only; the kernel would refuse it.
        let added = try manager.addRoute("tun0", RouteSpec(destination: try IPPrefix.parse("10.30.0.0/16").get()))
        #expect(added.record.routes.count == 2 && links.table["tun0"]!.routes.isEmpty)
        // Routes missing from a link that is down are not drift.
        manager.reconcile(["tun0"])
        #expect(try manager.get("tun0").driftDetected == 0)
        let up = try manager.update("tun0", DevicePatch(up: true))
        #expect(links.table["tun0"]!.routes.count == 2 && up.activeRouteIDs == Set(up.record.routes.map(\.id)))
        manager.shutdown()
    }

    @Test func aDeviceStoredDownIsRestoredDownAndComesUpWithItsRoutes() throws {
        let first = try ready()
        _ = try first.create(try tunSpec())
        _ = try first.update("tun0", DevicePatch(up: false))
        first.shutdown()
        links.table["tun0"] = nil  // gone (a reboot): restore re-creates it, down, without routes
        let second = try ready()
        #expect(second.lastRestore.recreated == ["tun0"])
        #expect(links.table["tun0"]!.state.up == false && links.table["tun0"]!.routes.isEmpty)
        _ = try second.update("tun0", DevicePatch(up: true))
        #expect(links.table["tun0"]!.routes.count == 1)
        second.shutdown()
    }

    @Test(arguments: ["configure", "addAddress", "addRoute", "setPersistent"])
    func aFailureMidwayLeavesNoDeviceAndNoRow(_ operation: String) throws {
        let manager = try ready()
        links.fail(operation, .ENETUNREACH)
        #expect(throws: TundError.self) { try manager.create(try tunSpec()) }
        #expect(links.table["tun0"] == nil)
        #expect(store.records.isEmpty)
        #expect(throws: TundError.deviceNotFound(name: "tun0")) { try manager.get("tun0") }
    }

    @Test func aStorageFailureRemovesTheDevice() throws {
        let manager = try ready()
        store.failInsert = true
        #expect(throws: TundError.storageFailed("disk full")) { try manager.create(try tunSpec()) }
        #expect(links.table.isEmpty)
    }

    @Test func duplicateAndForeignNamesConflict() throws {
        let manager = try ready()
        _ = try manager.create(try tunSpec())
        #expect(throws: TundError.deviceExists(name: "tun0")) { try manager.create(try tunSpec()) }
        links.addForeign("tun7")
        #expect(throws: TundError.nameInUse(name: "tun7")) { try manager.create(try tunSpec("tun7")) }
        #expect(links.table["tun7"]?.state.alias == nil)
        manager.shutdown()
    }

    @Test func tapWithoutMACKeepsTheKernelsChoice() throws {
        let manager = try ready()
        let snapshot = try manager.create(DeviceSpec(name: "tap0", kind: .tap)).device
        #expect(snapshot.record.spec.mac == MACAddress("02:aa:bb:cc:dd:ee"))
        #expect(store.records["tap0"]?.spec.mac == MACAddress("02:aa:bb:cc:dd:ee"))
        manager.shutdown()
    }

    @Test func deleteRemovesLinkAndRow() throws {
        let manager = try ready()
        _ = try manager.create(try tunSpec())
        try manager.delete("tun0")
        #expect(links.table["tun0"] == nil && store.records.isEmpty)
        #expect(throws: TundError.deviceNotFound(name: "tun0")) { try manager.delete("tun0") }
    }

    @Test func aDeleteTheStoreRefusesChangesNothing() throws {
        let manager = try ready()
        let created = try manager.create(try tunSpec()).device
        store.failDelete = true
        #expect(throws: TundError.storageFailed("disk full")) { try manager.delete("tun0") }
        let kept = try manager.get("tun0")
        #expect(links.table["tun0"] != nil && kept.workerRunning && kept.link?.index == created.link?.index)
        store.failDelete = false
        try manager.delete("tun0")
        #expect(links.table["tun0"] == nil && store.records.isEmpty)
    }

    @Test func restoreReattachesRecreatesAndRemovesOrphans() throws {
        let first = try ready()
        _ = try first.create(try tunSpec("kept0"))
        _ = try first.create(try tunSpec("gone0").with { $0.addresses = [try IPPrefix.parse("10.11.0.1/24").get()]; $0.routes = [] })
        first.shutdown()
        // After the daemon: kept0 persists, gone0 vanished (reboot), an orphan carries our alias, a foreign link sits on a stored name.
        links.table["gone0"] = nil
        links.table["orphan0"] = FakeLinks.Link(state: links.state("orphan0", alias: "tund:cafe0001"), persistent: true)
        links.addForeign("taken0")
        store.records["taken0"] = DeviceRecord(id: 99, name: "taken0", spec: DeviceSpec(name: "taken0", kind: .tun), createdAt: "t", updatedAt: "t")

        let second = manager
        let report = try second.restore()
        #expect(report.reattached == ["kept0"])
        #expect(report.recreated == ["gone0"])
        #expect(report.orphansRemoved == ["orphan0"])
        #expect(report.failed.keys.sorted() == ["taken0"])
        #expect(links.table["gone0"]?.addresses.map(\.description) == ["10.11.0.1/24"])
        #expect(links.table["gone0"]?.persistent == true)
        #expect(links.table["orphan0"] == nil)
        #expect(links.table["taken0"]?.state.alias == nil)
        #expect(try second.get("taken0").restoreError?.contains("not managed by tund") == true)
        #expect(try second.get("kept0").workerRunning)
        second.shutdown()
    }

    @Test func workerCountsWhatTheDeviceHandsOver() throws {
        let manager = try ready()
        _ = try manager.create(DeviceSpec(name: "tun0", kind: .tun, queues: 2))
        let echoRequest = PacketSamples.ipv4(protocol: 1, payload: 64)
        links.inject(echoRequest, into: "tun0", queue: 0)
        links.inject(echoRequest, into: "tun0", queue: 1)
        links.inject(PacketSamples.ipv4(protocol: 17, payload: 8), into: "tun0", queue: 1)
        links.inject([0x45, 0, 0], into: "tun0", queue: 0)  // truncated
        var counters = try manager.statistics("tun0").worker
        // Waiting on packets_read alone is enough: a queue's counters are published whole, batch by batch.
        for _ in 0..<500 where counters.total[.packetsRead] < 4 {  // at most 5 s, for a loaded machine
            usleep(10_000)
            counters = try manager.statistics("tun0").worker
        }
        #expect(counters.total[.packetsRead] == 4)
        #expect(counters.total[.icmp] == 2 && counters.total[.udp] == 1 && counters.total[.ipv4] == 3)
        #expect(counters.total.dropped == 1)
        #expect(counters.total[.bytesRead] == UInt64(2 * echoRequest.count + 28 + 3))
        #expect(counters.queues.map { $0[.packetsRead] } == [2, 2])
        #expect(counters.lastPacketAt != nil)
        try manager.delete("tun0")
    }
}

@Suite struct LiveChangeTests {
    let links = FakeLinks()
    let store = FakeStore()

    func ready() throws -> DeviceManager {
        let manager = TestPlane.manager(links: links, store: store)
        try manager.restore()
        _ = try manager.create(DeviceSpec(name: "tun0", kind: .tun, mtu: 1400, addresses: [try IPPrefix.parse("10.10.0.1/24").get()]))
        return manager
    }

    @Test func patchAppliesStoresAndBumpsTheGeneration() throws {
        let manager = try ready()
        let updated = try manager.update("tun0", DevicePatch(mtu: 1300), ifMatch: [1])
        #expect(updated.record.generation == 2 && links.table["tun0"]?.state.mtu == 1300)
        #expect(store.records["tun0"]?.spec.mtu == 1300 && store.records["tun0"]?.generation == 2)
        #expect(throws: TundError.preconditionFailed(name: "tun0", current: 2)) { try manager.update("tun0", DevicePatch(mtu: 1200), ifMatch: [1, 3]) }
        // No change, no new generation.
        #expect(try manager.update("tun0", DevicePatch(mtu: 1300)).record.generation == 2)
        manager.shutdown()
    }

    @Test func aStoreFailureUndoesTheKernelChange() throws {
        let manager = try ready()
        store.failUpdate = true
        #expect(throws: TundError.storageFailed("disk full")) { try manager.update("tun0", DevicePatch(mtu: 1300)) }
        #expect(links.table["tun0"]?.state.mtu == 1400)
        #expect(throws: TundError.self) { try manager.addAddress("tun0", try IPPrefix.parse("10.10.0.9/24").get()) }
        #expect(links.table["tun0"]?.addresses.map(\.description) == ["10.10.0.1/24"])
        #expect(try manager.get("tun0").record.generation == 1)
        manager.shutdown()
    }

    @Test func routesGetIDsAndCanBeDeletedByThem() throws {
        let manager = try ready()
        let route = RouteSpec(destination: try IPPrefix.parse("10.30.0.0/16").get(), metric: 5)
        let added = try manager.addRoute("tun0", route)
        let id = try #require(added.record.routes.last?.id)
        #expect(id > 0 && links.table["tun0"]?.routes == [route])
        _ = try manager.deleteRoute("tun0", id: id)
        #expect(links.table["tun0"]?.routes == [])
        #expect(throws: TundError.routeNotFound("device tun0 has no route \(id)")) { try manager.deleteRoute("tun0", id: id) }
        manager.shutdown()
    }

    @Test func idempotentRetryReturnsTheSameDevice() throws {
        let manager = try ready()
        let spec = DeviceSpec(name: "tun1", kind: .tun)
        let first = try manager.create(spec, idempotencyKey: "k1")
        let retry = try manager.create(spec, idempotencyKey: "k1")
        #expect(!first.replayed && retry.replayed && retry.device.record.id == first.device.record.id)
        #expect(throws: TundError.self) { try manager.create(DeviceSpec(name: "tun2", kind: .tun), idempotencyKey: "k1") }
        #expect(links.table["tun2"] == nil)
        manager.shutdown()
    }

    @Test func driftIsRepairedOrReportedByPolicy() throws {
        let manager = try ready()
        links.lock.locked {
            links.table["tun0"]!.state.mtu = 9000
            links.table["tun0"]!.addresses = []
        }
        manager.reconcile(["tun0"])
        #expect(links.table["tun0"]?.state.mtu == 1400 && links.table["tun0"]?.addresses.count == 1)
        let repaired = try manager.get("tun0")
        #expect(repaired.driftRepaired == 1 && repaired.lastDrift?.findings == ["mtu 9000, stored 1400", "address 10.10.0.1/24 missing"])

        _ = try manager.update("tun0", DevicePatch(policy: .report))
        links.lock.locked { links.table["tun0"]!.state.mtu = 9000 }
        manager.reconcile(["tun0"])
        #expect(links.table["tun0"]?.state.mtu == 9000)
        let reported = try manager.get("tun0")
        #expect(reported.driftDetected == 2 && reported.driftRepaired == 1 && reported.lastDrift?.repaired == false)
        manager.shutdown()
    }

    @Test func anOverflowReconcilesEveryDevice() throws {
        let manager = try ready()
        _ = try manager.create(DeviceSpec(name: "tun1", kind: .tun, mtu: 1400))
        let notices = FakeNotices()
        let watcher = DriftWatcher(manager: manager, notices: notices)
        try watcher.start()
        links.lock.locked {
            links.table["tun0"]!.state.mtu = 9000
            links.table["tun1"]!.state.mtu = 9000
        }
        notices.emit(.overflow)
        for _ in 0..<100 where links.lock.locked({ links.table["tun1"]!.state.mtu }) != 1400 { usleep(10_000) }
        #expect(links.table["tun0"]?.state.mtu == 1400 && links.table["tun1"]?.state.mtu == 1400)
        watcher.stop()
        manager.shutdown()
    }

    @Test func eventsAreNumberedAndReplayed() throws {
        let manager = try ready()
        _ = try manager.update("tun0", DevicePatch(mtu: 1300))
        let kinds = manager.events.recent().map(\.kind)
        #expect(kinds == [.created, .workerStarted, .updated])
        let received = Collected()
        _ = manager.events.subscribe(after: 1) { received.append($0); return true }
        #expect(received.items.map(\.sequence) == [2, 3])
        manager.shutdown()
    }
}

final class Collected: @unchecked Sendable {
    let lock = NSLockish()
    var items: [DeviceEvent] = []
    func append(_ event: DeviceEvent) { lock.locked { items.append(event) } }
}

@Suite struct EventLogTests {
    @Test func aClientTooFarBehindGetsResync() {
        let log = EventLog(capacity: 3)
        for _ in 0..<5 { log.publish(.updated, device: "tun0") }
        let received = Collected()
        _ = log.subscribe(after: 1) { received.append($0); return true }
        #expect(received.items.map(\.kind) == [.resync] && received.items.first?.sequence == 5)
        log.publish(.deleted, device: "tun0")
        #expect(received.items.map(\.sequence) == [5, 6])
    }

    @Test func aSubscriberThatRefusesIsDropped() {
        let log = EventLog()
        _ = log.subscribe(after: nil) { _ in false }
        log.publish(.created, device: "a")
        #expect(log.subscriberCount == 0)
    }
}

extension DeviceSpec {
    func with(_ change: (inout DeviceSpec) throws -> Void) rethrows -> DeviceSpec {
        var copy = self
        try change(&copy)
        return copy
    }
}
