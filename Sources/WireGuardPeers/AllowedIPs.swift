import NetAddress

/// Why a prefix or an address was not taken.
public enum AllowedIPsError: Error, Equatable, Sendable {
    /// Address bytes that are neither 4 (IPv4) nor 16 (IPv6) long.
    case badAddressLength(Int)
}

/// WireGuard's cryptokey routing table: each prefix belongs to exactly one peer. Sending, the longest
/// prefix holding a packet's destination picks the peer; receiving, a packet decrypted with a peer's key
/// is kept only when its source's longest match is that same peer (`allows`).
///
/// Per family, one hash table per prefix length of masked network bits to peer; a lookup tries the lengths
/// in use from the longest down, so it costs one hash probe per distinct length present (a handful in
/// practice), not per bit as an uncompressed trie would. It answers exactly what the kernel's trie
/// answers: the owner of the longest prefix containing the address.
///
/// Not thread-safe: the control plane edits a copy and hands it to the data plane, or the data plane owns
/// it outright; there is no internal locking.
public struct AllowedIPs<Peer: Hashable> {
    // Inlinable where the data plane looks up every packet, so that it is specialised there for its peer
    // type instead of asking the runtime for generic metadata per packet.
    @usableFromInline var v4 = FamilyTable<Peer>()
    @usableFromInline var v6 = FamilyTable<Peer>()
    /// Each peer's prefixes, so that removing a peer and listing its prefixes need no scan of the tables.
    private var byPeer: [Peer: Set<IPPrefix>] = [:]

    public init() {}

    /// Gives `prefix` (host bits cleared first, as `wg` does: 10.0.0.1/24 is 10.0.0.0/24) to `peer`.
    /// A prefix that another peer held moves to `peer`, as WireGuard's insert does. Returns that
    /// previous owner, if any and not `peer` itself.
    @discardableResult
    public mutating func insert(_ prefix: IPPrefix, for peer: Peer) -> Peer? {
        let network = prefix.network
        let key = AddressKey(network.address)
        let previous: Peer?
        switch network.family {
        case .ipv4: previous = v4.insert(key, length: network.length, peer: peer)
        case .ipv6: previous = v6.insert(key, length: network.length, peer: peer)
        }
        if let previous, previous != peer {
            byPeer[previous]?.remove(network)
            if byPeer[previous]?.isEmpty == true { byPeer[previous] = nil }
        }
        byPeer[peer, default: []].insert(network)
        return previous == peer ? nil : previous
    }

    /// Removes one prefix (whoever holds it); returns its owner, nil when no peer held it.
    @discardableResult
    public mutating func remove(_ prefix: IPPrefix) -> Peer? {
        let network = prefix.network
        let key = AddressKey(network.address)
        let owner: Peer?
        switch network.family {
        case .ipv4: owner = v4.remove(key, length: network.length)
        case .ipv6: owner = v6.remove(key, length: network.length)
        }
        if let owner {
            byPeer[owner]?.remove(network)
            if byPeer[owner]?.isEmpty == true { byPeer[owner] = nil }
        }
        return owner
    }

    /// Removes every prefix of `peer` (a peer deleted, or its allowed IPs replaced).
    public mutating func removeAll(of peer: Peer) {
        guard let prefixes = byPeer.removeValue(forKey: peer) else { return }
        for prefix in prefixes {
            let key = AddressKey(prefix.address)
            switch prefix.family {
            case .ipv4: v4.remove(key, length: prefix.length)
            case .ipv6: v6.remove(key, length: prefix.length)
            }
        }
    }

    /// The peer owning the longest prefix that holds `address`, nil when none does. (The packet path
    /// uses the bytes form below; this and the other internal members are for tests and tools.)
    func lookup(_ address: IPAddress) -> Peer? {
        switch address {
        case .v4: v4.lookup(AddressKey(address))
        case .v6: v6.lookup(AddressKey(address))
        }
    }

    /// The same lookup from the address's network-order bytes as a packet header carries them (4 or 16).
    @inlinable
    public func lookup(addressBytes bytes: UnsafeRawBufferPointer) throws(AllowedIPsError) -> Peer? {
        switch bytes.count {
        case 4: return v4.lookup(AddressKey(v4Bytes: bytes))
        case 16: return v6.lookup(AddressKey(v6Bytes: bytes))
        default: throw .badAddressLength(bytes.count)
        }
    }

    /// The receive check: a packet that decrypted with `peer`'s keys may enter only if its source
    /// address routes back to `peer`, or else one peer could speak for another's addresses.
    func allows(_ peer: Peer, source: IPAddress) -> Bool {
        lookup(source) == peer
    }

    /// `allows` from a header's source address bytes (4 or 16).
    @inlinable
    public func allows(_ peer: Peer, sourceBytes: UnsafeRawBufferPointer) throws(AllowedIPsError) -> Bool {
        try lookup(addressBytes: sourceBytes) == peer
    }

    /// `peer`'s prefixes in network form, IPv4 first, then by address and length.
    func prefixes(of peer: Peer) -> [IPPrefix] {
        (byPeer[peer] ?? []).sorted { lhs, rhs in
            if lhs.family != rhs.family { return lhs.family == .ipv4 }
            let (left, right) = (AddressKey(lhs.address), AddressKey(rhs.address))
            if left != right { return left < right }
            return lhs.length < rhs.length
        }
    }

    /// Every peer that holds at least one prefix.
    var peers: Dictionary<Peer, Set<IPPrefix>>.Keys { byPeer.keys }

    /// The number of prefixes in the table.
    var count: Int { byPeer.values.reduce(0) { $0 + $1.count } }
}

/// An address as 128 bits, left-aligned (IPv4 in the top 32), so one masking rule serves both families.
@usableFromInline
struct AddressKey: Hashable, Comparable {
    @usableFromInline var high: UInt64
    @usableFromInline var low: UInt64

    @inlinable
    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ address: IPAddress) {
        switch address {
        case .v4(let value): self.init(high: UInt64(value) << 32, low: 0)
        case .v6(let bytes): self = bytes.withUnsafeBytes { AddressKey(v6Bytes: $0) }
        }
    }

    @inlinable
    init(v4Bytes bytes: UnsafeRawBufferPointer) {
        self.init(high: UInt64(UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self))) << 32, low: 0)
    }

    @inlinable
    init(v6Bytes bytes: UnsafeRawBufferPointer) {
        self.init(high: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                  low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// The first `length` bits kept, the rest cleared.
    @inlinable
    func masked(_ length: Int) -> AddressKey {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        return AddressKey(high: high & mask(length), low: low & mask(length - 64))
    }

    @usableFromInline
    static func < (lhs: AddressKey, rhs: AddressKey) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

/// One family's prefixes: a table per prefix length in use, longest first (the order a longest-prefix
/// lookup tries them).
@usableFromInline
struct FamilyTable<Peer> {
    @usableFromInline var byLength: [(length: Int, entries: [AddressKey: Peer])] = []

    @usableFromInline
    init() {}

    mutating func insert(_ key: AddressKey, length: Int, peer: Peer) -> Peer? {
        let masked = key.masked(length)
        if let index = byLength.firstIndex(where: { $0.length == length }) {
            return byLength[index].entries.updateValue(peer, forKey: masked)
        }
        byLength.insert((length, [masked: peer]), at: byLength.firstIndex { $0.length < length } ?? byLength.endIndex)
        return nil
    }

    @discardableResult
    mutating func remove(_ key: AddressKey, length: Int) -> Peer? {
        guard let index = byLength.firstIndex(where: { $0.length == length }),
              let removed = byLength[index].entries.removeValue(forKey: key.masked(length)) else { return nil }
        if byLength[index].entries.isEmpty { byLength.remove(at: index) }
        return removed
    }

    @inlinable
    func lookup(_ key: AddressKey) -> Peer? {
        for (length, entries) in byLength {
            if let peer = entries[key.masked(length)] { return peer }
        }
        return nil
    }
}
