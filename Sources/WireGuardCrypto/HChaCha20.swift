/// HChaCha20 (draft-irtf-cfrg-xchacha §2.2): derives XChaCha20's subkey from a key and the first 16 nonce bytes.
///
/// Written here because OpenSSL 3.0 exposes no HChaCha20; it is twenty ChaCha rounds over the state with
/// no final addition, returning words 0-3 and 12-15. Pinned by the draft's own test vector.
enum HChaCha20 {
    static func subkey(key: some ByteInput, nonce: UnsafeRawBufferPointer) -> SecretBytes {
        precondition(nonce.count == 16)
        var state = [UInt32](repeating: 0, count: 16)
        // "expand 32-byte k", as ChaCha20.
        state[0] = 0x6170_7865
        state[1] = 0x3320_646e
        state[2] = 0x7962_2d32
        state[3] = 0x6b20_6574
        key.withByteInput { key in
            precondition(key.count == 32)
            for word in 0..<8 { state[4 + word] = UInt32(littleEndian: key.loadUnaligned(fromByteOffset: 4 * word, as: UInt32.self)) }
        }
        for word in 0..<4 { state[12 + word] = UInt32(littleEndian: nonce.loadUnaligned(fromByteOffset: 4 * word, as: UInt32.self)) }
        for _ in 0..<10 {
            quarterRound(&state, 0, 4, 8, 12)
            quarterRound(&state, 1, 5, 9, 13)
            quarterRound(&state, 2, 6, 10, 14)
            quarterRound(&state, 3, 7, 11, 15)
            quarterRound(&state, 0, 5, 10, 15)
            quarterRound(&state, 1, 6, 11, 12)
            quarterRound(&state, 2, 7, 8, 13)
            quarterRound(&state, 3, 4, 9, 14)
        }
        let subkey = SecretBytes(count: 32) { (output: UnsafeMutableRawBufferPointer) in
            for (slot, word) in [0, 1, 2, 3, 12, 13, 14, 15].enumerated() {
                output.storeBytes(of: state[word].littleEndian, toByteOffset: 4 * slot, as: UInt32.self)
            }
        }
        // The state held key words; wipe it like any other key material.
        for index in state.indices { state[index] = 0 }
        return subkey
    }

    private static func quarterRound(_ x: inout [UInt32], _ a: Int, _ b: Int, _ c: Int, _ d: Int) {
        x[a] &+= x[b]; x[d] ^= x[a]; x[d] = x[d].rotatedLeft(16)
        x[c] &+= x[d]; x[b] ^= x[c]; x[b] = x[b].rotatedLeft(12)
        x[a] &+= x[b]; x[d] ^= x[a]; x[d] = x[d].rotatedLeft(8)
        x[c] &+= x[d]; x[b] ^= x[c]; x[b] = x[b].rotatedLeft(7)
    }
}

private extension UInt32 {
    func rotatedLeft(_ count: UInt32) -> UInt32 { (self << count) | (self >> (32 - count)) }
}
