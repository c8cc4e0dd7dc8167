import COpenSSL

/// Key material kept out of Swift arrays: one allocation, filled once at init, never copied by the runtime,
/// and wiped with OPENSSL_cleanse (which the compiler cannot optimise away) when the last reference goes.
///
/// Immutable after init, which is what makes sharing it between threads safe.
public final class SecretBytes: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    /// The number of bytes held (the allocation has at least one, so that an empty secret has an address).
    public let count: Int

    /// Bytes written once by `fill`; they start zeroed, so a `fill` that returns early leaves zeros.
    public init<E: Error>(count: Int, fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        self.count = count
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        // A throwing `fill` needs no cleanup here: the object is fully initialised, so deinit runs and
        // wipes whatever was written.
        try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// A copy of `bytes` (a test vector, or a key read from a configuration file).
    public convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { (buffer: UnsafeMutableRawBufferPointer) in
            buffer.copyBytes(from: bytes)
        }
    }

    /// `count` zero bytes: WireGuard's preshared key when none is configured.
    public convenience init(zeros count: Int) {
        self.init(count: count) { (_: UnsafeMutableRawBufferPointer) in }
    }

    deinit {
        Self.wipe(storage)
        storage.deallocate()
    }

    /// Reads the bytes; the pointer must not escape `body`.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Equality in time independent of where the bytes differ (CRYPTO_memcmp), so comparing keys leaks nothing.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { mine in
            other.withUnsafeBytes { theirs in
                CRYPTO_memcmp(mine.baseAddress, theirs.baseAddress, count) == 0
            }
        }
    }

    /// True when every byte is zero (an absent preshared key, or a rejected X25519 result), in constant time.
    public var isAllZero: Bool {
        withUnsafeBytes { bytes in bytes.reduce(UInt8(0)) { $0 | $1 } == 0 }
    }

    private static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        OPENSSL_cleanse(buffer.baseAddress, buffer.count)
    }
}
