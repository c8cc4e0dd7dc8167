#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One device's packet worker: a thread per queue reading the queue's descriptor.
///
/// Each thread sleeps in `poll` on its queue and on a stop pipe; when woken it reads every packet that is
/// ready (non-blocking, up to `batchLimit`), classifies and counts them, publishes the batch's counts, and
/// sleeps again. `stop` writes to a pipe every thread polls and joins the threads, so a blocked read never holds a DELETE.
public final class PacketWorker: Sendable {
    public let mode: WorkerMode
    private let loops: [QueueLoop]
    private let threads: Mutex<[pthread_t]>
    /// A pipe: writing its end wakes every queue thread, which poll its read end.
    private let stopSignal: (read: Int32, write: Int32)

    /// Starts one thread per descriptor. The descriptors stay owned by the caller and must outlive `stop`.
    public init(mode: WorkerMode, kind: DeviceKind, descriptors: [Int32], capture: CaptureHub = CaptureHub()) throws(KernelError) {
        self.mode = mode
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            throw KernelError(operation: "pipe", errno: errno, errnoName: "errno \(errno)")
        }
        for end in pipeEnds {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        stopSignal = (pipeEnds[0], pipeEnds[1])
        loops = descriptors.enumerated().map { QueueLoop(queue: $0.offset, descriptor: $0.element, stopSignal: pipeEnds[0], kind: kind, capture: capture) }
        var started: [pthread_t] = []
        for loop in loops {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(loop).toOpaque()
            let code = pthread_create(&thread, nil, runQueueLoop, context)
            guard code == 0 else {
                Unmanaged<QueueLoop>.fromOpaque(context).release()
                threads = Mutex(started)
                stop()
                throw KernelError(operation: "pthread_create", errno: code, errnoName: "errno \(code)")
            }
            started.append(thread)
        }
        threads = Mutex(started)
    }

    /// Wakes every queue thread and waits for it to finish. Idempotent.
    public func stop() {
        var one: UInt8 = 1
        _ = write(stopSignal.write, &one, 1)
        let joining = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        for thread in joining { pthread_join(thread, nil) }
    }

    public var isRunning: Bool { threads.withLock { !$0.isEmpty } }

    public func counters() -> WorkerCounters {
        WorkerCounters(mode: mode, running: isRunning, queues: loops.map { $0.counters.snapshot(queue: $0.queue) })
    }

    deinit {
        stop()
        close(stopSignal.read)
        close(stopSignal.write)
    }
}

/// The state of one queue's thread.
final class QueueLoop: Sendable {
    let queue: Int
    let descriptor: Int32
    let stopSignal: Int32
    let kind: DeviceKind
    let capture: CaptureHub
    let counters = QueueCounters()
    /// Packets read per wakeup before the stop signal is looked at again.
    static let batchLimit = 512
    /// Large enough for any frame: 65535 bytes of MTU plus Ethernet and VLAN headers.
    static let bufferSize = 65536 + 64

    init(queue: Int, descriptor: Int32, stopSignal: Int32, kind: DeviceKind, capture: CaptureHub) {
        self.queue = queue
        self.descriptor = descriptor
        self.stopSignal = stopSignal
        self.kind = kind
        self.capture = capture
    }

    func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var fds = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: stopSignal, events: Int16(POLLIN), revents: 0)]
        var tally = BatchTally()
        var failing = false
        while true {
            // After a read error that is not EAGAIN (device gone, EBADFD), wait on the stop signal with a
            // timeout instead of spinning on a descriptor that stays readable-with-error.
            let ready = failing ? poll(&fds[1], 1, 100) : poll(&fds, 2, -1)
            if ready < 0 && errno != EINTR { tally.readErrors &+= 1 }
            if fds[1].revents != 0 { return }
            failing = false
            // One relaxed load per wakeup: capture costs nothing while no one captures.
            let capturing = capture.active.load(ordering: .relaxed) > 0
            for _ in 0..<Self.batchLimit {
                let count = read(descriptor, buffer.baseAddress, buffer.count)
                if count > 0 {
                    let packet = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                    tally.count(PacketClassifier.classify(packet, kind: kind), bytes: count)
                    if capturing { capture.deliver(packet, at: Self.now()) }
                    continue
                }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { break }
                tally.readErrors &+= 1
                failing = true
                break
            }
            counters.publish(&tally, at: Self.now())
        }
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

/// pthread entry point; a free function so no actor isolation leaks into a foreign thread.
private func runQueueLoop(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let loop = Unmanaged<QueueLoop>.fromOpaque(context!).takeRetainedValue()
    loop.run()
    return nil
}
