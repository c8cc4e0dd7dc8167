import WireGuardCrypto

/// What a completed handshake leaves: one key per direction and the two indices that name the session
/// in transport headers. The initiator sends with the first KDF2 output of the final chaining key, the
/// responder with the second.
public struct Session: Sendable {
    /// Seals what this side sends (counter from 0 up).
    public let sendingKey: SecretBytes
    /// Opens what the peer sends.
    public let receivingKey: SecretBytes
    /// This side's index: the receiver index on transport messages the peer sends here.
    public let localIndex: UInt32
    /// The peer's index: the receiver index on transport messages sent to it.
    public let remoteIndex: UInt32
    /// True on the side that sent the initiation (it may send data at once; the responder waits for the
    /// initiator's first transport message, which confirms the keys, before it sends).
    public let isInitiator: Bool
    /// The peer's static public key.
    public let peer: PublicKey
}
