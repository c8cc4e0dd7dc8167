import Testing
import WireGuardCrypto
import WireGuardNoise

/// WireGuard's own messages between two parties with fixed keys. No published vector gives WireGuard's
/// messages byte for byte, so these are round trips (plus the Noise layer's byte-exact vector in
/// HandshakeVectorTests, which these messages are built on).
@Suite struct HandshakeTests {
    let initiatorStatic: X25519.PrivateKey
    let responderStatic: X25519.PrivateKey
    let initiatorEphemeral: X25519.PrivateKey
    let responderEphemeral: X25519.PrivateKey
    let presharedKey = SecretBytes(copying: [UInt8](repeating: 0x42, count: 32))
    let timestamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0)
    let start = ContinuousClock.now

    init() throws {
        initiatorStatic = try X25519.PrivateKey(rawRepresentation: [UInt8](repeating: 0x11, count: 32))
        responderStatic = try X25519.PrivateKey(rawRepresentation: [UInt8](repeating: 0x22, count: 32))
        initiatorEphemeral = try X25519.PrivateKey(rawRepresentation: [UInt8](repeating: 0x33, count: 32))
        responderEphemeral = try X25519.PrivateKey(rawRepresentation: [UInt8](repeating: 0x44, count: 32))
    }

    /// The initiation as it leaves the initiator: MAC1 stamped for the responder.
    func initiation(_ initiator: Initiator, index: UInt32 = 0x0102_0304, at time: TAI64N? = nil) throws -> [UInt8] {
        let message = try initiator.makeInitiation(localIndex: index, timestamp: time ?? timestamp,
                                                   random: FixedRandom(ephemeralKeys: [initiatorEphemeral]))
        var bytes = message.bytes
        var generator = try CookieGenerator(peerPublic: responderStatic.publicKey)
        try generator.stamp(&bytes, now: start)
        return bytes
    }

    func knownInitiator(_ latest: TAI64N? = nil) -> (PublicKey) -> PeerLookup {
        let expected = initiatorStatic.publicKey
        return { $0 == expected ? .known(latestTimestamp: latest) : .unknown }
    }

    @Test func bothSidesDeriveMatchingKeysAndExchangeTransportData() throws {
        let initiator = Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey, presharedKey: presharedKey)
        let initiationBytes = try initiation(initiator)
        #expect(initiationBytes.count == 148)
        #expect(MessageType(of: initiationBytes) == .initiation)

        let checker = try CookieChecker(localPublic: responderStatic.publicKey)
        #expect(checker.isMAC1Valid(initiationBytes))
        let responder = Responder(localStatic: responderStatic)
        let consumed = try responder.consumeInitiation(InitiationMessage(bytes: initiationBytes), lookup: knownInitiator())
        #expect(consumed.peer == initiatorStatic.publicKey)
        #expect(consumed.timestamp == timestamp)
        #expect(consumed.remoteIndex == 0x0102_0304)

        let (response, responderSession) = try responder.makeResponse(to: consumed, localIndex: 0x0a0b_0c0d, presharedKey: presharedKey,
                                                                      random: FixedRandom(ephemeralKeys: [responderEphemeral]))
        var responseBytes = response.bytes
        var toInitiator = try CookieGenerator(peerPublic: initiatorStatic.publicKey)
        try toInitiator.stamp(&responseBytes, now: start)
        #expect(responseBytes.count == 92)
        #expect(try CookieChecker(localPublic: initiatorStatic.publicKey).isMAC1Valid(responseBytes))

        let initiatorSession = try initiator.consumeResponse(ResponseMessage(bytes: responseBytes))
        #expect(initiatorSession.sendingKey.constantTimeEquals(responderSession.receivingKey))
        #expect(initiatorSession.receivingKey.constantTimeEquals(responderSession.sendingKey))
        #expect(!initiatorSession.sendingKey.constantTimeEquals(initiatorSession.receivingKey))
        #expect((initiatorSession.localIndex, initiatorSession.remoteIndex) == (0x0102_0304, 0x0a0b_0c0d))
        #expect((responderSession.localIndex, responderSession.remoteIndex) == (0x0a0b_0c0d, 0x0102_0304))
        #expect(initiatorSession.isInitiator && !responderSession.isInitiator)
        #expect(responderSession.peer == initiatorStatic.publicKey && initiatorSession.peer == responderStatic.publicKey)

        // A transport message: header, then the packet sealed in place after it.
        let packet = Array("an IP packet".utf8)
        var message = [UInt8](repeating: 0, count: TransportHeader.count) + packet + [UInt8](repeating: 0, count: 16)
        let sender = try ChaChaPoly(key: initiatorSession.sendingKey)
        try message.withUnsafeMutableBytes { buffer in
            TransportHeader(receiverIndex: initiatorSession.remoteIndex, counter: 0).write(into: buffer)
            _ = try sender.seal(inPlace: UnsafeMutableRawBufferPointer(rebasing: buffer[TransportHeader.count...]),
                                plaintextCount: packet.count, counter: 0)
        }
        #expect(MessageType(of: message) == .transportData)
        let header = try message.withUnsafeBytes { try TransportHeader(reading: $0) }
        #expect(header == TransportHeader(receiverIndex: responderSession.localIndex, counter: 0))
        let receiver = try ChaChaPoly(key: responderSession.receivingKey)
        let opened = try message.withUnsafeMutableBytes { buffer in
            try receiver.open(inPlace: UnsafeMutableRawBufferPointer(rebasing: buffer[TransportHeader.count...]),
                              ciphertextCount: packet.count + 16, counter: header.counter)
        }
        #expect(Array(message[TransportHeader.count..<(TransportHeader.count + opened)]) == packet)
    }

    @Test func theSameKeysAndRandomnessGiveTheSameMessages() throws {
        let first = try initiation(Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey))
        let second = try initiation(Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey))
        #expect(first == second)
    }

    @Test func everyFlippedByteOfAnInitiationFailsMAC1() throws {
        let bytes = try initiation(Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey))
        let checker = try CookieChecker(localPublic: responderStatic.publicKey)
        for index in 0..<InitiationMessage.mac1Offset + 16 {
            var tampered = bytes
            tampered[index] ^= 0x01
            #expect(!checker.isMAC1Valid(tampered), "byte \(index)")
        }
        // MAC1 is keyed by the receiver's public key: another key's checker refuses the message.
        #expect(!(try CookieChecker(localPublic: initiatorStatic.publicKey)).isMAC1Valid(bytes))
    }

    @Test func aFlippedEncryptedByteWithAFreshMAC1FailsTheAEAD() throws {
        let responder = Responder(localStatic: responderStatic)
        for field in [("ephemeral", 8), ("static", 40), ("timestamp", 88)] {
            var message = try InitiationMessage(bytes: initiation(Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey)))
            switch field.0 {
            case "ephemeral": message.ephemeral[5] ^= 0x10
            case "static": message.encryptedStatic[47] ^= 0x10
            default: message.encryptedTimestamp[0] ^= 0x10
            }
            #expect(throws: HandshakeError.crypto(.authenticationFailed), "\(field.0)") {
                try responder.consumeInitiation(message, lookup: knownInitiator())
            }
        }
    }

    @Test func aFlippedResponseByteFailsMAC1AndTheAEAD() throws {
        let initiator = Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey)
        let consumed = try Responder(localStatic: responderStatic).consumeInitiation(InitiationMessage(bytes: initiation(initiator)),
                                                                                    lookup: knownInitiator())
        let (response, _) = try Responder(localStatic: responderStatic).makeResponse(
            to: consumed, localIndex: 9, random: FixedRandom(ephemeralKeys: [responderEphemeral]))
        var stamped = response.bytes
        var generator = try CookieGenerator(peerPublic: initiatorStatic.publicKey)
        try generator.stamp(&stamped, now: start)
        var flipped = stamped
        flipped[50] ^= 1
        #expect(!(try CookieChecker(localPublic: initiatorStatic.publicKey)).isMAC1Valid(flipped))
        var tampered = response
        tampered.encryptedNothing[3] ^= 1
        #expect(throws: HandshakeError.crypto(.authenticationFailed)) { try initiator.consumeResponse(tampered) }
        // The failed response spent the handshake: even the genuine one is now refused.
        #expect(throws: HandshakeError.noInitiationPending) { try initiator.consumeResponse(response) }
    }

    @Test func aDifferentPresharedKeyFailsTheResponse() throws {
        let initiator = Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey, presharedKey: presharedKey)
        let responder = Responder(localStatic: responderStatic)
        let consumed = try responder.consumeInitiation(InitiationMessage(bytes: initiation(initiator)), lookup: knownInitiator())
        let (response, _) = try responder.makeResponse(to: consumed, localIndex: 9, presharedKey: nil,
                                                       random: FixedRandom(ephemeralKeys: [responderEphemeral]))
        #expect(throws: HandshakeError.crypto(.authenticationFailed)) { try initiator.consumeResponse(response) }
    }

    @Test func aResponseToAnotherIndexIsRefused() throws {
        let initiator = Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey)
        let consumed = try Responder(localStatic: responderStatic).consumeInitiation(
            InitiationMessage(bytes: initiation(initiator, index: 77)), lookup: knownInitiator())
        var (response, _) = try Responder(localStatic: responderStatic).makeResponse(
            to: consumed, localIndex: 9, random: FixedRandom(ephemeralKeys: [responderEphemeral]))
        response.receiverIndex = 78
        #expect(throws: HandshakeError.unexpectedReceiverIndex) { try initiator.consumeResponse(response) }
    }

    @Test func anInitiationNotNewerThanTheLastIsAReplay() throws {
        let bytes = try initiation(Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey))
        let responder = Responder(localStatic: responderStatic)
        let message = try InitiationMessage(bytes: bytes)
        #expect(throws: HandshakeError.replayedTimestamp) { try responder.consumeInitiation(message, lookup: knownInitiator(timestamp)) }
        let later = TAI64N(seconds: timestamp.seconds + 1, nanoseconds: 0)
        #expect(throws: HandshakeError.replayedTimestamp) { try responder.consumeInitiation(message, lookup: knownInitiator(later)) }
        let earlier = TAI64N(seconds: timestamp.seconds - 1, nanoseconds: 999_999_999)
        #expect(try responder.consumeInitiation(message, lookup: knownInitiator(earlier)).timestamp == timestamp)
        #expect(throws: HandshakeError.unknownPeer) { try responder.consumeInitiation(message, lookup: { _ in .unknown }) }
    }

    @Test func messagesOfTheWrongSizeOrTypeAreRefused() throws {
        let bytes = try initiation(Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey))
        #expect(throws: MessageError.wrongSize(expected: 148, actual: 147)) { try InitiationMessage(bytes: Array(bytes.dropLast())) }
        #expect(throws: MessageError.wrongType(expected: 2, actual: 1)) { try ResponseMessage(bytes: Array(bytes[0..<92])) }
        var reserved = bytes
        reserved[2] = 1
        #expect(throws: MessageError.wrongType(expected: 1, actual: 0x10001)) { try InitiationMessage(bytes: reserved) }
        #expect(throws: MessageError.wrongSize(expected: 32, actual: 31)) {
            try [UInt8](repeating: 4, count: 31).withUnsafeBytes { try TransportHeader(reading: $0) }
        }
    }

    /// Under load: the responder answers with a cookie reply; the initiator's next initiation carries MAC2,
    /// which the responder accepts for the same source only, and not after the two-minute secret expires.
    @Test func cookieReplyThenMAC2() throws {
        let source: [UInt8] = [192, 0, 2, 1, 0xca, 0x6c]  // 192.0.2.1 port 51820
        var generator = try CookieGenerator(peerPublic: responderStatic.publicKey)
        var checker = try CookieChecker(localPublic: responderStatic.publicKey)
        let initiator = Initiator(localStatic: initiatorStatic, peer: responderStatic.publicKey)
        var first = try initiator.makeInitiation(localIndex: 5, timestamp: timestamp,
                                                 random: FixedRandom(ephemeralKeys: [initiatorEphemeral])).bytes
        try generator.stamp(&first, now: start)
        #expect(first[132..<148].allSatisfy { $0 == 0 })  // no cookie yet: MAC2 zero
        #expect(!checker.isMAC2Valid(first, source: source, now: start))

        let reply = try checker.makeCookieReply(to: first, source: source, now: start, random: FixedRandom(fillByte: 0x77))
        #expect(reply.receiverIndex == 5)
        let replyBytes = reply.bytes
        #expect(replyBytes.count == 64 && MessageType(of: replyBytes) == .cookieReply)
        try generator.consumeCookieReply(CookieReplyMessage(bytes: replyBytes), now: start)
        #expect(throws: HandshakeError.noMAC1Sent) { try generator.consumeCookieReply(reply, now: start) }

        var second = try initiator.makeInitiation(localIndex: 6, timestamp: timestamp,
                                                  random: FixedRandom(ephemeralKeys: [initiatorEphemeral])).bytes
        try generator.stamp(&second, now: start + .seconds(1))
        #expect(checker.isMAC1Valid(second))
        #expect(checker.isMAC2Valid(second, source: source, now: start + .seconds(1)))
        #expect(!checker.isMAC2Valid(second, source: [192, 0, 2, 2, 0xca, 0x6c], now: start + .seconds(1)))
        #expect(!checker.isMAC2Valid(second, source: source, now: start + .seconds(121)))

        // A cookie reply is authenticated by the MAC1 it answers: a reply to another message is refused.
        var other = try CookieGenerator(peerPublic: responderStatic.publicKey)
        var third = second
        try other.stamp(&third, now: start)
        var forged = reply
        forged.encryptedCookie[0] ^= 1
        #expect(throws: HandshakeError.crypto(.authenticationFailed)) { try other.consumeCookieReply(forged, now: start) }
        #expect(throws: HandshakeError.crypto(.authenticationFailed)) { try other.consumeCookieReply(reply, now: start) }

        // The initiator stops sending MAC2 once its cookie is two minutes old.
        var late = second
        try generator.stamp(&late, now: start + .seconds(120))
        #expect(late[132..<148].allSatisfy { $0 == 0 })
    }
}
