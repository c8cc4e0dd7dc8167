/// The receive side's anti-replay window over transport counters: RFC 6479's ring of bitmap words, with the
/// Linux kernel's sizes (8192 bits, of which one word is the slack that lets the ring advance a word at a
/// time, so 8128 counters behind the greatest seen are still accepted once each).
///
/// Order of use: a transport packet's counter is authenticated by the AEAD tag, so only `accept` after a
/// successful open may change the window (an attacker can forge counters, not tags). `wouldAccept` may
/// be asked before decrypting, to drop a replay without spending the decryption, but it does not
/// reserve anything: `accept` checks again, since another packet with the same counter may have been
/// accepted in between.
///
/// A value type without locks: one receive path owns it, as the kernel holds one per keypair under a lock.
public struct ReplayWindow: Sendable {
    static let wordBits = 64
    static let wordCount = 128
    /// Bits in the ring.
    public static let totalBits = wordBits * wordCount
    /// How far behind the greatest accepted counter a counter may be and still be accepted.
    public static let windowSize = UInt64(totalBits - wordBits)
    /// The whitepaper's Reject-After-Messages, 2^64 - 2^13 - 1: no counter at or above it is accepted,
    /// so a key is retired well before its nonce could wrap.
    public static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)

    /// One more than the greatest counter accepted so far (0: none yet), as the kernel keeps it, so that
    /// counter 0 needs no special case.
    private var next: UInt64 = 0
    private var bitmap = [UInt64](repeating: 0, count: wordCount)

    /// An empty window: every counter below Reject-After-Messages is acceptable.
    public init() {}

    /// Accepts `counter` once: true the first time a counter inside the window is seen (and remembers it),
    /// false for a repeat, for a counter too far behind, and at or beyond Reject-After-Messages.
    /// Call it only after the packet carrying `counter` has authenticated.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard wouldAccept(counter) else { return false }
        let position = counter + 1
        let wordMask = UInt64(Self.wordCount - 1)
        let word = position >> 6
        if position > next {
            // Moving ahead: clear the words between the old greatest and the new one (at most the whole
            // ring), which forgets counters that have now fallen out of the window.
            let currentWord = next >> 6
            let wordsToClear = min(word - currentWord, UInt64(Self.wordCount))
            var cleared: UInt64 = 1
            while cleared <= wordsToClear {
                bitmap[Int((cleared + currentWord) & wordMask)] = 0
                cleared += 1
            }
            next = position
        }
        // Its bit is clear: `wouldAccept` checked it, or the move ahead cleared its word (or it lies above
        // the old greatest in the same word, where no bit was set yet).
        bitmap[Int(word & wordMask)] |= UInt64(1) << (position & 63)
        return true
    }

    /// Whether `accept(counter)` would return true now, without changing the window.
    public func wouldAccept(_ counter: UInt64) -> Bool {
        guard next <= Self.rejectAfterMessages, counter < Self.rejectAfterMessages else { return false }
        let position = counter + 1
        guard Self.windowSize + position >= next else { return false }
        if position > next { return true }
        let slot = Int((position >> 6) & UInt64(Self.wordCount - 1))
        return bitmap[slot] & (UInt64(1) << (position & 63)) == 0
    }
}
