import PacketCounters
import Testing
import TundJSON
@testable import TundAPI
@testable import TundCore

/// The stats answer is written from a template of the counter table (`DeviceJSON.statistics`): every
/// counter must land under its own key, with its own value, in every queue and in the total.
@Suite struct StatisticsJSONTests {
    /// Queue `q`'s counter `c` holds a value no other counter holds.
    func queue(_ q: Int) -> QueueCounterValues {
        var values = QueueCounterValues(queue: q, lastPacketAtNanoseconds: 1_700_000_000_000_000_000)
        for counter in Counter.allCases { values.counts[counter] = UInt64(1_000_000 * (q + 1) + 1000 * counter.rawValue + 7) }
        return values
    }

    func value(_ object: JSONValue?, _ counter: Counter) -> Int64? {
        let (group, key) = counter.json
        return (group.map { object?[$0] } ?? object)?[key]?.integerValue
    }

    @Test func everyCounterIsWrittenUnderItsKeyInEachQueueAndTheTotal() throws {
        let queues = [queue(0), queue(1)]
        let statistics = DeviceStatistics(
            name: "t\"0", worker: WorkerCounters(mode: .count, running: true, queues: queues),
            kernel: KernelCounters(rxPackets: 1, txPackets: 2, rxBytes: 3, txBytes: 4, rxErrors: 5, txErrors: 6, rxDropped: 7,
                                   txDropped: 8, multicast: 9, collisions: UInt64.max),
            driftDetected: 3, driftRepaired: 2)
        let json = try JSONValue.parse(DeviceJSON.statistics(statistics))
        #expect(json["name"]?.stringValue == "t\"0")
        let worker = json["worker"]
        let written = worker?["queues"]?.arrayValue ?? []
        #expect(written.count == 2)
        for counter in Counter.allCases {
            #expect(value(worker, counter) == Int64(queues[0].counts[counter] + queues[1].counts[counter]), "total \(counter)")
            for (index, queue) in queues.enumerated() {
                #expect(value(written[index], counter) == Int64(queue.counts[counter]), "queue \(index) \(counter)")
            }
        }
        let droppedReasons = Counter.allCases.filter { $0.json.group == "dropped_reasons" }
        #expect(written[1]["dropped"]?.integerValue == Int64(droppedReasons.reduce(0) { $0 + queues[1].counts[$1] }))
        #expect(written[1]["queue"]?.integerValue == 1)
        let kernel = json["kernel"]
        #expect(KernelCounters.names.map { kernel?[$0] } ==
            [1, 2, 3, 4, 5, 6, 7, 8, 9].map { JSONValue.integer($0) } + [.count(UInt64.max)])
        #expect(json["drift"] == .object([("detected", .integer(3)), ("repaired", .integer(2))]))
        // Every member once: nothing the table does not name, nothing twice.
        let queueKeys = written[0].objectValue?.map(\.0) ?? []
        #expect(Set(queueKeys).count == queueKeys.count)
    }

    /// An answer larger than the first buffer the writer is given (4 KiB): 16 queues of large counters.
    /// It must come out whole and parse, the same as a small one.
    @Test func anAnswerLargerThanTheFirstBufferIsWhole() throws {
        let queues = (0..<16).map(queue)
        let statistics = DeviceStatistics(name: String(repeating: "n", count: 63),
                                          worker: WorkerCounters(mode: .count, running: true, queues: queues),
                                          kernel: nil, driftDetected: 0, driftRepaired: 0)
        let bytes = DeviceJSON.statistics(statistics)
        #expect(bytes.count > 4096)
        let json = try JSONValue.parse(bytes)
        let written = json["worker"]?["queues"]?.arrayValue ?? []
        #expect(written.count == 16)
        #expect(value(written[15], .packetsRead) == Int64(queues[15].counts[.packetsRead]))
        #expect(json["drift"] == .object([("detected", .integer(0)), ("repaired", .integer(0))]))
    }
}
