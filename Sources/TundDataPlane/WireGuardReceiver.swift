#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import CBatchIO
import CryptoCrew
import WireGuardCrypto
import WireGuardNoise
import WireGuardPeers

/// `wireguard`, from the peers to the device: `recvmmsg` batches on the worker's UDP socket. Transport
/// messages (type 4) find their keypair by receiver index, pass the replay window, are opened where
/// they were received and, when their inner source belongs to the peer, written into the device;
/// handshake messages (types 1-3) go through the WireGuardNoise library. Also serves the worker's timer.
/// With offloads, a message may be a run of datagrams the kernel merged (UDP GRO), and the opened
/// packets of one TCP flow are merged into super-packets before they are written (`GROMerge`).
final class WireGuardReceiver: DatagramReceiver {
    let engine: WireGuardEngine

    init(engine: WireGuardEngine) {
        self.engine = engine
    }

    func receive(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally) {
        engine.locked { engine.receive(scratch, into: device, &tally) }
    }

    func timerFired(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally) {
        engine.locked { engine.timerFired(&tally) }
    }
}

extension WireGuardEngine {
    /// Datagrams waiting on the socket (lock held).
    func receive(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally) {
        guard !closed else { return }
        let batch = scratch.messages
        // With offloads the inner packets are gathered and written by GROMerge (a virtio header on each,
        // runs of one TCP flow merged); without, each is written as it is opened.
        let delivery = Delivery(device: device, packets: offloads ? scratch.packets : nil, merged: scratch.merged)
        let member = scratch.member
        assert(member?.board.count ?? 0 == 0)  // the thread's, shared: empty between batches
        for _ in 0..<TunnelReceiver.roundsPerWakeup {  // as the tunnel: a flooded socket yields to the other devices
            batch.prepareReceive(control: offloads)
            let received = tund_recvmmsg(socket.descriptor, batch.headers, UInt32(Scratch.batchLimit), Int32(MSG_DONTWAIT))
            if received <= 0 {
                if received < 0 && errno != EAGAIN && errno != EINTR { tally[.peerReceiveErrors] &+= 1 }
                break
            }
            let now = monotonicNanoseconds()
            scratch.packets.count = 0
            for index in 0..<Int(received) {
                let length = Int(batch.headers[index].msg_len)
                let source = UnsafeRawPointer(batch.addresses + index)
                let sourceLength = batch.headers[index].msg_hdr.msg_namelen
                // A message the kernel merged (UDP GRO) is a run of datagrams of one size, the last maybe shorter.
                let segmentSize = offloads ? batch.groSegmentSize(index) ?? length : length
                let start = batch.slot(index).baseAddress!
                var offset = 0
                repeat {
                    let size = min(segmentSize, length - offset)
                    let message = UnsafeMutableRawBufferPointer(start: start + offset, count: size)
                    receiveMessage(message, source: source, sourceLength: sourceLength, now: now, delivery, member, &tally)
                    offset += max(size, 1)
                } while offset < length
            }
            finishOpening(member, now: now, delivery, &tally)
            delivery.flush(&tally)
            if received < Scratch.batchLimit { break }
        }
        lastReceiving = nil
        rearm()
    }

    /// Where opened packets go: straight into the device, or gathered for GROMerge.
    struct Delivery {
        let device: any PacketDevice
        let packets: PacketList?
        let merged: MergeSpace

        func deliver(_ packet: UnsafeRawBufferPointer, _ tally: inout BatchTally) {
            guard let packets else { return device.writeCounted(packet, prefix: 0, &tally) }
            if packets.count == packets.capacity { flush(&tally) }
            packets.append(UnsafeMutableRawPointer(mutating: packet.baseAddress!), packet.count)
        }

        func flush(_ tally: inout BatchTally) {
            guard let packets, packets.count > 0 else { return }
            GROMerge.write(packets, into: device, merging: merged, integrity: .authenticated, &tally)
            packets.count = 0
        }
    }

    /// One datagram from a peer, by its type. A transport message waits on `member`'s board to be opened
    /// with the rest of the batch; anything else first lets the messages before it finish, so every
    /// message takes effect in the order it came.
    private func receiveMessage(_ message: UnsafeMutableRawBufferPointer, source: UnsafeRawPointer, sourceLength: socklen_t,
                                now: UInt64, _ delivery: Delivery, _ member: CrewMember?, _ tally: inout BatchTally) {
        let length = message.count
        tally[.peerPacketsReceived] &+= 1
        tally[.peerBytesReceived] &+= UInt64(length)
        // The type is a little-endian 32-bit word: 1-4, then three zero bytes.
        let type = length >= 4 ? UInt32(littleEndian: message.loadUnaligned(as: UInt32.self)) : 0
        if type != MessageType.transportData.rawValue { finishOpening(member, now: now, delivery, &tally) }
        switch (type, length) {
        case (MessageType.transportData.rawValue, TransportHeader.minimumMessageCount...):
            receiveTransport(message, source: source, sourceLength: sourceLength, now: now, delivery, member, &tally)
        case (MessageType.initiation.rawValue, InitiationMessage.count):
            receiveInitiation(Array(message), source: source, sourceLength: sourceLength, now: now)
        case (MessageType.response.rawValue, ResponseMessage.count):
            receiveResponse(Array(message), source: source, sourceLength: sourceLength, now: now, &tally)
        case (MessageType.cookieReply.rawValue, CookieReplyMessage.count):
            receiveCookieReply(Array(message))
        default:
            tally[.droppedMalformed] &+= 1
        }
    }

    /// Counts an initiation with a good MAC1; under load once a second holds more than the threshold,
    /// and for a second after.
    private func isUnderLoad(now: UInt64) -> Bool {
        if now &- windowStart >= 1_000_000_000 {
            windowStart = now
            initiationsInWindow = 0
        }
        initiationsInWindow += 1
        if initiationsInWindow > Self.underLoadInitiationsPerSecond { underLoadUntil = now &+ 1_000_000_000 }
        return now < underLoadUntil
    }

    /// What a cookie is made for: the source's IP address bytes, then its port big-endian.
    static func cookieSource(_ raw: UnsafeRawPointer, length: socklen_t) -> [UInt8] {
        let family = Int32(raw.load(as: sa_family_t.self))
        let port = Array(UnsafeRawBufferPointer(start: raw + 2, count: 2))
        if family == AF_INET6, length >= socklen_t(MemoryLayout<sockaddr_in6>.size) {
            return Array(UnsafeRawBufferPointer(start: raw + 8, count: 16)) + port
        }
        return Array(UnsafeRawBufferPointer(start: raw + 4, count: 4)) + port
    }

    /// Type 4: find the keypair and check the replay window; then open it in place, on the board with the
    /// rest of the batch when there is one (`finishOpening`), at once otherwise (`acceptOpened`).
    private func receiveTransport(_ message: UnsafeMutableRawBufferPointer, source: UnsafeRawPointer, sourceLength: socklen_t,
                                  now: UInt64, _ delivery: Delivery, _ member: CrewMember?, _ tally: inout BatchTally) {
        guard let header = try? TransportHeader(reading: UnsafeRawBufferPointer(message)) else { return }
        let entry: KeypairCiphers
        if let cached = lastReceiving, cached.keypair.localIndex == header.receiverIndex {
            entry = cached
        } else if let found = keypairs[header.receiverIndex] {
            entry = found
            lastReceiving = found
        } else {
            dropForNoSession(&tally)
            return
        }
        guard entry.keypair.canReceive(now: now), entry.keypair.wouldAccept(counter: header.counter) else {
            entry.peer.statistics.recordDrop(.replay)
            return
        }
        let body = message.baseAddress! + TransportHeader.count
        let count = message.count - TransportHeader.count
        if let member {
            if member.board.isFull { finishOpening(member, now: now, delivery, &tally) }
            member.board.append(body, count: count, counter: header.counter, ciphers: entry, sealing: false,
                                source: source, sourceLength: sourceLength)
            return
        }
        var job = CryptoJob(body: body, count: count, counter: header.counter, ciphers: entry, sealing: false,
                            source: source, sourceLength: sourceLength)
        job.run(slot: nil)
        withUnsafeMutablePointer(to: &job) { acceptOpened($0, now: now, delivery, &tally) }
    }

    /// A transport message for a session tund does not have (never had, or forgot): never written into
    /// the device, counted as from an unexpected source and as the device's `unknown_peer` drop.
    private func dropForNoSession(_ tally: inout BatchTally) {
        tally[.droppedUnexpectedSource] &+= 1
        countDeviceDrop("unknown_peer")
    }

    /// Opens what waits on `member`'s board (spread over the crew) and takes each message in order.
    private func finishOpening(_ member: CrewMember?, now: UInt64, _ delivery: Delivery, _ tally: inout BatchTally) {
        guard let member, member.board.count > 0 else { return }
        member.runBoard()
        let board = member.board
        for index in 0..<board.count { acceptOpened(board.jobs + index, now: now, delivery, &tally) }
        board.clear()
    }

    /// An opened transport message (or one that failed to open): the replay window, roaming, the session's
    /// confirmation, then the inner packet into the device when its source belongs to the peer.
    /// (Read where it lies: a copy of the job would retain and release its keys once more per packet.)
    private func acceptOpened(_ opened: UnsafeMutablePointer<CryptoJob>, now: UInt64, _ delivery: Delivery, _ tally: inout BatchTally) {
        let job = UnsafePointer(opened)
        let entry = unsafeDowncast(job.pointee.ciphers as AnyObject, to: KeypairCiphers.self)
        // Forgotten while the message waited (a later message of the batch retired it): as if it came after.
        guard !entry.isForgotten else {
            dropForNoSession(&tally)
            return
        }
        let (peer, keypair) = (entry.peer, entry.keypair)
        guard job.pointee.result >= 0, let source = job.pointee.source else {
            peer.statistics.recordDrop(.badMAC)
            return
        }
        let plain = job.pointee.result
        let body = UnsafeMutableRawBufferPointer(start: job.pointee.body, count: job.pointee.count)
        // Recorded only now: a forged packet must not move the window.
        guard keypair.acceptReceived(counter: job.pointee.counter) else {
            peer.statistics.recordDrop(.replay)
            return
        }
        peer.roam(to: source, length: job.pointee.sourceLength)
        let (confirmed, retired) = peer.keypairs.receivedData(on: keypair)
        if let retired { forget(retired) }
        if confirmed {
            // The initiator proved it holds the keys of our response: the handshake is complete here.
            peer.timers.handshakeCompleted(now: now)
            handshakeCompleted(peer)
            flushStaged(peer, now: now, &tally)
        }
        if plain == 0 {
            peer.statistics.recordReceived(payloadBytes: 0)
            peer.timers.packetReceived(.keepalive, now: now)
        } else {
            // The inner packet's own length (the rest is padding) and its source, which must route back
            // to this peer.
            let inner = UnsafeRawBufferPointer(rebasing: body[0..<plain])
            let total: Int
            let sourceBytes: UnsafeRawBufferPointer
            switch inner[0] >> 4 {
            case 4 where plain >= 20:
                total = Int(inner[2]) << 8 | Int(inner[3])
                sourceBytes = UnsafeRawBufferPointer(rebasing: inner[12..<16])
            case 6 where plain >= 40:
                total = 40 + (Int(inner[4]) << 8 | Int(inner[5]))
                sourceBytes = UnsafeRawBufferPointer(rebasing: inner[8..<24])
            default:
                tally[.droppedMalformed] &+= 1
                return
            }
            guard total <= plain, total >= 20 else {
                tally[.droppedMalformed] &+= 1
                return
            }
            if lastSource.peer(for: sourceBytes) !== peer {
                guard (try? allowed.allows(peer, sourceBytes: sourceBytes)) == true else {
                    peer.statistics.recordDrop(.sourceNotAllowed)
                    return
                }
                lastSource.remember(sourceBytes, routesTo: peer)
            }
            delivery.deliver(UnsafeRawBufferPointer(rebasing: inner[0..<total]), &tally)
            peer.statistics.recordReceived(payloadBytes: total)
            peer.timers.packetReceived(.data, now: now)
        }
        if let action = peer.timers.afterReceiving(current: peer.keypairs.current, now: now) {
            perform(action, for: peer, now: now, &tally)
        }
    }

    /// Type 1: a peer starts a handshake; answer with type 2 and keep the keypair as `next`. Under load,
    /// an initiation without a valid MAC2 gets a cookie reply to its source instead.
    private func receiveInitiation(_ bytes: [UInt8], source: UnsafeRawPointer, sourceLength: socklen_t, now: UInt64) {
        guard checker.isMAC1Valid(bytes) else {
            countDeviceDrop("bad_mac")
            return
        }
        if isUnderLoad(now: now) {
            let sourceBytes = Self.cookieSource(source, length: sourceLength)
            if !checker.isMAC2Valid(bytes, source: sourceBytes, now: .now) {
                if let reply = try? checker.makeCookieReply(to: bytes, source: sourceBytes, now: .now, random: random) {
                    _ = reply.bytes.withUnsafeBytes { reply in
                        source.withMemoryRebound(to: sockaddr_storage.self, capacity: 1) { socket.send(reply, to: $0, length: sourceLength) }
                    }
                }
                countDeviceDrop("under_load_cookie")
                return
            }
        }
        guard let message = try? InitiationMessage(bytes: bytes) else { return }
        var named: WireGuardPeer?
        let consumed: ConsumedInitiation
        do {
            consumed = try responder.consumeInitiation(message) { key in
                named = peers[key]
                return named.map { .known(latestTimestamp: $0.latestTimestamp) } ?? .unknown
            }
        } catch .replayedTimestamp {
            named?.statistics.recordDrop(.replay)
            return
        } catch .unknownPeer {
            countDeviceDrop("unknown_peer")
            return
        } catch {
            countDeviceDrop("bad_mac")
            return
        }
        guard let peer = peers[consumed.peer],
              let index = try? indices.insert(.keypair(peer.publicKey), random: random) else { return }
        guard let (response, session) = try? responder.makeResponse(to: consumed, localIndex: index,
                                                                    presharedKey: peer.presharedKey, random: random) else {
            indices.remove(index)
            return
        }
        // A replay of this very initiation is refused from now on.
        peer.latestTimestamp = consumed.timestamp
        var out = response.bytes
        guard (try? peer.cookies.stamp(&out, now: .now)) != nil else {
            indices.remove(index)
            return
        }
        peer.roam(to: source, length: sourceLength)
        install(session, for: peer, now: now)
        _ = out.withUnsafeBytes { socket.send($0, to: peer.endpoint, length: peer.endpointLength) }
        peer.timers.packetReceived(.handshakeInitiation, now: now)
        peer.timers.packetSent(.handshakeResponse, now: now)
    }

    /// Type 2: the answer to our initiation; the session is ours to send on at once.
    private func receiveResponse(_ bytes: [UInt8], source: UnsafeRawPointer, sourceLength: socklen_t, now: UInt64,
                                 _ tally: inout BatchTally) {
        guard checker.isMAC1Valid(bytes) else {
            countDeviceDrop("bad_mac")
            return
        }
        guard let message = try? ResponseMessage(bytes: bytes) else { return }
        guard case .handshake(let key)? = indices[message.receiverIndex], let peer = peers[key],
              peer.pendingHandshakeIndex == message.receiverIndex else {
            countDeviceDrop("unknown_peer")
            return
        }
        guard let session = try? peer.initiator.consumeResponse(message) else {
            peer.statistics.recordDrop(.badMAC)
            return
        }
        peer.pendingHandshakeIndex = nil
        peer.roam(to: source, length: sourceLength)
        install(session, for: peer, now: now)
        peer.timers.handshakeCompleted(now: now)
        peer.timers.packetReceived(.handshakeResponse, now: now)
        handshakeCompleted(peer)
        // The responder may send only once it hears from us on the new keys: staged packets, or an
        // empty one, as a keepalive sends.
        perform(.sendKeepalive(.passive), for: peer, now: now, &tally)
    }

    /// Type 3: a peer under load asks for MAC2 on our next handshake message.
    private func receiveCookieReply(_ bytes: [UInt8]) {
        guard let reply = try? CookieReplyMessage(bytes: bytes),
              let entry = indices[reply.receiverIndex], let peer = peers[entry.peer] else {
            countDeviceDrop("unknown_peer")
            return
        }
        try? peer.cookies.consumeCookieReply(reply, now: .now)
    }
}
