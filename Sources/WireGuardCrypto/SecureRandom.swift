import COpenSSL

/// Bytes from OpenSSL's CSPRNG (RAND_bytes, seeded from getrandom): cookie secrets, nonces, indices.
public enum SecureRandom {
    /// Fills `buffer`; OpenSSL failing to produce randomness is not something to carry on from.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        precondition(buffer.count <= Int(Int32.max))
        let status = RAND_bytes(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(buffer.count))
        // A CSPRNG that cannot seed leaves no safe way on: every key it made would be guessable.
        precondition(status == 1, "RAND_bytes failed")
    }
}
