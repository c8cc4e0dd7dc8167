import WireGuardReplay

/// The whitepaper's timing and message-count constants (§6.1), in the units this target works in:
/// nanoseconds of a monotonic clock the caller reads (CLOCK_MONOTONIC or CLOCK_BOOTTIME), and counts.
public enum WireGuardTiming {
    public static let nanosecondsPerSecond: UInt64 = 1_000_000_000
    public static let nanosecondsPerMillisecond: UInt64 = 1_000_000

    /// After this many messages sent with one key, the sender starts a new handshake.
    public static let rekeyAfterMessages: UInt64 = 1 << 60
    /// No message is sent or accepted with a counter at or above 2^64 - 2^13 - 1, so a nonce never wraps.
    public static let rejectAfterMessages = ReplayWindow.rejectAfterMessages
    /// An initiator's key older than this is renewed on the next send.
    public static let rekeyAfterTime: UInt64 = 120 * nanosecondsPerSecond
    /// A key older than this is used neither to send nor to receive.
    public static let rejectAfterTime: UInt64 = 180 * nanosecondsPerSecond
    /// How long handshake retries go on before staged packets are dropped.
    public static let rekeyAttemptTime: UInt64 = 90 * nanosecondsPerSecond
    /// How long an initiation waits for its response before it is sent again; also the least time
    /// between two initiations to one peer.
    public static let rekeyTimeout: UInt64 = 5 * nanosecondsPerSecond
    /// Upper bound (exclusive) of the random delay added to handshake timers, so peers that started
    /// together do not keep colliding.
    public static let rekeyTimeoutJitterMax: UInt64 = 333 * nanosecondsPerMillisecond
    /// Received data unanswered for this long is answered with a keepalive.
    public static let keepaliveTimeout: UInt64 = 10 * nanosecondsPerSecond
    /// Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT, as the kernel's
    /// MAX_TIMER_HANDSHAKES. With the first initiation and the retry that exceeds it, 20 are sent.
    public static let maxTimerHandshakes = Int(rekeyAttemptTime / rekeyTimeout)

    /// True when something born at `birth` is `lifetime` old or older at `now` (the kernel's
    /// wg_birthdate_has_expired). A `now` before `birth` (a clock misuse) counts as not expired.
    static func hasExpired(_ birth: UInt64, after lifetime: UInt64, now: UInt64) -> Bool {
        now >= birth && now - birth >= lifetime
    }
}
