import BackgroundThread
import WireGuardCrypto
import WireGuardNoise
import WireGuardPeers
import CryptoCrew

/// `wireguard`, from the device to the peers: each packet's destination picks its peer (cryptokey
/// routing); with a keypair that may send, the packet is padded and sealed where it was read, its
/// 16-byte transport header built in the send queue's header arena, and the batch goes out in one
/// `sendmmsg` (each message to its own peer's endpoint). Without one, it is staged and a handshake
/// asked for. No allocation per packet on this path. The other direction is `WireGuardReceiver`.
/// With offloads (a virtio header), a TSO super-packet is cut into the packets it stands for, and those
/// go out as one UDP GSO message per super-packet.
final class WireGuardMode: PacketMode {
    let engine: WireGuardEngine

    init(engine: WireGuardEngine) {
        self.engine = engine
    }

    func handle(_ batch: ReadBatch, _ device: any PacketDevice, _ tally: inout BatchTally) -> ModeVerdict {
        engine.locked { engine.send(batch, &tally) }
        return .carryOn
    }

    /// Pads `count` bytes at the start of `buffer` with zeros to a multiple of 16 (hiding exact lengths,
    /// as the protocol asks) but not past the device's `mtu` (0: no bound), so a full-sized packet stays
    /// the size the MTU was chosen for. The padded size, nil when the buffer has no room for it and the tag.
    @inline(__always)
    static func pad(_ buffer: UnsafeMutableRawBufferPointer, count: Int, mtu: Int) -> Int? {
        let padded = paddedCount(count, mtu: mtu)
        guard padded + ChaChaPoly.tagCount <= buffer.count else { return nil }
        if padded > count { (buffer.baseAddress! + count).initializeMemory(as: UInt8.self, repeating: 0, count: padded - count) }
        return padded
    }

    /// The whitepaper's padding: up to a multiple of 16, but never past the MTU (nor below the packet).
    @inline(__always)
    static func paddedCount(_ count: Int, mtu: Int) -> Int {
        let rounded = (count + 15) & ~15
        return mtu > 0 ? max(count, min(rounded, mtu)) : rounded
    }

    /// Where the packet goes: the destination address bytes of an IPv4 or IPv6 header, nil otherwise.
    @inline(__always)
    static func destination(of packet: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let first = packet.first else { return nil }
        switch first >> 4 {
        case 4 where packet.count >= 20: return UnsafeRawBufferPointer(rebasing: packet[16..<20])
        case 6 where packet.count >= 40: return UnsafeRawBufferPointer(rebasing: packet[24..<40])
        default: return nil
        }
    }
}

extension WireGuardEngine {
    /// One batch read from the device (lock held).
    func send(_ batch: ReadBatch, _ tally: inout BatchTally) {
        guard !closed else { return }
        let now = monotonicNanoseconds()
        let member = batch.scratch.member
        // The board is the thread's, shared by every device on it and both directions: empty between batches.
        assert(member?.board.count ?? 0 == 0)
        for index in 0..<batch.count {
            let packet = batch.packet(index)
            if batch.prefix > 0 {
                let header = VirtioNetHeader(batch.frame(index).baseAddress!)
                if header.gsoType & ~VirtioNetHeader.gsoECN != VirtioNetHeader.gsoNone {
                    sendSegments(of: packet, header, now: now, member, &tally)
                    continue
                }
                guard Offload.finishChecksum(packet.baseAddress!, length: packet.count, header: header) else {
                    tally[.droppedMalformed] &+= 1
                    continue
                }
            }
            // The slot goes on past the packet: room for padding and the tag.
            sendInPlace(packet, room: Scratch.slotSize - batch.prefix, now: now, member, &tally)
        }
        // The queue points into the read buffers, the seal arena and peers' endpoints: all of it goes now.
        flushQueue(member, &tally)
        lastQueued = nil
        lastSending = nil
        sealArenaUsed = 0
        rearm()
    }

    /// The peer a packet goes to by its destination, or nil (counted) when it is malformed or no peer's
    /// allowed IPs hold it.
    private func route(_ packet: UnsafeMutableRawBufferPointer, _ tally: inout BatchTally) -> WireGuardPeer? {
        guard let destination = WireGuardMode.destination(of: packet) else {
            tally[.droppedMalformed] &+= 1
            return nil
        }
        if let peer = lastRoute.peer(for: destination) { return peer }
        guard let peer = try? allowed.lookup(addressBytes: destination) else {
            tally[.droppedIgnored] &+= 1
            countDeviceDrop("no_route")
            return nil
        }
        lastRoute.remember(destination, routesTo: peer)
        return peer
    }

    /// Seals one packet where it was read (`room` bytes from its start are free for padding and the tag)
    /// and queues it; without a session it is staged and a handshake asked for.
    private func sendInPlace(_ packet: UnsafeMutableRawBufferPointer, room: Int, now: UInt64, _ member: CrewMember?,
                             _ tally: inout BatchTally) {
        guard let peer = route(packet, &tally) else { return }
        let header = sendQueue.nextHeaderSlot
        switch sealTransport(packet.baseAddress!, count: packet.count, room: room, header: header, for: peer, now: now, on: member) {
        case .noSession:
            stage(UnsafeRawBufferPointer(packet), for: peer, now: now, &tally)
        case .failed:
            tally[.peerSendErrors] &+= 1
        case .sealed(let sealed, let keypair):
            sendQueue.append(OutgoingPiece(base: header, count: TransportHeader.count),
                             OutgoingPiece(base: packet.baseAddress!, count: sealed),
                             group: joinsLast(peer, pieces: 2), to: peer.endpoint, length: peer.endpointLength)
            sent(packet.count, to: peer, on: keypair, now: now, &tally)
            if sendQueue.freeSlots == 0 { flushQueue(member, &tally) }
        }
    }

    /// A TSO/USO super-packet from a device with offloads: cut into the packets it stands for (headers and
    /// checksums rebuilt), each put together whole in the seal arena, sealed there and queued; the
    /// segments of one super-packet are all the same size but the last, so UDP GSO sends them as one
    /// message.
    private func sendSegments(of packet: UnsafeMutableRawBufferPointer, _ header: VirtioNetHeader, now: UInt64,
                              _ member: CrewMember?, _ tally: inout BatchTally) {
        guard let peer = route(packet, &tally) else { return }
        var first = true
        let segmented = Offload.segment(packet.baseAddress!, length: packet.count, header: header, arena: self.segmentHeader,
                                        arenaSlots: 1, reuseSlot: true) { segmentHeader, payload in
            let headerCount = segmentHeader?.count ?? 0
            let plain = headerCount + payload.count
            let size = (TransportHeader.count + WireGuardMode.paddedCount(plain, mtu: mtu) + ChaChaPoly.tagCount + 63) & ~63
            if sendQueue.freeSlots == 0 || sealArenaUsed + size > sealArena.count { flushQueue(member, &tally) }
            if sendQueue.used == 0 { sealArenaUsed = 0 }  // nothing queued points into the arena any more
            let datagram = sealArena.baseAddress! + sealArenaUsed
            let body = datagram + TransportHeader.count
            if let segmentHeader { body.copyMemory(from: segmentHeader.base, byteCount: headerCount) }
            (body + headerCount).copyMemory(from: payload.base, byteCount: payload.count)
            switch sealTransport(body, count: plain, room: size - TransportHeader.count, header: datagram, for: peer, now: now,
                                 on: member) {
            case .noSession:
                stage(UnsafeRawBufferPointer(start: body, count: plain), for: peer, now: now, &tally)
            case .failed:
                tally[.peerSendErrors] &+= 1
            case .sealed(let sealed, let keypair):
                sealArenaUsed += size
                sendQueue.append(nil, OutgoingPiece(base: datagram, count: TransportHeader.count + sealed),
                                 group: !first || joinsLast(peer, pieces: 1), to: peer.endpoint, length: peer.endpointLength)
                first = false
                sent(plain, to: peer, on: keypair, now: now, &tally)
            }
        }
        if !segmented { tally[.droppedMalformed] &+= 1 }
    }

    /// Whether a datagram to `peer` made of `pieces` iovecs may join the GSO message of the one queued
    /// just before it: same peer, same shape (the queue then also requires it to be no larger, and
    /// closes the message after a shorter one). A flood of equal packets to one peer (64-byte UDP, say)
    /// then crosses the UDP stack once per message, not once per datagram. Records this one as the last.
    private func joinsLast(_ peer: WireGuardPeer, pieces: Int) -> Bool {
        let joins = offloads && sendQueue.used > 0 && lastQueued?.peer === peer && lastQueued?.pieces == pieces
        lastQueued = (peer, pieces)
        return joins
    }

    /// A packet with no session to send it on waits for one, and a handshake is asked for.
    private func stage(_ packet: UnsafeRawBufferPointer, for peer: WireGuardPeer, now: UInt64, _ tally: inout BatchTally) {
        peer.stage(packet)
        if peer.hasEndpoint, let action = peer.timers.needSession(now: now) { perform(action, for: peer, now: now, &tally) }
    }
}
