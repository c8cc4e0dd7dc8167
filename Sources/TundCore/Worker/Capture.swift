import BackgroundThread
import Synchronization

/// Packet capture: copies of what a device's worker reads, written as a pcap file (libpcap format,
/// microsecond timestamps) that `tcpdump -r` and `tshark -r` read.
///
/// A device's worker threads look at `CaptureHub.active` once per batch; while it is zero they do
/// nothing more, so capture costs nothing when no one is capturing.
public final class CaptureHub: Sendable {
    let active = Atomic<Int>(0)
    private let sessions = Mutex<[ObjectIdentifier: CaptureSession]>([:])

    public init() {}

    func add(_ session: CaptureSession) {
        sessions.withLock { $0[ObjectIdentifier(session)] = session }
        active.add(1, ordering: .releasing)
        session.hub.withLock { $0 = self }
    }

    func remove(_ session: CaptureSession) {
        let removed = sessions.withLock { $0.removeValue(forKey: ObjectIdentifier(session)) }
        if removed != nil { active.subtract(1, ordering: .releasing) }
    }

    /// Whether anyone captures: a worker looks once per batch.
    public var isActive: Bool { active.load(ordering: .relaxed) > 0 }

    /// Called by a worker thread for each packet while `isActive`.
    public func deliver(_ packet: UnsafeRawBufferPointer, at nanoseconds: UInt64) {
        for session in sessions.withLock({ Array($0.values) }) { _ = session.record(packet, at: nanoseconds) }
    }

    /// Ends every capture (the device is going away).
    func finishAll() {
        for session in sessions.withLock({ Array($0.values) }) { session.finish() }
    }
}

/// One client's capture: at most `limit` packets, written through `sink` as pcap records after a pcap
/// file header. `sink` returns false when the client is gone; the session then ends.
public final class CaptureSession: Sendable {
    private struct State {
        var captured = 0
        var finished = false
    }

    public let limit: Int
    private let state = Mutex(State())
    /// The hub delivering to this session; it lets go of the session when the session ends.
    let hub = Mutex<CaptureHub?>(nil)
    private let sink: @Sendable ([UInt8]) -> Bool
    private let onFinish: @Sendable () -> Void

    /// pcap LINKTYPE_RAW (101): bare IPv4/IPv6 packets, as a TUN device carries them.
    public static let linkTypeRaw: UInt32 = 101
    /// pcap LINKTYPE_ETHERNET (1): Ethernet frames, as a TAP device carries them.
    public static let linkTypeEthernet: UInt32 = 1
    public static let snapLength: UInt32 = 65535

    init(limit: Int, kind: DeviceKind, sink: @escaping @Sendable ([UInt8]) -> Bool, onFinish: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.sink = sink
        self.onFinish = onFinish
        _ = sink(Self.fileHeader(linkType: kind == .tun ? Self.linkTypeRaw : Self.linkTypeEthernet))
    }

    /// The 24-byte pcap global header: magic 0xa1b2c3d4 (microseconds), version 2.4, snaplen, link type.
    public static func fileHeader(linkType: UInt32) -> [UInt8] {
        bytes(UInt32(0xa1b2_c3d4)) + bytes(UInt16(2)) + bytes(UInt16(4)) + bytes(Int32(0)) + bytes(UInt32(0))
            + bytes(snapLength) + bytes(linkType)
    }

    /// A 16-byte record header (seconds, microseconds, captured length, original length) and the packet.
    public static func packetRecord(_ packet: UnsafeRawBufferPointer, at nanoseconds: UInt64) -> [UInt8] {
        let captured = min(packet.count, Int(snapLength))
        var record = bytes(UInt32(truncatingIfNeeded: nanoseconds / 1_000_000_000))
            + bytes(UInt32(truncatingIfNeeded: nanoseconds / 1000 % 1_000_000))
            + bytes(UInt32(captured)) + bytes(UInt32(packet.count))
        record += UnsafeRawBufferPointer(rebasing: packet[0..<captured])
        return record
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    /// Records one packet; false once the session is over (limit reached, client gone, finished).
    func record(_ packet: UnsafeRawBufferPointer, at nanoseconds: UInt64) -> Bool {
        let (keep, done) = state.withLock { state -> (Bool, Bool) in
            guard !state.finished else { return (false, false) }
            guard sink(Self.packetRecord(packet, at: nanoseconds)) else {
                state.finished = true
                return (false, true)
            }
            state.captured += 1
            if state.captured >= limit {
                state.finished = true
                return (false, true)
            }
            return (true, false)
        }
        if done { ended() }
        return keep
    }

    /// Ends the capture (timeout, device deleted, client gone). Idempotent.
    public func finish() {
        let first = state.withLock { state in
            defer { state.finished = true }
            return !state.finished
        }
        if first { ended() }
    }

    /// Lets go of the hub and tells the owner.
    private func ended() {
        hub.withLock { hub in defer { hub = nil }; return hub }?.remove(self)
        onFinish()
    }

    public var isFinished: Bool { state.withLock { $0.finished } }

    public var capturedCount: Int { state.withLock { $0.captured } }
}

/// The captures' timeouts, on one thread for all of them: it sleeps until the nearest deadline and
/// finishes the sessions that reach theirs. A capture costs no thread of its own.
final class CaptureTimer: Sendable {
    private struct State {
        var deadlines: [(at: ContinuousClock.Instant, session: CaptureSession)] = []
        var thread: BackgroundThread?
    }

    private let state = Mutex(State())

    /// Finishes `session` after `seconds` unless it ends sooner.
    func schedule(_ session: CaptureSession, seconds: Int) throws(Errno) {
        let thread = try state.withLock { (state) throws(Errno) -> BackgroundThread in
            state.deadlines.append((ContinuousClock.now + .seconds(seconds), session))
            if let thread = state.thread { return thread }
            let thread = try BackgroundThread(name: "tund:capture") { [self] thread in run(thread) }
            state.thread = thread
            return thread
        }
        thread.wakeUp()
    }

    func stop() {
        state.withLock { state in defer { state.thread = nil }; return state.thread }?.stop()
    }

    private func run(_ thread: BackgroundThread) {
        while !thread.isStopping {
            let now = ContinuousClock.now
            let (due, next) = state.withLock { state in
                let due = state.deadlines.filter { $0.at <= now }.map(\.session)
                state.deadlines.removeAll { $0.at <= now || $0.session.isFinished }
                return (due, state.deadlines.map(\.at).min())
            }
            due.forEach { $0.finish() }
            let wait = next.map { Int32(clamping: ($0 - now).components.seconds * 1000 + ($0 - now).components.attoseconds / 1_000_000_000_000_000 + 1) } ?? -1
            _ = thread.waitFor([], timeoutMilliseconds: wait)
            thread.wake.drain()
        }
    }
}
