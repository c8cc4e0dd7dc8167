#if canImport(Glibc)
import Glibc
#endif

/// One device queue as a data-plane thread serves it: when the queue is readable, read what is waiting
/// (a bounded batch), count and capture it, hand it to the mode, publish the batch's counts once. A
/// tunnel's socket is served by the thread of queue 0, through the same processor.
final class QueueProcessor {
    let queue: Int
    let device: any PacketDevice
    let kind: DeviceKind
    let prefix: Int
    let mode: any PacketMode
    let counters: QueueCounters
    let tap: (any PacketTap)?
    let receiver: TunnelReceiver?
    let health: WorkerHealth

    init(queue: Int, device: any PacketDevice, kind: DeviceKind, vnetHeader: Bool, mode: any PacketMode,
         counters: QueueCounters, tap: (any PacketTap)?, receiver: TunnelReceiver?, health: WorkerHealth) {
        self.queue = queue
        self.device = device
        self.kind = kind
        prefix = vnetHeader ? VirtioNetHeader.size : 0
        self.mode = mode
        self.counters = counters
        self.tap = tap
        self.receiver = receiver
        self.health = health
    }

    enum Outcome { case carryOn, remove }

    /// The queue is readable. `.remove` takes it out of its thread's loop: the worker failed, or the device
    /// is gone (a descriptor that stays readable-with-error must not spin the thread).
    func deviceReady(_ scratch: Scratch) -> Outcome {
        guard !health.failed.load(ordering: .relaxed) else { return .remove }
        var tally = BatchTally()
        // One relaxed load per wakeup: capture costs nothing while no one captures.
        let capturing = tap?.isActive ?? false
        var filled = 0
        var gone = false
        while filled < Scratch.batchLimit {
            let count = device.read(into: scratch.slot(filled))
            if count <= 0 {
                if count < 0 {
                    tally[.readErrors] &+= 1
                    gone = true
                }
                break
            }
            if count <= prefix {
                tally[.droppedMalformed] &+= 1  // a read shorter than the virtio header
                continue
            }
            let packet = UnsafeRawBufferPointer(rebasing: scratch.slot(filled)[prefix..<count])
            let kind = PacketClassifier.classify(packet, kind: self.kind)
            tally.count(kind, bytes: packet.count)
            if capturing { tap?.deliver(packet, at: realtimeNanoseconds()) }
            if kind.malformed { continue }
            scratch.lengths[filled] = count
            filled += 1
        }
        let verdict = filled > 0 ? mode.handle(ReadBatch(scratch: scratch, count: filled, prefix: prefix), device, &tally) : .carryOn
        counters.publish(&tally, at: realtimeNanoseconds())
        if case .fail(let reason) = verdict {
            health.fail(reason)
            return .remove
        }
        return gone ? .remove : .carryOn
    }

    /// The tunnel's socket is readable.
    func socketReady(_ scratch: Scratch) -> Outcome {
        guard !health.failed.load(ordering: .relaxed), let receiver else { return .remove }
        var tally = BatchTally()
        receiver.receive(scratch, into: device, &tally)
        counters.publish(&tally, at: realtimeNanoseconds())
        return .carryOn
    }
}

/// Nanoseconds since the Unix epoch, for counters and capture records.
@inline(__always)
func realtimeNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
