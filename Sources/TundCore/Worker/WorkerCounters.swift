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
        var total = QueueCounterValues(queue: -1, packetsRead: 0, bytesRead: 0, packetsWritten: 0, bytesWritten: 0,
                                       readErrors: 0, writeErrors: 0, dropped: 0, droppedMalformed: 0, droppedIgnored: 0,
                                       droppedUnexpectedSource: 0, peer: PeerCounters(), protocols: ProtocolCounts(),
                                       lastPacketAtNanoseconds: 0)
        for queue in queues {
            total.packetsRead &+= queue.packetsRead
            total.bytesRead &+= queue.bytesRead
            total.packetsWritten &+= queue.packetsWritten
            total.bytesWritten &+= queue.bytesWritten
            total.readErrors &+= queue.readErrors
            total.writeErrors &+= queue.writeErrors
            total.dropped &+= queue.dropped
            total.droppedMalformed &+= queue.droppedMalformed
            total.droppedIgnored &+= queue.droppedIgnored
            total.droppedUnexpectedSource &+= queue.droppedUnexpectedSource
            total.peer = total.peer + queue.peer
            total.protocols = total.protocols + queue.protocols
            total.lastPacketAtNanoseconds = max(total.lastPacketAtNanoseconds, queue.lastPacketAtNanoseconds)
        }
        self.total = total
    }
}
