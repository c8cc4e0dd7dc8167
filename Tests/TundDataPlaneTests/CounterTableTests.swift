import Foundation
import PacketCounters
import Testing
@testable import TundDataPlane

/// The counter table is the one place a counter is declared: everything that shows counters iterates it.
@Suite struct CounterTableTests {
    @Test func everyCounterFitsAndIsShownSomewhere() {
        #expect(Counter.allCases.count <= Counter.capacity)
        for counter in Counter.allCases {
            #expect(Counter.metricHelp[counter.metric.family] != nil, "\(counter) has a metric family without help")
        }
        let places = Counter.allCases.map { "\($0.json.group ?? "-").\($0.json.key)" }
        #expect(Set(places).count == places.count, "two counters share a JSON place")
        let samples = Counter.allCases.map { "\($0.metric.family){\($0.metric.label.name)=\($0.metric.label.value)}" }
        #expect(Set(samples).count == samples.count, "two counters share a metric sample")
    }

    @Test func publishedBatchesAddUpAndDroppedSumsItsReasons() {
        let counters = QueueCounters()
        var tally = BatchTally()
        tally[.packetsRead] = 3
        tally[.droppedMalformed] = 1
        tally[.droppedUnexpectedSource] = 2
        counters.publish(&tally, at: 42)
        #expect(tally.counts == CounterTable())  // publishing starts the next batch from zero
        tally[.packetsRead] = 2
        counters.publish(&tally, at: 43)
        let values = counters.snapshot(queue: 0)
        #expect(values[.packetsRead] == 5 && values.dropped == 3 && values.lastPacketAtNanoseconds == 43)
        #expect((values.counts + values.counts)[.packetsRead] == 10)
    }

    /// A reader racing the queue's thread sees whole batches: every packet in packets_read is also in a
    /// protocol count and in bytes_read, never one without the other.
    @Test func aReaderNeverSeesHalfABatch() async {
        let counters = QueueCounters()
        let batches = 200_000
        let writer = Thread {
            for batch in 1...batches {
                var tally = BatchTally()
                tally[.packetsRead] = 2
                tally[.bytesRead] = 200
                tally[.icmp] = 1
                tally[.udp] = 1
                counters.publish(&tally, at: UInt64(batch))
            }
        }
        writer.start()
        var reads = 0
        var torn = 0
        var firstTorn = ""
        repeat {
            let values = counters.snapshot(queue: 0)
            if values[.packetsRead] != values[.icmp] + values[.udp] || values[.bytesRead] != 100 * values[.packetsRead]
                || values.lastPacketAtNanoseconds * 2 != values[.packetsRead] {
                if torn == 0 {
                    firstTorn = "read \(values[.packetsRead]) icmp \(values[.icmp]) udp \(values[.udp]) bytes \(values[.bytesRead])"
                }
                torn += 1
            }
            reads += 1
        } while counters.snapshot(queue: 0)[.packetsRead] < UInt64(2 * batches) && reads < 50_000_000
        #expect(torn == 0, "\(torn) torn reads, first: \(firstTorn)")
        #expect(counters.snapshot(queue: 0)[.packetsRead] == UInt64(2 * batches))
    }
}
