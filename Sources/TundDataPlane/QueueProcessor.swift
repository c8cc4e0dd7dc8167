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
    let receiver: (any DatagramReceiver)?
    let health: WorkerHealth

    init(queue: Int, device: any PacketDevice, kind: DeviceKind, vnetHeader: Bool, mode: any PacketMode,
         counters: QueueCounters, tap: (any PacketTap)?, receiver: (any DatagramReceiver)?, health: WorkerHealth) {
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
        serveReceiver { $0.receive(scratch, into: device, &$1) }
    }

    /// The worker's timer fired (wireguard: a peer's deadline, or the control plane changed the peers).
    func timerReady(_ scratch: Scratch) -> Outcome {
        serveReceiver { $0.timerFired(scratch, into: device, &$1) }
    }

    /// One round of the socket's (or timer's) receiver, counted on this queue.
    private func serveReceiver(_ body: (any DatagramReceiver, inout BatchTally) -> Void) -> Outcome {
        guard !health.failed.load(ordering: .relaxed), let receiver else { return .remove }
        var tally = BatchTally()
        body(receiver, &tally)
        counters.publish(&tally, at: realtimeNanoseconds())
        return .carryOn
    }
}

/// What serves a worker's UDP socket (and timer, for modes with one), on the thread of queue 0, writing
/// what arrives into queue 0's device.
protocol DatagramReceiver: AnyObject {
    func receive(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally)
    func timerFired(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally)
}

extension DatagramReceiver {
    func timerFired(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally) {}
}

/// Nanoseconds since the Unix epoch, for counters and capture records.
@inline(__always)
func realtimeNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
