#if canImport(Glibc)
import Glibc
#endif
import PacketCounters
import Synchronization

/// One device's worker in the data plane: its queues' counters, and where its descriptors are registered.
public final class PlaneWorker: Sendable {
    public let name: String
    private let counters: [QueueCounters]
    private let health: WorkerHealth
    /// Where each descriptor sits, and the tunnel's socket (-1 in other modes, and once stopped).
    private let state: Mutex<(registrations: [(thread: PlaneThread, token: UInt64)], socket: Int32, stopped: Bool)>
    /// The peers of a `wireguard` worker, for the control plane; nil in other modes.
    public let wireGuard: WireGuardControl?

    init(name: String, counters: [QueueCounters], socket: Int32, health: WorkerHealth, wireGuard: WireGuardControl? = nil) {
        self.name = name
        self.counters = counters
        self.health = health
        self.wireGuard = wireGuard
        state = Mutex(([], socket, false))
    }

    func registered(_ thread: PlaneThread, _ token: UInt64) {
        state.withLock { $0.registrations.append((thread, token)) }
    }

    /// Takes every descriptor out of the loops (each is out when this returns) and closes the tunnel's
    /// socket, so its port is free at once for a successor. Idempotent; never call it from `onFailure`.
    public func stop() {
        let (registrations, socket) = state.withLock { state in
            defer { state = ([], -1, true) }
            return (state.registrations, state.socket)
        }
        for (thread, token) in registrations { thread.remove(token) }
        if socket >= 0 { close(socket) }
        // Out of every loop now: the wireguard socket (its port free for a successor) and timer close.
        wireGuard?.engine.shutdown()
    }

    /// False once stopped, or once it stopped by itself (see `WorkerSpec.onFailure`).
    public var isRunning: Bool { !state.withLock { $0.stopped } && !health.failed.load(ordering: .acquiring) }

    public func queueCounters() -> [QueueCounterValues] {
        counters.enumerated().map { $0.element.snapshot(queue: $0.offset) }
    }

    deinit { stop() }
}

/// A worker's failure, shared by its queues: the first to fail reports once; every queue then leaves its loop.
final class WorkerHealth: Sendable {
    let failed = Atomic<Bool>(false)
    private let report: @Sendable (String) -> Void

    init(report: @escaping @Sendable (String) -> Void) {
        self.report = report
    }

    func fail(_ reason: String) {
        guard failed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        report(reason)
    }
}
