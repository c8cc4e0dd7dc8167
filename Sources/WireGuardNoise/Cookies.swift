import WireGuardCrypto

/// MAC1 and MAC2 sit in the last 32 bytes of both handshake messages; MAC1 covers every byte before it
/// (msg_α), MAC2 every byte before itself (msg_β).
enum MACLayout {
    static func mac1Offset(of message: [UInt8]) -> Int? {
        switch (MessageType(of: message), message.count) {
        case (.initiation?, InitiationMessage.count): return InitiationMessage.mac1Offset
        case (.response?, ResponseMessage.count): return ResponseMessage.mac1Offset
        default: return nil
        }
    }
}

/// The receiving side of handshake messages sent to our static key: checks MAC1 (anyone who knows our
/// public key can make it, which keeps off those who do not), checks MAC2 when under load, and makes
/// cookie replies (whitepaper §5.4.7).
public struct CookieChecker {
    private let mac1Key: [UInt8]
    private let cookieKey: [UInt8]
    private var secret: SecretBytes?
    private var secretBorn: ContinuousClock.Instant?

    /// For messages sent to `localPublic`: precomputes HASH(LABEL-MAC1 || key) and HASH(LABEL-COOKIE || key).
    public init(localPublic: PublicKey) throws(CryptoError) {
        mac1Key = try Blake2s.hash(WireGuardConstants.labelMAC1, localPublic.bytes)
        cookieKey = try Blake2s.hash(WireGuardConstants.labelCookie, localPublic.bytes)
    }

    /// Whether a full handshake message (type 1 or 2) carries a correct MAC1; checked before any
    /// Curve25519 work, so that bytes from someone who does not know our key cost almost nothing.
    public func isMAC1Valid(_ message: [UInt8]) -> Bool {
        guard let offset = MACLayout.mac1Offset(of: message),
              let expected = try? Blake2s.mac(key: mac1Key, outputCount: WireGuardConstants.macCount, message[0..<offset])
        else { return false }
        return SecretBytes(copying: expected).constantTimeEquals(SecretBytes(copying: message[offset..<(offset + 16)]))
    }

    /// Whether the message's MAC2 is the cookie we would give `source` (the sender's IP address bytes and
    /// big-endian UDP port, as the caller encodes them) under the current secret. A secret older than
    /// two minutes makes every MAC2 invalid until a cookie reply makes a new one.
    public func isMAC2Valid(_ message: [UInt8], source: [UInt8], now: ContinuousClock.Instant) -> Bool {
        guard let offset = MACLayout.mac1Offset(of: message), let secret, let secretBorn,
              now - secretBorn <= WireGuardConstants.cookieRefreshTime,
              let cookie = try? Blake2s.mac(key: secret, outputCount: WireGuardConstants.macCount, source),
              let expected = try? Blake2s.mac(key: cookie, outputCount: WireGuardConstants.macCount, message[0..<(offset + 16)])
        else { return false }
        return SecretBytes(copying: expected).constantTimeEquals(SecretBytes(copying: message[(offset + 16)..<(offset + 32)]))
    }

    /// The cookie reply to `message` (which must have a valid MAC1, the reply's associated data) from
    /// `source`, addressed to the message's sender index. Draws a new secret when the old is two minutes old.
    public mutating func makeCookieReply(to message: [UInt8], source: [UInt8], now: ContinuousClock.Instant,
                                         random: some RandomSource = SystemRandom()) throws(HandshakeError) -> CookieReplyMessage {
        guard let offset = MACLayout.mac1Offset(of: message) else {
            throw .malformed(.wrongSize(expected: InitiationMessage.count, actual: message.count))
        }
        if secret == nil || secretBorn.map({ now - $0 > WireGuardConstants.cookieRefreshTime }) ?? true {
            secret = SecretBytes(count: 32) { (buffer: UnsafeMutableRawBufferPointer) in random.fill(buffer) }
            secretBorn = now
        }
        let senderIndex = message.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
        let nonce = random.randomBytes(XChaChaPoly.nonceCount)
        do {
            let cookie = try Blake2s.mac(key: secret!, outputCount: WireGuardConstants.macCount, source)
            let encrypted = try XChaChaPoly.seal(cookie, key: cookieKey, nonce: nonce, aad: Array(message[offset..<(offset + 16)]))
            return CookieReplyMessage(receiverIndex: senderIndex, nonce: nonce, encryptedCookie: encrypted)
        } catch {
            throw .crypto(error)
        }
    }
}

/// The sending side toward one peer: stamps MAC1 (and MAC2 while a cookie from that peer is fresh) on
/// outgoing handshake messages, and takes in that peer's cookie replies.
public struct CookieGenerator {
    private let mac1Key: [UInt8]
    private let cookieKey: [UInt8]
    private var lastMAC1: [UInt8]?
    private var cookie: SecretBytes?
    private var cookieReceived: ContinuousClock.Instant?

    /// For messages sent to `peerPublic`.
    public init(peerPublic: PublicKey) throws(CryptoError) {
        mac1Key = try Blake2s.hash(WireGuardConstants.labelMAC1, peerPublic.bytes)
        cookieKey = try Blake2s.hash(WireGuardConstants.labelCookie, peerPublic.bytes)
    }

    /// Writes MAC1 and MAC2 into a full handshake message (type 1 or 2), remembering MAC1 to authenticate
    /// the cookie reply it may bring. MAC2 is zero unless a cookie arrived less than two minutes ago.
    public mutating func stamp(_ message: inout [UInt8], now: ContinuousClock.Instant) throws(HandshakeError) {
        guard let offset = MACLayout.mac1Offset(of: message) else {
            throw .malformed(.wrongSize(expected: InitiationMessage.count, actual: message.count))
        }
        do {
            let mac1 = try Blake2s.mac(key: mac1Key, outputCount: WireGuardConstants.macCount, message[0..<offset])
            message.replaceSubrange(offset..<(offset + 16), with: mac1)
            lastMAC1 = mac1
            var mac2 = [UInt8](repeating: 0, count: WireGuardConstants.macCount)
            if let cookie, let cookieReceived, now - cookieReceived < WireGuardConstants.cookieRefreshTime {
                mac2 = try Blake2s.mac(key: cookie, outputCount: WireGuardConstants.macCount, message[0..<(offset + 16)])
            }
            message.replaceSubrange((offset + 16)..<(offset + 32), with: mac2)
        } catch {
            throw .crypto(error)
        }
    }

    /// Decrypts a cookie reply (authenticated by the MAC1 of our last message) and keeps the cookie for
    /// the MAC2 of the next messages. The receiver index is the caller's to match to this peer.
    public mutating func consumeCookieReply(_ reply: CookieReplyMessage, now: ContinuousClock.Instant) throws(HandshakeError) {
        guard let lastMAC1 else { throw .noMAC1Sent }
        do {
            cookie = try XChaChaPoly.open(reply.encryptedCookie, key: cookieKey, nonce: reply.nonce, aad: lastMAC1)
            cookieReceived = now
            self.lastMAC1 = nil  // one reply per message
        } catch {
            throw .crypto(error)
        }
    }
}
