#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import Synchronization
import TundCore

/// The kernel counters last read of each link, reused for `maxAgeNanoseconds`.
///
/// `GET /devices/NAME/stats` shows the kernel's counters, and reading them is an RTM_GETSTATS round trip
/// that costs more than the rest of the answer. A client polling in a loop (or many clients polling one
/// device) therefore costs the kernel at most one query per link per 10 ms, and an answer's `kernel`
/// counters are at most that old; the worker's own counters are always read live. A poll once a second,
/// what monitoring does, always asks the kernel.
final class RecentCounters: Sendable {
    static let maxAgeNanoseconds: UInt64 = 10_000_000

    private struct Entry {
        let readAt: UInt64
        let counters: KernelCounters?
    }

    private struct State {
        var entries: [Int32: Entry] = [:]
        var prunedAt: UInt64 = 0
    }

    private let state = Mutex(State())

    /// The counters of link `index`: the last ones read, if younger than the limit, else `read()`'s.
    func counters(index: Int32, read: () throws(KernelError) -> KernelCounters?) throws(KernelError) -> KernelCounters? {
        let now = monotonicNanoseconds()
        if let entry = state.withLock({ $0.entries[index] }), now &- entry.readAt < Self.maxAgeNanoseconds {
            return entry.counters
        }
        let counters = try read()
        state.withLock { state in
            state.entries[index] = Entry(readAt: now, counters: counters)
            // Deleted links leave entries behind; once a second the stale ones go.
            if now &- state.prunedAt > 1_000_000_000 {
                state.prunedAt = now
                state.entries = state.entries.filter { now &- $0.value.readAt < Self.maxAgeNanoseconds }
            }
        }
        return counters
    }
}
