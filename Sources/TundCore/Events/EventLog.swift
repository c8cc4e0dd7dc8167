import Synchronization

/// One thing that happened to a device, numbered in the order it happened.
public struct DeviceEvent: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case created = "device.created", updated = "device.updated", deleted = "device.deleted"
        case driftDetected = "drift.detected", driftRepaired = "drift.repaired"
        case workerStarted = "worker.started", workerStopped = "worker.stopped", workerFailed = "worker.failed"
        case linkUp = "link.up", linkDown = "link.down"
        /// The device's network namespace is gone (the container exited, `ip netns del`).
        case namespaceMissing = "namespace.missing"
        /// A wireguard peer completed a handshake / has no usable session any more.
        case peerHandshake = "peer.handshake", peerStale = "peer.stale"
        /// Sent to a reconnecting client whose missed events fell out of the ring: refetch the state.
        case resync
    }

    /// Strictly increasing from 1 for the life of the process.
    public let sequence: UInt64
    public let kind: Kind
    public let device: String?
    public let at: String
    public let detail: [(String, String)]

    public static func == (a: DeviceEvent, b: DeviceEvent) -> Bool {
        a.sequence == b.sequence && a.kind == b.kind && a.device == b.device && a.at == b.at
            && a.detail.map { "\($0.0)=\($0.1)" } == b.detail.map { "\($0.0)=\($0.1)" }
    }
}

/// The recent events in a bounded ring, and the live subscribers they fan out to.
///
/// A subscriber that reconnects with the last sequence it saw gets what it missed, if the ring still holds
/// it, or a `resync` event. Delivery happens under the log's lock, so every subscriber sees events in
/// sequence order and a backlog never interleaves with live events; `deliver` must be quick and must
/// not call back into the log (the HTTP layer only appends to a buffer).
public final class EventLog: Sendable {
    public typealias Deliver = @Sendable (DeviceEvent) -> Bool

    private struct State {
        var ring: [DeviceEvent] = []
        var nextSequence: UInt64 = 1
        var subscribers: [UInt64: Deliver] = [:]
        var nextSubscriber: UInt64 = 1
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 1024) {
        self.capacity = capacity
    }

    @discardableResult
    public func publish(_ kind: DeviceEvent.Kind, device: String?, _ detail: [(String, String)] = []) -> UInt64 {
        state.withLock { state in
            let event = DeviceEvent(sequence: state.nextSequence, kind: kind, device: device, at: Timestamp.now(), detail: detail)
            state.nextSequence += 1
            state.ring.append(event)
            if state.ring.count > capacity { state.ring.removeFirst(state.ring.count - capacity) }
            // A subscriber whose buffer is full or closed answers false and is dropped; it reconnects.
            for (id, deliver) in state.subscribers where !deliver(event) { state.subscribers[id] = nil }
            return event.sequence
        }
    }

    /// Registers `deliver` for every event after `lastSeen` (nil: only new ones). Missed events still in
    /// the ring are delivered first; if some fell out, a `resync` event comes first instead, numbered like
    /// the newest event so a client resuming from it misses nothing more.
    public func subscribe(after lastSeen: UInt64?, _ deliver: @escaping Deliver) -> UInt64 {
        state.withLock { state in
            // An id from the future was given by an earlier process (numbering restarts with tund): the
            // client's view is of another life of the daemon, so it must resync too.
            if let lastSeen, lastSeen + 1 < state.nextSequence || lastSeen >= state.nextSequence {
                let oldest = state.ring.first?.sequence ?? state.nextSequence
                if lastSeen + 1 < oldest || lastSeen >= state.nextSequence {
                    _ = deliver(DeviceEvent(sequence: state.nextSequence - 1, kind: .resync, device: nil, at: Timestamp.now(),
                                            detail: [("oldest_available", "\(oldest)"), ("last_seen", "\(lastSeen)")]))
                } else {
                    for event in state.ring where event.sequence > lastSeen { _ = deliver(event) }
                }
            }
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = deliver
            return id
        }
    }

    public func unsubscribe(_ id: UInt64) {
        state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Events currently in the ring, oldest first.
    public func recent() -> [DeviceEvent] { state.withLock { $0.ring } }
}
