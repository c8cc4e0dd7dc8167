import NetAddress
import TundCore
import TundJSON
import WireGuardCrypto

/// The `wireguard` worker in JSON: keys as `wg` prints them (base64), a private key drawn here when the
/// request has none, and answers that show the public key and never a private or preshared one.
enum WireGuardJSON {
    static let workerFields: Set<String> = ["listen_port", "private_key", "peers"]
    static let peerFields: Set<String> = ["public_key", "endpoint", "allowed_ips", "persistent_keepalive", "preshared_key"]

    /// The wireguard part of `worker` (`reader` is the worker object), or nil when it has none of its fields.
    static func decode(_ reader: FieldReader) throws(TundError) -> WireGuardSpec? {
        var present = false
        for key in workerFields where try reader.value(key) != nil { present = true }
        guard present else { return nil }
        guard let port = try reader.integer("listen_port", in: 1...65535) else {
            throw .invalidField(field: "worker.listen_port", reason: "is required for a wireguard worker")
        }
        let privateKey: [UInt8]
        let drawn: Bool
        if let text = try reader.string("private_key") {
            privateKey = try key(text, field: "worker.private_key", what: "wg genkey")
            drawn = false
        } else {
            privateKey = try generatedPrivateKey()
            drawn = true
        }
        let peers = try reader.array("peers").enumerated().map { (index, value) throws(TundError) in
            try peer(value, field: "worker.peers[\(index)]")
        }
        return WireGuardSpec(privateKey: privateKey, listenPort: Int(port), peers: peers, privateKeyDrawn: drawn)
    }

    /// One peer object: `field` is where it sits in a device (`worker.peers[I]`), nil for the body of
    /// `/devices/{name}/peers`, whose fields are named bare.
    static func peer(_ value: JSONValue, field: String?) throws(TundError) -> WireGuardPeerSpec {
        let reader = try FieldReader(value, path: field, allowed: peerFields)
        let publicKey = try key(try reader.string("public_key", required: true)!, field: reader.qualified("public_key"), what: "wg pubkey")
        let presharedKey = try reader.string("preshared_key").map { text throws(TundError) in
            try key(text, field: reader.qualified("preshared_key"), what: "wg genpsk")
        }
        var endpoint: SocketAddress?
        if let text = try reader.string("endpoint") {
            guard let parsed = SocketAddress(text) else {
                throw .invalidField(field: reader.qualified("endpoint"), reason: "\"\(text.prefix(64))\" is not IPv4:PORT or [IPv6]:PORT")
            }
            endpoint = parsed
        }
        let allowed = try reader.array("allowed_ips").enumerated().map { (index, item) throws(TundError) in
            try DeviceRequest.prefix(item, field: reader.qualified("allowed_ips[\(index)]"))
        }
        let keepalive = try reader.integer("persistent_keepalive", in: 0...65535).map(Int.init)
        return WireGuardPeerSpec(publicKey: publicKey, presharedKey: presharedKey, endpoint: endpoint,
                                 allowedIPs: allowed, persistentKeepalive: keepalive == 0 ? nil : keepalive)
    }

    /// The worker's wireguard fields for answers: the public key, never the private one.
    static func workerMembers(_ spec: WireGuardSpec) -> [(String, JSONValue)] {
        [("listen_port", .integer(Int64(spec.listenPort))), ("public_key", .optional(publicKey(of: spec.privateKey))),
         ("peers", .array(spec.peers.map(peerJSON)))]
    }

    static func peerJSON(_ peer: WireGuardPeerSpec) -> JSONValue {
        .object([
            ("public_key", .string(base64(peer.publicKey))), ("endpoint", .optional(peer.endpoint?.description)),
            ("allowed_ips", .array(peer.allowedIPs.map { .string($0.description) })),
            ("persistent_keepalive", peer.persistentKeepalive.map { .integer(Int64($0)) } ?? .null),
            ("preshared_key", .bool(peer.presharedKey != nil)),
        ])
    }

    /// A running worker's view of its peers, for the stats answer.
    static func peerStatus(_ status: WireGuardPeerStatus) -> JSONValue {
        .object([
            ("public_key", .string(base64(status.publicKey))), ("endpoint", .optional(status.endpoint?.description)),
            ("last_handshake_at", .optional(status.lastHandshakeUnixNanoseconds.map(Timestamp.format(nanoseconds:)))),
            ("rx_bytes", .count(status.rxBytes)), ("tx_bytes", .count(status.txBytes)),
            ("rx_packets", .count(status.rxPackets)), ("tx_packets", .count(status.txPackets)),
            ("handshakes_initiated", .count(status.handshakesInitiated)), ("handshakes_completed", .count(status.handshakesCompleted)),
            ("dropped", .object(status.drops.sorted { $0.key < $1.key }.map { ($0.key, .count($0.value)) })),
        ])
    }

    static func base64(_ key: [UInt8]) -> String { Base64Key.encode(key) }

    /// `key` from its path segment (base64, percent-decoded by the router); nil when it is not a key.
    static func pathKey(_ text: String) -> [UInt8]? {
        try? Base64Key.decode(text).withUnsafeBytes { Array($0) }
    }

    private static func key(_ text: String, field: String, what: String) throws(TundError) -> [UInt8] {
        do {
            return try Base64Key.decode(text).withUnsafeBytes { Array($0) }
        } catch {
            // The text is not echoed: it may be a secret with a typo.
            throw .invalidField(field: field, reason: "must be a 32-byte key in base64, as \(what) prints it")
        }
    }

    private static func generatedPrivateKey() throws(TundError) -> [UInt8] {
        do {
            return try X25519.PrivateKey.generate().rawRepresentation().withUnsafeBytes { Array($0) }
        } catch {
            throw .invalidRequest("could not generate a private key: \(error)")
        }
    }

    private static func publicKey(of privateKey: [UInt8]) -> String? {
        (try? X25519.PrivateKey(rawRepresentation: privateKey))?.publicKey.base64
    }
}
