import WireGuardNoise

/// Why no index could be handed out.
public enum IndexTableError: Error, Equatable, Sendable {
    /// Every random draw hit an index in use: with 2^32 indices and at most a few per peer this means
    /// the random source is broken (constant), not that the table is full.
    case noFreeIndex(attempts: Int)
}

/// What a local index names: a handshake this side started (a response to it will carry the index), or a
/// keypair of a completed session (transport messages carry it).
public enum IndexEntry<Peer: Hashable>: Hashable {
    case handshake(Peer)
    case keypair(Peer)

    public var peer: Peer {
        switch self {
        case .handshake(let peer), .keypair(let peer): peer
        }
    }
}

/// The device's table of local indices: the receiver index of every message a peer sends here names
/// the entry, so an incoming packet finds its peer (and then the keypair or handshake) without trying
/// keys. Indices are random, so they say nothing about how many sessions exist or which came first, and
/// unique among live entries.
public struct IndexTable<Peer: Hashable> {
    /// Draws before giving up; a working random source collides this often with odds far below 2^-300.
    public static var maximumAttempts: Int { 32 }

    private var entries: [UInt32: IndexEntry<Peer>] = [:]

    public init() {}

    /// A fresh random index for `entry`, unused by any live entry.
    public mutating func insert(_ entry: IndexEntry<Peer>, random: some RandomSource) throws(IndexTableError) -> UInt32 {
        for _ in 0..<Self.maximumAttempts {
            let index = random.makeIndex()
            if entries[index] == nil {
                entries[index] = entry
                return index
            }
        }
        throw .noFreeIndex(attempts: Self.maximumAttempts)
    }

    /// Re-points a live index: a handshake that completed keeps its index for the keypair it made, since
    /// the peer already has it. False (and nothing changed) when `index` is not live.
    @discardableResult
    public mutating func replace(_ index: UInt32, with entry: IndexEntry<Peer>) -> Bool {
        guard entries[index] != nil else { return false }
        entries[index] = entry
        return true
    }

    /// What `index` names, nil when nothing live does (the packet is then dropped).
    public subscript(index: UInt32) -> IndexEntry<Peer>? { entries[index] }

    /// Frees `index`; returns what it named.
    @discardableResult
    public mutating func remove(_ index: UInt32) -> IndexEntry<Peer>? {
        entries.removeValue(forKey: index)
    }

    /// Frees every index of `peer` (the peer removed, or its keys zeroed).
    public mutating func removeAll(of peer: Peer) {
        entries = entries.filter { $0.value.peer != peer }
    }

    /// Live indices.
    public var count: Int { entries.count }
}
