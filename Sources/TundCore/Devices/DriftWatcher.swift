import BackgroundThread
import Synchronization

/// Turns kernel notices into reconciliations: collects the devices they concern and, on its own thread,
/// reconciles them a short moment later, so a burst of notices (a device deleted takes its addresses and
/// routes with it) costs one pass. After an overflow (lost notices) it reconciles every device.
public final class DriftWatcher: Sendable {
    private struct Pending {
        var names: [String: DriftAspects] = [:]
        var everything = false
    }

    private let manager: DeviceManager
    private let notices: any KernelNotices
    private let pending = Mutex(Pending())
    private let thread = Mutex<BackgroundThread?>(nil)
    /// Notices that arrive within this window are handled together.
    static let coalesceMilliseconds: Int32 = 50

    public init(manager: DeviceManager, notices: any KernelNotices) {
        self.manager = manager
        self.notices = notices
    }

    /// Starts listening; call after restore so the first pass sees a complete state.
    public func start() throws(KernelError) {
        let worker: BackgroundThread
        do {
            worker = try BackgroundThread(name: "tund:drift") { [self] thread in run(thread) }
        } catch {
            throw KernelError(operation: "starting the drift watcher thread", errno: error)
        }
        thread.withLock { $0 = worker }
        try notices.start { [self] notice in
            guard let names = manager.devicesConcerned(by: notice) else {
                pending.withLock { $0.everything = true }
                worker.wakeUp()
                return
            }
            guard !names.isEmpty else { return }
            let aspects = DeviceManager.aspects(of: notice)
            pending.withLock { pending in
                for name in names { pending.names[name, default: []].formUnion(aspects) }
            }
            worker.wakeUp()
        }
    }

    public func stop() {
        notices.stop()
        thread.withLock { thread in defer { thread = nil }; return thread }?.stop()
    }

    private func run(_ thread: BackgroundThread) {
        while !thread.isStopping {
            guard thread.waitFor([])?.woken == true else { continue }
            // Let the rest of a burst arrive; stop still ends the wait at once.
            let deadline = ContinuousClock.now + .milliseconds(Self.coalesceMilliseconds)
            while !thread.isStopping, case let left = deadline - ContinuousClock.now, left > .zero {
                thread.wake.drain()
                _ = thread.waitFor([], timeoutMilliseconds: Int32(left.components.attoseconds / 1_000_000_000_000_000) + 1)
            }
            thread.wake.drain()
            if thread.isStopping { return }
            let work = pending.withLock { pending in defer { pending = Pending() }; return pending }
            if work.everything {
                manager.reconcile(nil)
            } else if !work.names.isEmpty {
                manager.reconcile(looking: work.names)
            }
        }
    }
}
