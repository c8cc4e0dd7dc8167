import WireGuardCrypto

/// Why a handshake message was refused. Each case is safe to count and log: none carries key material.
public enum HandshakeError: Error, Equatable, Sendable {
    /// A primitive refused, most often `.authenticationFailed`: the message was not made for our key
    /// (or with a different preshared key), or was altered.
    case crypto(CryptoError)
    /// The bytes are not a message of the expected kind.
    case malformed(MessageError)
    /// The initiation decrypted to a static key that is not one of our peers.
    case unknownPeer
    /// The initiation's timestamp is not after the last one accepted from this peer: a replay.
    case replayedTimestamp
    /// A response whose receiver index is not the initiation's sender index.
    case unexpectedReceiverIndex
    /// `consumeResponse` without a prior `makeInitiation`, or a second time.
    case noInitiationPending
    /// A cookie reply when no message with a MAC1 was sent to that peer.
    case noMAC1Sent
}

/// The initiator's side of one handshake with one peer: `makeInitiation`, then `consumeResponse`.
/// Holds the ephemeral key and Noise state in between; a new initiation replaces both.
public final class Initiator {
    private let localStatic: X25519.PrivateKey
    private let peer: PublicKey
    private let presharedKey: SecretBytes
    private var pending: (state: NoiseState, ephemeral: X25519.PrivateKey, localIndex: UInt32)?

    /// For a peer known by its public key; `presharedKey` nil means none (32 zero bytes, as WireGuard uses).
    public init(localStatic: X25519.PrivateKey, peer: PublicKey, presharedKey: SecretBytes? = nil) {
        self.localStatic = localStatic
        self.peer = peer
        self.presharedKey = presharedKey ?? SecretBytes(zeros: 32)
    }

    /// Message type 1, MACs still zero (`CookieGenerator.stamp` adds them). `localIndex` must be unused by
    /// any other live session of this device.
    public func makeInitiation(localIndex: UInt32, timestamp: TAI64N = .now(),
                               random: some RandomSource = SystemRandom()) throws(HandshakeError) -> InitiationMessage {
        do {
            var state = try NoiseState(prologue: WireGuardConstants.identifier, responderStatic: peer)
            let ephemeral = try random.makeEphemeralKey()
            let noise = try NoiseIKpsk2.writeInitiation(&state, ephemeral: ephemeral, localStatic: localStatic,
                                                        remoteStatic: peer, payload: timestamp.bytes)
            pending = (state, ephemeral, localIndex)
            return InitiationMessage(senderIndex: localIndex, ephemeral: noise.ephemeral,
                                     encryptedStatic: noise.encryptedStatic, encryptedTimestamp: noise.encryptedPayload)
        } catch {
            throw .crypto(error)
        }
    }

    /// Consumes message type 2 (MAC1 already checked by `CookieChecker`) and returns the session.
    /// The pending state is spent whether or not the response verifies, as a response is only ever
    /// good once.
    public func consumeResponse(_ message: ResponseMessage) throws(HandshakeError) -> Session {
        guard var pending else { throw .noInitiationPending }
        guard message.receiverIndex == pending.localIndex else { throw .unexpectedReceiverIndex }
        self.pending = nil
        do throws(CryptoError) {
            let payload = try NoiseIKpsk2.readResponse(
                &pending.state, NoiseResponse(ephemeral: message.ephemeral, encryptedPayload: message.encryptedNothing),
                ephemeral: pending.ephemeral, localStatic: localStatic, presharedKey: presharedKey)
            guard payload.count == 0 else { throw CryptoError.invalidLength(expected: 0, actual: payload.count) }
            let keys = try pending.state.split()
            return Session(sendingKey: keys.initiatorSending, receivingKey: keys.responderSending,
                           localIndex: pending.localIndex, remoteIndex: message.senderIndex, isInitiator: true, peer: peer)
        } catch {
            throw .crypto(error)
        }
    }
}

/// What the responder knows of the static key an initiation decrypted to.
public enum PeerLookup {
    /// Not a peer of ours: the initiation is refused.
    case unknown
    /// A peer, with the greatest timestamp accepted from it so far (nil: none yet).
    case known(latestTimestamp: TAI64N?)
}

/// An authenticated initiation, waiting for `Responder.makeResponse`.
public struct ConsumedInitiation {
    /// The initiator's static public key.
    public let peer: PublicKey
    /// Its timestamp, newer than any before from this peer: record it as the peer's latest once the
    /// response is sent, so a replay of this very message is refused.
    public let timestamp: TAI64N
    /// The initiator's sender index, the receiver index of everything sent back.
    public let remoteIndex: UInt32
    let state: NoiseState
    let initiatorEphemeral: PublicKey
}

/// The responder's side: `consumeInitiation`, then `makeResponse`. Stateless between messages
/// (everything in flight is in the `ConsumedInitiation`), so one instance serves every peer.
public struct Responder {
    private let localStatic: X25519.PrivateKey

    public init(localStatic: X25519.PrivateKey) {
        self.localStatic = localStatic
    }

    /// Decrypts and authenticates message type 1 (MAC1 already checked by `CookieChecker`): `lookup`
    /// names the peer behind the decrypted static key and its latest timestamp, against which this one
    /// must be strictly greater (the whitepaper's replay protection for initiations).
    public func consumeInitiation(_ message: InitiationMessage,
                                  lookup: (PublicKey) -> PeerLookup) throws(HandshakeError) -> ConsumedInitiation {
        let (state, initiatorStatic, timestamp): (NoiseState, PublicKey, TAI64N)
        do throws(CryptoError) {
            var noise = try NoiseState(prologue: WireGuardConstants.identifier, responderStatic: localStatic.publicKey)
            let read = try NoiseIKpsk2.readInitiation(
                &noise, NoiseInitiation(ephemeral: message.ephemeral, encryptedStatic: message.encryptedStatic,
                                        encryptedPayload: message.encryptedTimestamp),
                localStatic: localStatic)
            guard let decoded = TAI64N(bytes: read.payload) else {
                throw CryptoError.invalidLength(expected: TAI64N.count, actual: read.payload.count)
            }
            (state, initiatorStatic, timestamp) = (noise, read.initiatorStatic, decoded)
        } catch {
            throw .crypto(error)
        }
        switch lookup(initiatorStatic) {
        case .unknown:
            throw .unknownPeer
        case .known(let latest):
            if let latest, timestamp <= latest { throw .replayedTimestamp }
        }
        do {
            return ConsumedInitiation(peer: initiatorStatic, timestamp: timestamp, remoteIndex: message.senderIndex,
                                      state: state, initiatorEphemeral: try PublicKey(bytes: message.ephemeral))
        } catch {
            throw .crypto(error)
        }
    }

    /// Message type 2 (MACs still zero) and the session it completes. `presharedKey` nil means none.
    public func makeResponse(to initiation: ConsumedInitiation, localIndex: UInt32, presharedKey: SecretBytes? = nil,
                             random: some RandomSource = SystemRandom()) throws(HandshakeError) -> (ResponseMessage, Session) {
        do {
            var state = initiation.state
            let ephemeral = try random.makeEphemeralKey()
            let noise = try NoiseIKpsk2.writeResponse(
                &state, ephemeral: ephemeral, initiatorEphemeral: initiation.initiatorEphemeral,
                initiatorStatic: initiation.peer, presharedKey: presharedKey ?? SecretBytes(zeros: 32), payload: [UInt8]())
            let keys = try state.split()
            let message = ResponseMessage(senderIndex: localIndex, receiverIndex: initiation.remoteIndex,
                                          ephemeral: noise.ephemeral, encryptedNothing: noise.encryptedPayload)
            let session = Session(sendingKey: keys.responderSending, receivingKey: keys.initiatorSending,
                                  localIndex: localIndex, remoteIndex: initiation.remoteIndex, isInitiator: false,
                                  peer: initiation.peer)
            return (message, session)
        } catch {
            throw .crypto(error)
        }
    }
}
