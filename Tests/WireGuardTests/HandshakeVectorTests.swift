import Testing
import WireGuardCrypto
@testable import WireGuardNoise

/// The Noise layer against cacophony's vector for Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (as shipped in
/// mcginty/snow's tests/vectors/cacophony.txt): fixed statics, ephemerals, preshared key, prologue
/// "John Galt" and payloads, both handshake messages and four transport messages byte for byte. WireGuard's
/// messages run exactly this code with IDENTIFIER as the prologue and a timestamp as the first payload.
@Suite struct HandshakeVectorTests {
    let prologue = hex("4a6f686e2047616c74")
    let presharedKey = SecretBytes(copying: hex("54686973206973206d7920417573747269616e20706572737065637469766521"))

    @Test func cacophonyIKpsk2VectorByteForByte() throws {
        let initiatorStatic = try X25519.PrivateKey(rawRepresentation: hex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"))
        let initiatorEphemeral = try X25519.PrivateKey(rawRepresentation: hex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"))
        let responderStatic = try X25519.PrivateKey(rawRepresentation: hex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"))
        let responderEphemeral = try X25519.PrivateKey(rawRepresentation: hex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"))
        #expect(hexString(responderStatic.publicKey.bytes) == "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62")

        var initiator = try NoiseState(prologue: prologue, responderStatic: responderStatic.publicKey)
        let first = try NoiseIKpsk2.writeInitiation(&initiator, ephemeral: initiatorEphemeral, localStatic: initiatorStatic,
                                                    remoteStatic: responderStatic.publicKey, payload: hex("4c756477696720766f6e204d69736573"))
        #expect(hexString(first.ephemeral + first.encryptedStatic + first.encryptedPayload) == """
            ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944001e21de9f98ddd8e2ad57527207feb56253c9c94a9e496782ecfcb2a75fbcaf\
            1b52948cc48daefe660c62119ab5000980c84831215f2441eba616548e832985464cf17e51ee93109008399a21f7e13f
            """)

        var responder = try NoiseState(prologue: prologue, responderStatic: responderStatic.publicKey)
        let read = try NoiseIKpsk2.readInitiation(&responder, first, localStatic: responderStatic)
        #expect(read.initiatorStatic == initiatorStatic.publicKey)
        #expect(hexString(read.payload) == "4c756477696720766f6e204d69736573")

        let second = try NoiseIKpsk2.writeResponse(&responder, ephemeral: responderEphemeral, initiatorEphemeral: initiatorEphemeral.publicKey,
                                                   initiatorStatic: initiatorStatic.publicKey, presharedKey: presharedKey,
                                                   payload: hex("4d757272617920526f746862617264"))
        #expect(hexString(second.ephemeral + second.encryptedPayload) == """
            95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843cb765f2caef0751b8f007572dab0322217755c0632f365717edbf34d33e87a
            """)
        let payload = try NoiseIKpsk2.readResponse(&initiator, second, ephemeral: initiatorEphemeral, localStatic: initiatorStatic,
                                                   presharedKey: presharedKey)
        #expect(hexString(payload) == "4d757272617920526f746862617264")
        #expect(hexString(initiator.hash) == "f5191b875290abcd41347ac3622d9679688a7e980229cb937ef748336cfde0e5")
        #expect(responder.hash == initiator.hash)

        // Transport: initiator and responder alternate, each counting its own nonces from 0.
        let (initiatorSending, responderSending) = try initiator.split()
        let initiatorCipher = try ChaChaPoly(key: initiatorSending)
        let responderCipher = try ChaChaPoly(key: responderSending)
        let none = [UInt8]()
        #expect(hexString(try initiatorCipher.seal(hex("462e20412e20486179656b"), counter: 0, aad: none)) == "8153ca9833bc3c1b91a7e66e5f4d4f5b59bf9e64c2f20d15f0bba7")
        #expect(hexString(try responderCipher.seal(hex("4361726c204d656e676572"), counter: 0, aad: none)) == "07af0c9c86e1b4e80f36b04ff7688d51141af3debd0332f0a705ef")
        #expect(hexString(try initiatorCipher.seal(hex("4a65616e2d426170746973746520536179"), counter: 1, aad: none)) == "6ab1467c0448cc78394494abaaf23afce0e234315d6e2624dcbfa8a21c1c4d073d")
        #expect(hexString(try responderCipher.seal(hex("457567656e2042f6686d20766f6e2042617765726b"), counter: 1, aad: none)) == "dfc346c0d2296ae6cf1acf6f12b8456a1dba228cf8d8b774aacf1c47fc53aa80ebc7a4c292")
        let (responderReceiving, _) = try responder.split()
        #expect(responderReceiving.constantTimeEquals(initiatorSending))
    }

    /// The first chaining key and hash every WireGuard handshake starts from (boringtun ships them as
    /// INITIAL_CHAIN_KEY and INITIAL_CHAIN_HASH; also recomputed with CPython's hashlib).
    @Test func wireGuardsInitialChainingKeyAndHash() throws {
        #expect(hexString(try Blake2s.hash(WireGuardConstants.construction)) == "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36")
        #expect(hexString(try Blake2s.hash(Blake2s.hash(WireGuardConstants.construction), WireGuardConstants.identifier))
                == "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3")
    }
}
