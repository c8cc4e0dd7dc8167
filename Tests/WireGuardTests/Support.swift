import WireGuardCrypto
import WireGuardNoise

/// Bytes from hex text (test vectors are printed that way); spaces are ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace }.utf8)
    precondition(digits.count % 2 == 0)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
}

/// Hex text of bytes, to compare with a vector in a readable failure message.
func hexString(_ bytes: some ByteInput) -> String {
    bytes.withByteInput { $0.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
}

/// Randomness fixed in advance: the ephemeral keys a vector names, then zeros for anything else.
final class FixedRandom: RandomSource {
    private var ephemeralKeys: [X25519.PrivateKey]
    private let fillByte: UInt8

    init(ephemeralKeys: [X25519.PrivateKey] = [], fillByte: UInt8 = 0x5a) {
        self.ephemeralKeys = ephemeralKeys
        self.fillByte = fillByte
    }

    func makeEphemeralKey() throws(CryptoError) -> X25519.PrivateKey {
        precondition(!ephemeralKeys.isEmpty, "the test asked for more ephemeral keys than it fixed")
        return ephemeralKeys.removeFirst()
    }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in buffer.indices { buffer[index] = fillByte }
    }
}
