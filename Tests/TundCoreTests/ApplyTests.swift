import NetAddress
import Testing
import TundFakes
@testable import TundCore

/// `PUT /devices` and worker mode none, against the in-memory kernel and store.
@Suite struct ApplyTests {
    let links = FakeLinks()
    let store = FakeStore()

    func ready() throws -> DeviceManager {
        let manager = TestPlane.manager(links: links, store: store)
        try manager.restore()
        return manager
    }

    func spec(_ name: String, mtu: Int = 1500, third: Int) throws -> DeviceSpec {
        DeviceSpec(name: name, kind: .tun, mtu: mtu, addresses: [try IPPrefix.parse("10.50.\(third).1/24").get()],
                   routes: [RouteSpec(destination: try IPPrefix.parse("10.51.\(third).0/24").get())])
    }

    /// What the kernel and the store hold, to show that something did not change.
    func snapshot() -> String {
        let kernel = links.table.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.state.index):\($0.value.state.mtu):\($0.value.addresses):\($0.value.routes.count)" }
        let rows = store.records.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.generation):\($0.value.spec.mtu)" }
        return "\(kernel) \(rows)"
    }

    @Test func aDryRunPlansAndTouchesNothing() throws {
        let manager = try ready()
        for (name, third) in [("a", 1), ("b", 2), ("c", 3)] { _ = try manager.create(try spec(name, third: third)) }
        let before = snapshot()
        let tag = manager.collectionTag
        let (plan, answeredTag) = try manager.apply([try spec("a", third: 1), try spec("b", mtu: 1400, third: 2), try spec("d", third: 4)],
                                                    dryRun: true, allowRecreate: false)
        #expect(plan.create == ["d"] && plan.update == ["b"] && plan.delete == ["c"] && plan.unchanged == ["a"] && plan.recreate.isEmpty)
        #expect(snapshot() == before && answeredTag == tag && manager.collectionTag == tag)
        manager.shutdown()
    }

    @Test func applyMakesExactlyTheSetAndAnIdenticalOneChangesNothing() throws {
        let manager = try ready()
        for (name, third) in [("a", 1), ("b", 2), ("c", 3)] { _ = try manager.create(try spec(name, third: third)) }
        let indexOfB = links.table["b"]!.state.index
        let declared = [try spec("a", third: 1), try spec("b", mtu: 1400, third: 2), try spec("d", third: 4)]
        let (_, tag) = try manager.apply(declared, dryRun: false, allowRecreate: false)
        #expect(links.table.keys.sorted() == ["a", "b", "d"] && store.records.keys.sorted() == ["a", "b", "d"])
        #expect(links.table["b"]!.state.mtu == 1400 && links.table["b"]!.state.index == indexOfB)
        #expect(store.records["b"]!.spec.mtu == 1400 && store.records["b"]!.generation == 2)
        #expect(links.table["d"]!.persistent && links.table["d"]!.addresses.map(\.description) == ["10.50.4.1/24"])
        #expect(links.table["d"]!.routes.count == 1 && links.table["d"]!.state.alias == manager.ownerAlias)
        #expect(try manager.get("d").workerRunning)

        let before = snapshot()
        let (again, sameTag) = try manager.apply(declared, dryRun: false, allowRecreate: false)
        #expect(again.unchanged == ["a", "b", "d"] && again.isEmpty)
        #expect(snapshot() == before && sameTag == tag)
        manager.shutdown()
    }

    @Test func aStaleTagAndAnInvalidMemberChangeNothing() throws {
        let manager = try ready()
        let (_, tag) = try manager.apply([try spec("a", third: 1)], dryRun: false, allowRecreate: false)
        _ = try manager.create(try spec("b", third: 2))
        let before = snapshot()
        #expect(throws: TundError.collectionChanged(current: manager.collectionTag)) {
            try manager.apply([try spec("a", third: 1)], dryRun: false, allowRecreate: false, ifMatch: [tag])
        }
        let members = [try spec("a", third: 1), try spec("x", mtu: 10, third: 9)]
        do throws(TundError) {
            _ = try manager.apply(members, dryRun: false, allowRecreate: false)
            Issue.record("an invalid member was accepted")
        } catch {
            guard case .invalidField(let field, let reason) = error else { Issue.record("\(error)"); return }
            #expect(field == "devices[1].mtu" && reason.contains("device x"))
        }
        #expect(snapshot() == before)
        manager.shutdown()
    }

    @Test func aTypeChangeNeedsRecreateAndThenGetsANewLink() throws {
        let manager = try ready()
        _ = try manager.apply([try spec("a", third: 1)], dryRun: false, allowRecreate: false)
        let index = links.table["a"]!.state.index
        let asTap = try spec("a", third: 1).with { $0.kind = .tap }
        #expect(throws: TundError.notLiveChangeable(field: "devices[0].type",
                                                    reason: "device a: type cannot change on a live device; apply with ?recreate=true to delete and re-create it")) {
            try manager.apply([asTap], dryRun: false, allowRecreate: false)
        }
        let (plan, _) = try manager.apply([asTap], dryRun: false, allowRecreate: true)
        #expect(plan.recreate == ["a"] && links.table["a"]!.state.index != index && store.records["a"]!.spec.kind == .tap)
        manager.shutdown()
    }

    @Test func aKernelFailureMidwayLeavesTheOldState() throws {
        let manager = try ready()
        _ = try manager.apply([try spec("a", third: 1)], dryRun: false, allowRecreate: false)
        let before = snapshot()
        links.fail("addRoute", .EEXIST)
        #expect(throws: (any Error).self) {
            try manager.apply([try spec("a", mtu: 1400, third: 1), try spec("n", third: 5)], dryRun: false, allowRecreate: false)
        }
        #expect(snapshot() == before, "the new device or the live change survived a failed apply")
        manager.shutdown()
    }

    @Test func aDeviceHandedToItsOwnerIsKeptButNotHeld() throws {
        let manager = try ready()
        let made = try manager.create(try spec("own0", third: 7).with { $0.workerMode = .none; $0.owner = 1000 }).device
        #expect(!made.workerRunning)
        #expect(links.table["own0"]!.persistent && links.table["own0"]!.openCount == 0)
        manager.shutdown()
        // A restart converges it without opening it, and the owner's counters come from the kernel.
        let again = try ready()
        #expect(links.table["own0"]!.openCount == 0 && links.table["own0"]!.routes.count == 1)
        #expect(try again.statistics("own0").worker.mode == .none)
        // Taking it back attaches a worker; handing it over again lets go.
        _ = try again.update("own0", DevicePatch(worker: WorkerConfiguration(mode: .count)))
        let taken = try again.get("own0")
        #expect(links.table["own0"]!.openCount == 1 && taken.workerRunning)
        _ = try again.update("own0", DevicePatch(worker: WorkerConfiguration(mode: .none)))
        #expect(links.table["own0"]!.openCount == 0 && links.table["own0"]!.persistent)
        try again.delete("own0")
        #expect(links.table["own0"] == nil)
        again.shutdown()
    }

    @Test func noticesFindTheirDeviceByIndex() throws {
        let manager = try ready()
        _ = try manager.create(try spec("a", third: 1))
        let index = links.table["a"]!.state.index
        #expect(manager.devicesConcerned(by: .address(index: index)) == ["a"])
        #expect(manager.devicesConcerned(by: .route(index: index + 1000)) == [])
        #expect(manager.devicesConcerned(by: .link(name: "a", index: 0, up: true, deleted: false)) == ["a"])
        #expect(DeviceManager.aspects(of: .link(name: "a", index: index, up: true, deleted: false)) == [])
        manager.shutdown()
    }
}
