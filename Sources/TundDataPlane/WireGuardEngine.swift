#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import CBatchIO
import CryptoCrew
import Errno
import NetAddress
import PacketCounters
import Synchronization
import WireGuardCrypto
import WireGuardNoise
import WireGuardPeers

/// A keypair in use and what it needs on the packet path: its two ciphers (OpenSSL contexts made once
/// per session, not per packet) and its peer. Found by local index, the receiver index on the wire.
/// Sealing and opening spread over the data-plane threads (`CryptoBoard`) use one more pair of contexts
/// per thread slot, each made the first time its thread needs it and touched by that thread only.
final class KeypairCiphers: CipherSlots {
    let keypair: Keypair
    let peer: WireGuardPeer
    let sending: ChaChaPoly
    let receiving: ChaChaPoly
    private let slots: Int
    /// Thread slot `s`'s sending cipher at `2 * s`, its receiving one at `2 * s + 1`; nil until first used.
    private let perSlot: UnsafeMutablePointer<ChaChaPoly?>

    init(_ keypair: Keypair, peer: WireGuardPeer, slots: Int = 0) throws(CryptoError) {
        self.keypair = keypair
        self.peer = peer
        sending = try ChaChaPoly(key: keypair.session.sendingKey)
        receiving = try ChaChaPoly(key: keypair.session.receivingKey)
        self.slots = slots
        perSlot = .allocate(capacity: 2 * slots)
        perSlot.initialize(repeating: nil, count: 2 * slots)
    }

    deinit {
        perSlot.deinitialize(count: 2 * slots)
        perSlot.deallocate()
    }

    /// Set when the engine forgets the keypair: a message opened on it before that is then dropped, as
    /// one arriving after it is.
    var isForgotten = false

    /// The cipher for one direction: the thread `slot`'s own (made the first time it asks), or with no
    /// slot the keypair's main one (for the thread holding the engine's lock). Nil only if OpenSSL could
    /// not make a context (the job then runs again with the main one).
    func cipher(sealing: Bool, slot: Int?) -> ChaChaPoly? {
        guard let slot else { return sealing ? sending : receiving }
        precondition(slot < slots, "cipher slot \(slot) of \(slots): the engine was made for a smaller crew")
        let index = 2 * slot + (sealing ? 0 : 1)
        if perSlot[index] == nil {
            perSlot[index] = try? ChaChaPoly(key: sealing ? keypair.session.sendingKey : keypair.session.receivingKey)
        }
        return perSlot[index]
    }
}

/// One `wireguard` worker's state: key, socket, timer, peers, their keypairs and indices, the
/// cryptokey routing table. The device-to-peer path is in `WireGuardMode`, the peer-to-device path in
/// `WireGuardReceiver`; handshakes, timers and configuration are here.
///
/// Every mutable field is touched only with `lock` held (hence `@unchecked Sendable`). The worker's
/// thread takes it once per batch (device read, socket read, timer), never per packet; the control
/// plane takes it for `setPeers` and `peers()`. See `WireGuardControl` for why a lock and not a queue.
final class WireGuardEngine: @unchecked Sendable {
    let lock = Mutex(())
    let socket: WireGuardSocket
    /// A CLOCK_MONOTONIC timerfd armed at the earliest PeerTimers deadline of any peer.
    let timer: Int32
    let privateKey: X25519.PrivateKey
    let publicKey: PublicKey
    var checker: CookieChecker
    /// Initiations with a good MAC1 in the current one-second window, and until when tund counts as under
    /// load: then an initiation must carry a MAC2 from a cookie we gave its source, or it gets a cookie
    /// reply instead of the Curve25519 work (WireGuard's answer to a flood from a spoofed or real source).
    var initiationsInWindow = 0
    var windowStart: UInt64 = 0
    var underLoadUntil: UInt64 = 0
    static let underLoadInitiationsPerSecond = 128
    let responder: WireGuardNoise.Responder
    let random = SystemRandom()

    var peers: [PublicKey: WireGuardPeer] = [:]
    /// Cryptokey routing straight to the peer object: one lookup per packet, no second table to probe.
    /// Replaced whole when the peers change, which forgets the remembered answers below.
    var allowed = AllowedIPs<WireGuardPeer>() {
        didSet { (lastRoute, lastSource) = (LastLookup(), LastLookup()) }
    }
    /// The last destination routed and the last source checked: a flow asks the same for every packet.
    var lastRoute = LastLookup()
    var lastSource = LastLookup()
    var indices = IndexTable<PublicKey>()
    /// Live keypairs by local index: one dictionary probe finds a transport message's keys and peer.
    var keypairs: [UInt32: KeypairCiphers] = [:]
    /// What the timerfd is armed for (nil: disarmed), so a batch that changes no deadline costs no syscall.
    var armedDeadline: UInt64?
    var closed = false
    /// Drops that name no peer (no route, unknown index or key, a MAC1 not made for us), by reason.
    var deviceDrops: [String: UInt64] = [:]
    /// Datagrams of one device batch on their way to peers (each with its own destination).
    let sendQueue: SendQueue
    /// The device has a virtio header: super-packets come from it and go into it, UDP GSO and GRO on
    /// the socket.
    let offloads: Bool
    /// Where the segments of a super-packet are put together and sealed (one after another, each
    /// 64-byte aligned), until the queue pointing at them is flushed. Empty without offloads.
    let sealArena: UnsafeMutableRawBufferPointer
    var sealArenaUsed = 0
    /// The keypair (with its ciphers) a packet was last sealed with and the one a message was last opened
    /// with, within one batch: consecutive packets of one session find their keys without a dictionary
    /// probe. Cleared after each batch and when their keypair is forgotten.
    var lastSending: KeypairCiphers?
    var lastReceiving: KeypairCiphers?
    /// The device's MTU (0: unknown): padding stops at it.
    var mtu: Int
    /// The peer and shape of the datagram queued last in this batch (`joinsLast`).
    var lastQueued: (peer: WireGuardPeer, pieces: Int)?
    /// Where `Offload.segment` rebuilds each segment's IP and TCP/UDP headers (one slot, reused: each is
    /// copied into the seal arena at once, so a super-packet of any number of segments fits).
    let segmentHeader: UnsafeMutableRawPointer
    /// Where a single transport message is built: a keepalive, a staged packet. Header, then payload.
    let single: UnsafeMutableRawBufferPointer

    /// How many data-plane threads may seal and open for this worker (each keypair keeps a cipher
    /// context per thread that does).
    let crewSlots: Int

    /// Handshakes and stale peers, for the control plane's events.
    let onPeerEvent: @Sendable (WireGuardPeerEvent) -> Void

    init(_ config: WireGuardWorkerConfig, offloads: Bool = false, crewSlots: Int = 0,
         onPeerEvent: @escaping @Sendable (WireGuardPeerEvent) -> Void = { _ in }) throws(PlaneError) {
        self.onPeerEvent = onPeerEvent
        self.crewSlots = crewSlots
        self.offloads = offloads
        mtu = config.mtu
        do {
            privateKey = try X25519.PrivateKey(rawRepresentation: config.privateKey)
            checker = try CookieChecker(localPublic: privateKey.publicKey)
        } catch {
            throw PlaneError(operation: "reading the wireguard private key (32 bytes)", errno: Errno(EINVAL))
        }
        publicKey = privateKey.publicKey
        responder = WireGuardNoise.Responder(localStatic: privateKey)
        socket = try WireGuardSocket.open(port: config.listenPort, gro: offloads)
        timer = tund_timerfd_create()
        guard timer >= 0 else {
            let code = errno
            close(socket.descriptor)
            throw PlaneError(operation: "timerfd_create", errno: Errno(code))
        }
        // With offloads one read may be 64 KiB of TCP: room for the datagrams of several super-packets.
        sendQueue = SendQueue(capacity: offloads ? SendQueue.defaultCapacity : Scratch.batchLimit, peer: nil, gso: offloads)
        sealArena = .allocate(byteCount: offloads ? 1 << 20 : 0, alignment: 64)
        segmentHeader = .allocate(byteCount: Offload.maximumHeader, alignment: 64)
        single = .allocate(byteCount: Scratch.slotSize + TransportHeader.count + 32, alignment: 64)
        setPeers(config.peers)
    }

    deinit {
        sendQueue.deallocate()
        single.deallocate()
        sealArena.deallocate()
        segmentHeader.deallocate()
    }

    /// Runs `body` with the lock held.
    @inline(__always)
    func locked<R: Sendable>(_ body: () -> R) -> R {
        lock.withLock { _ in body() }
    }

    /// Closes the socket and the timer: the worker stopped (its descriptors are already out of the loop).
    func shutdown() {
        locked {
            guard !closed else { return }
            closed = true
            close(socket.descriptor)
            close(timer)
        }
    }

    // MARK: Configuration (lock held)

    /// Replaces the peer set. A peer that stays (same public key and preshared key) keeps its sessions,
    /// timers and statistics; its endpoint, keepalive interval and allowed IPs take the new values. A
    /// peer removed loses its keypairs and indices; a new one starts empty. Keys that are not 32 bytes
    /// are skipped (the control plane validates them first).
    func setPeers(_ configs: [WireGuardPeerConfig]) {
        let now = monotonicNanoseconds()
        var next: [PublicKey: WireGuardPeer] = [:]
        var table = AllowedIPs<WireGuardPeer>()
        for config in configs {
            guard let key = try? PublicKey(bytes: config.publicKey), next[key] == nil else { continue }
            let peer: WireGuardPeer
            // A new preshared key changes every session key: the peer starts over.
            if let existing = peers[key], existing.config.presharedKey == config.presharedKey {
                peer = existing
                if let endpoint = config.endpoint, endpoint != existing.config.endpoint { peer.setEndpoint(endpoint, socket: socket) }
                peer.config = config
            } else {
                guard let made = try? WireGuardPeer(config: config, localStatic: privateKey, socket: socket) else { continue }
                peer = made
            }
            let interval = UInt16(clamping: max(0, config.persistentKeepaliveSeconds))
            if interval != peer.timers.persistentKeepaliveInterval, peer.timers.setPersistentKeepalive(interval, now: now) != nil {
                peer.keepaliveRequested = true
            }
            for prefix in config.allowedIPs { table.insert(prefix, for: peer) }
            next[key] = peer
        }
        for (key, peer) in peers where next[key] !== peer { forgetSessions(of: peer) }
        peers = next
        allowed = table
        // Wake the thread now: new deadlines (a keepalive asked for) are looked at in `timerFired`.
        if !closed {
            _ = tund_timerfd_arm(timer, now)
            armedDeadline = now
        }
    }

    func statuses() -> [WireGuardPeerStatus] {
        peers.values.map(\.status).sorted { $0.publicKey.lexicographicallyPrecedes($1.publicKey) }
    }

    /// Every keypair and index of `peer` freed (removed, or its key material expired).
    func forgetSessions(of peer: WireGuardPeer) {
        for keypair in peer.keypairs.removeAll() { forget(keypair) }
        if let pending = peer.pendingHandshakeIndex { indices.remove(pending) }
        peer.pendingHandshakeIndex = nil
    }

    func forget(_ keypair: Keypair) {
        keypairs.removeValue(forKey: keypair.localIndex)?.isForgotten = true
        if lastSending?.keypair === keypair { lastSending = nil }
        if lastReceiving?.keypair === keypair { lastReceiving = nil }
        indices.remove(keypair.localIndex)
    }

    /// A completed handshake's keys into the peer's slots (initiator: current at once; responder: next,
    /// until the initiator's first transport message confirms it).
    func install(_ session: Session, for peer: WireGuardPeer, now: UInt64) {
        let keypair = Keypair(session: session, createdAt: now)
        guard let ciphers = try? KeypairCiphers(keypair, peer: peer, slots: crewSlots) else {
            indices.remove(session.localIndex)
            return
        }
        for retired in peer.keypairs.install(keypair) { forget(retired) }
        indices.replace(session.localIndex, with: .keypair(peer.publicKey))
        keypairs[session.localIndex] = ciphers
        peer.timers.sessionDerived(now: now)
    }

    // MARK: Handshake initiation (lock held)

    /// Message type 1 to the peer's endpoint, with a fresh local index (the one before is freed: only
    /// the latest initiation's response is accepted).
    func initiateHandshake(_ peer: WireGuardPeer, now: UInt64) {
        guard peer.hasEndpoint else { return }
        if let pending = peer.pendingHandshakeIndex { indices.remove(pending) }
        peer.pendingHandshakeIndex = nil
        guard let index = try? indices.insert(.handshake(peer.publicKey), random: random),
              let message = try? peer.initiator.makeInitiation(localIndex: index, random: random) else { return }
        peer.pendingHandshakeIndex = index
        var bytes = message.bytes
        guard (try? peer.cookies.stamp(&bytes, now: .now)) != nil else { return }
        _ = bytes.withUnsafeBytes { socket.send($0, to: peer.endpoint, length: peer.endpointLength) }
        // Reported even when the socket refused it: the retransmission timer is the remedy.
        peer.timers.packetSent(.handshakeInitiation, now: now)
        peer.statistics.handshakesInitiated &+= 1
    }

    // MARK: Timers (lock held)

    /// What a timer (or a packet path) asked for.
    func perform(_ action: TimerAction, for peer: WireGuardPeer, now: UInt64, _ tally: inout BatchTally) {
        switch action {
        case .initiateHandshake:
            initiateHandshake(peer, now: now)
        case .sendKeepalive:
            // Staged packets serve as well as an empty one.
            if peer.staged.isEmpty { _ = sendSingle(to: peer, payloadCount: 0, now: now, &tally) } else { flushStaged(peer, now: now, &tally) }
        case .expireSessions:
            forgetSessions(of: peer)
            announce(.stale(reason: "sessions expired"), peer)
        case .giveUp:
            peer.noSessionDrops &+= UInt64(peer.staged.count)
            peer.staged.removeAll()
            announce(.stale(reason: "handshake attempts gave up"), peer)
        }
    }

    /// A handshake completed with `peer`: counted, and told to the control plane.
    func handshakeCompleted(_ peer: WireGuardPeer) {
        peer.statistics.recordHandshake(at: Int64(realtimeNanoseconds()))
        announce(.handshake, peer)
    }

    func announce(_ kind: WireGuardPeerEvent.Kind, _ peer: WireGuardPeer) {
        onPeerEvent(WireGuardPeerEvent(kind: kind, publicKey: peer.publicKey.base64, endpoint: peer.statistics.endpoint))
    }

    /// The timerfd fired (or the control plane woke the thread): every due action of every peer.
    func timerFired(_ tally: inout BatchTally) {
        guard !closed else { return }
        tund_timerfd_drain(timer)
        armedDeadline = nil
        let now = monotonicNanoseconds()
        for peer in peers.values {
            if peer.keepaliveRequested {
                peer.keepaliveRequested = false
                perform(.sendKeepalive(.persistent), for: peer, now: now, &tally)
            }
            for action in peer.timers.dueActions(now: now) { perform(action, for: peer, now: now, &tally) }
        }
        rearm()
    }

    /// Arms the timerfd at the earliest deadline of any peer (one pass over the peers per batch).
    func rearm() {
        guard !closed else { return }
        var earliest: UInt64?
        for peer in peers.values {
            if let deadline = peer.timers.nextDeadline, deadline < (earliest ?? .max) { earliest = deadline }
        }
        guard earliest != armedDeadline else { return }
        _ = tund_timerfd_arm(timer, earliest ?? 0)
        armedDeadline = earliest
    }

    // MARK: Single transport messages (lock held)

    /// The ciphers of `peer`'s keypair that may send now, nil without one (or without an endpoint).
    func sendingCiphers(for peer: WireGuardPeer, now: UInt64) -> KeypairCiphers? {
        guard peer.hasEndpoint, let keypair = peer.keypairs.sendingKeypair(now: now) else { return nil }
        if let cached = lastSending, cached.keypair === keypair { return cached }
        lastSending = keypairs[keypair.localIndex]
        return lastSending
    }

    /// What sealing a transport message came to.
    enum Sealing {
        /// The body's sealed size (padding and tag included), and the keypair it was sealed with.
        case sealed(Int, Keypair)
        /// The peer has no endpoint or no keypair that may send now: nothing was written.
        case noSession
        /// The cipher refused (no room for padding and tag): nothing to send.
        case failed
    }

    /// Seals the `count` bytes at `body` for `peer` with its sending keypair and next counter (padding
    /// and the tag go in the `room` bytes from `body`), and writes the 16-byte transport header at `header`.
    /// With a crew member, the padded packet goes on its board instead, to be sealed with the rest of the
    /// batch before the queue pointing at it is sent (`flushQueue`): the size is known either way.
    func sealTransport(_ body: UnsafeMutableRawPointer, count: Int, room: Int, header: UnsafeMutableRawPointer,
                       for peer: WireGuardPeer, now: UInt64, on member: CrewMember? = nil) -> Sealing {
        guard let ciphers = sendingCiphers(for: peer, now: now), let counter = ciphers.keypair.takeSendCounter(now: now) else {
            return .noSession
        }
        let buffer = UnsafeMutableRawBufferPointer(start: body, count: room)
        TransportHeader(receiverIndex: ciphers.keypair.remoteIndex, counter: counter)
            .write(into: UnsafeMutableRawBufferPointer(start: header, count: TransportHeader.count))
        guard let padded = WireGuardMode.pad(buffer, count: count, mtu: mtu) else { return .failed }
        if let board = member?.board, !board.isFull {
            board.append(body, count: padded, counter: counter, ciphers: ciphers, sealing: true)
            return .sealed(padded + ChaChaPoly.tagCount, ciphers.keypair)
        }
        guard let sealed = try? ciphers.sending.seal(inPlace: buffer, plaintextCount: padded, counter: counter) else { return .failed }
        return .sealed(sealed, ciphers.keypair)
    }

    /// Seals what waits on `member`'s board (a failed seal leaves zeros, never plaintext, and is counted),
    /// then sends the queue.
    func flushQueue(_ member: CrewMember?, _ tally: inout BatchTally) {
        if let member, member.board.count > 0 {
            member.runBoard()
            let board = member.board
            for index in 0..<board.count where board.jobs[index].result < 0 { tally[.peerSendErrors] &+= 1 }
            board.clear()
        }
        sendQueue.flush(socket.descriptor, &tally)
    }

    /// What follows a transport message sent to `peer` with `count` bytes of payload (0: a keepalive):
    /// its statistics, its timers, and whatever they ask for next (a re-key).
    func sent(_ count: Int, to peer: WireGuardPeer, on keypair: Keypair, now: UInt64, _ tally: inout BatchTally) {
        peer.statistics.recordSent(payloadBytes: count)
        peer.timers.packetSent(count == 0 ? .keepalive : .data, now: now)
        if let action = peer.timers.afterSending(current: keypair, now: now) { perform(action, for: peer, now: now, &tally) }
    }

    /// Seals `single[16..<16 + payloadCount]` (an empty payload is a keepalive) with the peer's sending
    /// keypair and sends it at once; false when there is no keypair that may send, or no endpoint.
    func sendSingle(to peer: WireGuardPeer, payloadCount: Int, now: UInt64, _ tally: inout BatchTally) -> Bool {
        guard case .sealed(let sealed, let keypair) = sealTransport(single.baseAddress! + TransportHeader.count, count: payloadCount,
                                                                    room: single.count - TransportHeader.count,
                                                                    header: single.baseAddress!, for: peer, now: now) else { return false }
        let message = UnsafeRawBufferPointer(rebasing: single[0..<(TransportHeader.count + sealed)])
        if socket.send(message, to: peer.endpoint, length: peer.endpointLength) {
            tally[.peerPacketsSent] &+= 1
            tally[.peerBytesSent] &+= UInt64(message.count)
        } else {
            tally[.peerSendErrors] &+= 1
        }
        sent(payloadCount, to: peer, on: keypair, now: now, &tally)
        return true
    }

    /// Sends what waited for a session, oldest first, while a keypair may send.
    func flushStaged(_ peer: WireGuardPeer, now: UInt64, _ tally: inout BatchTally) {
        while let packet = peer.staged.first {
            packet.withUnsafeBytes { (single.baseAddress! + TransportHeader.count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            guard sendSingle(to: peer, payloadCount: packet.count, now: now, &tally) else { return }
            peer.staged.removeFirst()
        }
    }

    func countDeviceDrop(_ reason: String) {
        deviceDrops[reason, default: 0] &+= 1
    }
}

/// One address looked up in the allowed IPs and the peer it routes to. Comparing 4 or 16 bytes costs less
/// than hashing them once per prefix length, and a TCP flow's packets all carry the same addresses.
struct LastLookup {
    private var address: (UInt64, UInt64) = (0, 0)
    private var count = 0
    private var peer: WireGuardPeer?

    /// The remembered peer, when `bytes` (4 or 16, network order) is the remembered address.
    func peer(for bytes: UnsafeRawBufferPointer) -> WireGuardPeer? {
        guard bytes.count == count, let peer else { return nil }
        return Self.key(bytes) == address ? peer : nil
    }

    mutating func remember(_ bytes: UnsafeRawBufferPointer, routesTo peer: WireGuardPeer) {
        (address, count, self.peer) = (Self.key(bytes), bytes.count, peer)
    }

    private static func key(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        bytes.count == 16 ? (bytes.loadUnaligned(as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                          : (UInt64(bytes.loadUnaligned(as: UInt32.self)), 0)
    }
}
