import Testing
import WireGuardReplay

/// The Linux kernel's own table of cases (drivers/net/wireguard/selftest/counter.c), in its order and
/// with its window size: this window has the kernel's 8192 bits, so T_LIM is the same 8129.
@Suite struct ReplayWindowTests {
    static let limit = ReplayWindow.windowSize + 1
    static let rejectAfter = ReplayWindow.rejectAfterMessages

    /// Feeds `cases` in order to one window and names the first case that differs by its kernel number.
    func run(_ cases: [(UInt64, Bool)], firstNumber: Int = 1) {
        var window = ReplayWindow()
        for (offset, (counter, expected)) in cases.enumerated() {
            #expect(window.wouldAccept(counter) == expected, "case \(firstNumber + offset): wouldAccept(\(counter))")
            let accepted = window.accept(counter)
            #expect(accepted == expected, "case \(firstNumber + offset): accept(\(counter))")
        }
    }

    @Test func theKernelsThirtyFourCases() {
        let limit = Self.limit, reject = Self.rejectAfter
        run([
            (0, true), (1, true), (1, false), (9, true), (8, true), (7, true), (7, false),
            (limit, true), (limit - 1, true), (limit - 1, false), (limit - 2, true), (2, true), (2, false),
            (limit + 16, true), (3, false), (limit + 16, false),
            (limit * 4, true), (limit * 4 - (limit - 1), true), (10, false), (limit * 4 - limit, false),
            (limit * 4 - (limit + 1), false), (limit * 4 - (limit - 2), true), (limit * 4 + 1 - limit, false), (0, false),
            (reject, false), (reject - 1, true), (reject, false), (reject - 1, false), (reject - 2, true),
            (reject + 1, false), (reject + 2, false), (reject - 2, false), (reject - 3, true), (0, false),
        ])
    }

    @Test func aFullWindowAscendingThenZero() {
        run((1...ReplayWindow.windowSize).map { ($0, true) } + [(0, true), (0, false)])
    }

    @Test func aFullWindowFromTwoThenOneThenZeroTooOld() {
        run((2...(ReplayWindow.windowSize + 1)).map { ($0, true) } + [(1, true), (0, false)])
    }

    @Test func aFullWindowDescendingToZero() {
        run((0...ReplayWindow.windowSize).reversed().map { ($0, true) })
    }

    @Test func oneMoreThanTheWindowDescendingLeavesZeroOut() {
        run((1...(ReplayWindow.windowSize + 1)).reversed().map { ($0, true) } + [(0, false)])
    }

    @Test func descendingThenOneAheadPushesZeroOut() {
        run((1...ReplayWindow.windowSize).reversed().map { ($0, true) } + [(ReplayWindow.windowSize + 1, true), (0, false)])
    }

    @Test func descendingThenZeroThenOneAhead() {
        run((1...ReplayWindow.windowSize).reversed().map { ($0, true) } + [(0, true), (ReplayWindow.windowSize + 1, true)])
    }

    @Test func theWindowIsAtLeast2048Bits() {
        #expect(ReplayWindow.totalBits == 8192)
        #expect(ReplayWindow.windowSize >= 2048)
        #expect(ReplayWindow.rejectAfterMessages == UInt64.max - 8192)  // 2^64 - 2^13 - 1
    }

    @Test func wouldAcceptChangesNothing() {
        var window = ReplayWindow()
        #expect(window.wouldAccept(5))
        #expect(window.wouldAccept(5))
        let accepted = window.accept(5)
        #expect(accepted)
        #expect(!window.wouldAccept(5))
    }
}
