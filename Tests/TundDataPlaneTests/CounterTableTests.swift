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
}
