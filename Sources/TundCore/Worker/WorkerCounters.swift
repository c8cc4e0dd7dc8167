@_exported import PacketCounters

/// A worker's counters: the sum over its queues, and each queue.
public struct WorkerCounters: Equatable, Sendable {
    public var mode: WorkerMode
    public var running: Bool
    public var total: QueueCounterValues
    public var queues: [QueueCounterValues]

    public init(mode: WorkerMode, running: Bool, queues: [QueueCounterValues]) {
        self.mode = mode
        self.running = running
        self.queues = queues
        var total = QueueCounterValues(queue: -1)
        for queue in queues {
            total.counts.add(queue.counts)
            total.lastPacketAtNanoseconds = max(total.lastPacketAtNanoseconds, queue.lastPacketAtNanoseconds)
        }
        self.total = total
    }
}
