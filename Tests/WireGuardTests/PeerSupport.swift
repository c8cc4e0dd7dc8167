import WireGuardCrypto
import WireGuardNoise

/// Randomness that hands out the given 32-bit values in turn (then repeats the last), for index tables;
/// ephemeral keys are real, since the sessions these tests need come from real handshakes.
final class SequenceRandom: RandomSource {
    private var values: [UInt32]

    init(_ values: [UInt32]) {
        precondition(!values.isEmpty)
        self.values = values
    }

    func makeEphemeralKey() throws(CryptoError) -> X25519.PrivateKey {
        try X25519.PrivateKey.generate()
    }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var value = values.count > 1 ? values.removeFirst() : values[0]
        withUnsafeBytes(of: &value) { bytes in
            for index in buffer.indices { buffer[index] = bytes[index % 4] }
        }
    }
}

/// Two static keys and real handshakes between them: each call completes one and returns both sides'
/// sessions with the indices asked for.
struct SessionPair {
    let initiatorStatic: X25519.PrivateKey
    let responderStatic: X25519.PrivateKey

    init() throws {
        initiatorStatic = try X25519.PrivateKey(rawRepresentation: [UInt8](repeating: 0x41, count: 32))
        responderStatic = try X25519.PrivateKey(rawRepresentation: [UInt8](repeating: 0x42, count: 32))
    }

    func handshake(initiatorIndex: UInt32, responderIndex: UInt32) throws -> (initiator: Session, responder: Session) {
        let initiator = Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey)
        let initiation = try initiator.makeInitiation(localIndex: initiatorIndex)
        let consumed = try Responder(localStatic: responderStatic)
            .consumeInitiation(initiation) { _ in .known(latestTimestamp: nil) }
        let (response, responderSession) = try Responder(localStatic: responderStatic)
            .makeResponse(to: consumed, localIndex: responderIndex)
        return (try initiator.consumeResponse(response), responderSession)
    }
}
