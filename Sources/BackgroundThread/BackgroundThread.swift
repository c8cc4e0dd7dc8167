#if canImport(Glibc)
import Glibc
#endif
import CBatchIO
import Errno
import Synchronization

/// A descriptor that wakes a thread sleeping in `poll`: the read end of a pipe, non-blocking, close-on-exec.
/// `raise` makes it readable; `drain` empties it again. A signal that is never drained (a stop) stays
/// readable, so it wakes every thread that polls it, however many.
public final class WakeSignal: Sendable {
    public let descriptor: Int32
    private let writeEnd: Int32

    public init() throws(Errno) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw Errno.current }
        for end in ends {
            guard fcntl(end, F_SETFD, FD_CLOEXEC) == 0, fcntl(end, F_SETFL, O_NONBLOCK) == 0 else {
                let failure = Errno.current
                close(ends[0])
                close(ends[1])
                throw failure
            }
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    public func raise() {
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)  // EAGAIN: the pipe is full, so already readable
    }

    public func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(descriptor, &buffer, buffer.count) > 0 {}
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }
}

/// A named thread that runs one loop until stopped: the one way the daemon runs work in the background
/// (start, wake, join). The loop sleeps in `poll` on its own descriptors plus `wake.descriptor`, and
/// returns once `isStopping` is true. `stop` sets that, wakes the loop and joins it.
public final class BackgroundThread: Sendable {
    public let wake: WakeSignal
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)

    /// Starts `body` on a new thread named `name` (15 bytes show in `top -H`). `wake`: a signal shared
    /// with other threads (all stopped together), or a fresh one.
    public init(name: String, wake: WakeSignal? = nil, _ body: @escaping @Sendable (BackgroundThread) -> Void) throws(Errno) {
        if let wake { self.wake = wake } else { self.wake = try WakeSignal() }
        let context = Unmanaged.passRetained(ThreadStart(name: name, owner: self, body: body)).toOpaque()
        // Created under the lock, so a `stop` racing with a loop that ends at once still finds it to join.
        let code = thread.withLock { thread in
            var created = pthread_t()
            let code = pthread_create(&created, nil, runBackgroundThread, context)
            if code == 0 { thread = created }
            return code
        }
        guard code == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(context).release()
            throw Errno(code)
        }
    }

    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Wakes the loop (new work); it drains `wake` itself.
    public func wakeUp() { wake.raise() }

    /// Stops the loop and waits for it. Idempotent; never call it from the loop itself.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.raise()
        if let running = thread.withLock({ thread in defer { thread = nil }; return thread }) { pthread_join(running, nil) }
    }

    /// Sleeps in `poll` on `descriptors` and the wake signal (last), retrying on EINTR. Returns the descriptors' events
    /// in order, and whether the wake signal fired; nil on timeout.
    public func waitFor(_ descriptors: [(fd: Int32, events: Int16)], timeoutMilliseconds: Int32 = -1) -> (events: [Int16], woken: Bool)? {
        var fds = descriptors.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        fds.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0))
        while true {
            let ready = Glibc.poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { return nil }
            return (fds.dropLast().map(\.revents), fds[fds.count - 1].revents != 0)
        }
    }
}

private final class ThreadStart {
    let name: String
    let owner: BackgroundThread
    let body: @Sendable (BackgroundThread) -> Void

    init(name: String, owner: BackgroundThread, body: @escaping @Sendable (BackgroundThread) -> Void) {
        self.name = name
        self.owner = owner
        self.body = body
    }
}

private func runBackgroundThread(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue()
    tund_set_thread_name(start.name)
    start.body(start.owner)
    return nil
}
