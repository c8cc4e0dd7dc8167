#if canImport(Glibc)
import Glibc
#endif
import Errno
import Synchronization

/// Turns kernel notices into reconciliations: collects the devices they concern and, on its own thread,
/// reconciles them a short moment later, so a burst of notices (a device deleted takes its addresses and
/// routes with it) costs one pass. After an overflow (lost notices) it reconciles every device.
public final class DriftWatcher: Sendable {
    private struct Pending {
        var names: Set<String> = []
        var everything = false
        var stopping = false
    }

    private let manager: DeviceManager
    private let notices: any KernelNotices
    private let pending = Mutex(Pending())
    private let wake: (read: Int32, write: Int32)
    private let thread = Mutex<pthread_t?>(nil)
    /// Notices that arrive within this window are handled together.
    static let coalesceMicroseconds: UInt32 = 50_000

    public init(manager: DeviceManager, notices: any KernelNotices) {
        self.manager = manager
        self.notices = notices
        var ends: [Int32] = [0, 0]
        _ = pipe(&ends)
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
        wake = (ends[0], ends[1])
    }

    /// Starts listening; call after restore so the first pass sees a complete state.
    public func start() throws(KernelError) {
        let context = Unmanaged.passRetained(self).toOpaque()
        var created = pthread_t()
        let code = pthread_create(&created, nil, runDriftWatcher, context)
        guard code == 0 else {
            Unmanaged<DriftWatcher>.fromOpaque(context).release()
            throw KernelError(operation: "pthread_create", errno: Errno(code))
        }
        thread.withLock { $0 = created }
        try notices.start { [self] notice in
            guard let names = manager.devicesConcerned(by: notice) else {
                pending.withLock { $0.everything = true }
                signal()
                return
            }
            guard !names.isEmpty else { return }
            pending.withLock { $0.names.formUnion(names) }
            signal()
        }
    }

    public func stop() {
        notices.stop()
        guard let running = thread.withLock({ thread in defer { thread = nil }; return thread }) else { return }
        pending.withLock { $0.stopping = true }
        signal()
        pthread_join(running, nil)
    }

    private func signal() {
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)
    }

    fileprivate func run() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            guard read(wake.read, &buffer, buffer.count) > 0 || errno == EINTR else { return }
            usleep(Self.coalesceMicroseconds)
            let work = pending.withLock { pending in defer { pending = Pending(stopping: pending.stopping) }; return pending }
            if work.stopping { return }
            if work.everything {
                manager.reconcile(nil)
            } else if !work.names.isEmpty {
                manager.reconcile(work.names)
            }
        }
    }

    deinit {
        close(wake.read)
        close(wake.write)
    }
}

private func runDriftWatcher(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<DriftWatcher>.fromOpaque(context!).takeRetainedValue().run()
    return nil
}
