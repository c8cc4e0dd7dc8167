/// The protocol's constants, named as in the whitepaper (§5.4 and §6).
public enum WireGuardConstants {
    /// CONSTRUCTION: the Noise protocol name, hashed into the first chaining key.
    public static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
    /// IDENTIFIER: Noise's prologue, so a handshake made for another protocol never verifies here.
    public static let identifier = Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
    /// LABEL-MAC1: hashed with the receiver's public key into the MAC1 key.
    public static let labelMAC1 = Array("mac1----".utf8)
    /// LABEL-COOKIE: hashed with the receiver's public key into the cookie-encryption key.
    public static let labelCookie = Array("cookie--".utf8)
    /// How long a cookie secret (responder) and a received cookie (initiator) stay good: 120 seconds.
    public static let cookieRefreshTime: Duration = .seconds(120)
    /// Size of MAC1, MAC2 and a cookie: keyed BLAKE2s-128.
    public static let macCount = 16
}
