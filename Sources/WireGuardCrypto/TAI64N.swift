import Glibc

/// A TAI64N timestamp (12 bytes: big-endian TAI64 seconds label, then big-endian nanoseconds), the payload of
/// a WireGuard initiation. The responder only ever compares it with the last one from the same peer.
public struct TAI64N: Comparable, Hashable, Sendable {
    /// Encoded size in bytes.
    public static let count = 12
    /// TAI64's label of the Unix epoch, 2^62, plus the 10 seconds TAI was ahead of UTC in 1972: the base
    /// wireguard-go and the Linux kernel add to Unix time.
    public static let unixEpochLabel: UInt64 = 0x4000_0000_0000_000a
    /// Both reference implementations clear the low 24 bits of the nanoseconds (about 16.7 ms) so the
    /// timestamp does not reveal the sender's clock finely; more than 50 initiations a second are not
    /// accepted anyway.
    public static let nanosecondWhitenerMask: UInt32 = 0x00ff_ffff

    /// The TAI64 label: 2^62 + 10 + Unix seconds.
    public let seconds: UInt64
    /// Nanoseconds within the second.
    public let nanoseconds: UInt32

    public init(seconds: UInt64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The timestamp of a Unix time, nanoseconds whitened as the reference implementations do.
    public init(unixSeconds: UInt64, nanoseconds: UInt32) {
        self.init(seconds: Self.unixEpochLabel &+ unixSeconds, nanoseconds: nanoseconds & ~Self.nanosecondWhitenerMask)
    }

    /// The current wall-clock time (CLOCK_REALTIME: a peer that restarts must send a larger timestamp
    /// than before the restart, which no monotonic clock guarantees).
    public static func now() -> TAI64N {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return TAI64N(unixSeconds: UInt64(max(time.tv_sec, 0)), nanoseconds: UInt32(time.tv_nsec))
    }

    /// The 12 bytes on the wire.
    public var bytes: [UInt8] {
        var output = [UInt8](repeating: 0, count: Self.count)
        output.withUnsafeMutableBytes { buffer in
            buffer.storeBytes(of: seconds.bigEndian, toByteOffset: 0, as: UInt64.self)
            buffer.storeBytes(of: nanoseconds.bigEndian, toByteOffset: 8, as: UInt32.self)
        }
        return output
    }

    /// Decodes 12 bytes; nil for any other count.
    public init?(bytes: some ByteInput) {
        guard let value = bytes.withByteInput({ buffer -> TAI64N? in
            guard buffer.count == Self.count else { return nil }
            return TAI64N(seconds: UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                          nanoseconds: UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        }) else { return nil }
        self = value
    }

    public static func < (lhs: TAI64N, rhs: TAI64N) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}
