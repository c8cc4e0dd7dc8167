import BackgroundThread
import WireGuardCrypto
import WireGuardNoise
import WireGuardPeers

/// `wireguard`, from the device to the peers: each packet's destination picks its peer (cryptokey
/// routing); with a keypair that may send, the packet is padded and sealed where it was read, its
/// 16-byte transport header built in the send queue's header arena, and the batch goes out in one
/// `sendmmsg` (each message to its own peer's endpoint). Without one, it is staged and a handshake
/// asked for. No allocation per packet on this path. The other direction is `WireGuardReceiver`.
/// No GSO/GRO: every packet is one datagram (the mode refuses devices with a virtio header).
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
    /// as the protocol asks) and seals them in place, the tag after them; the sealed size, nil when the
    /// buffer is too small or the cipher failed.
    @inline(__always)
    static func seal(_ buffer: UnsafeMutableRawBufferPointer, count: Int, counter: UInt64, with cipher: ChaChaPoly) -> Int? {
        let padded = (count + 15) & ~15
        guard padded + ChaChaPoly.tagCount <= buffer.count else { return nil }
        if padded > count { (buffer.baseAddress! + count).initializeMemory(as: UInt8.self, repeating: 0, count: padded - count) }
        return try? cipher.seal(inPlace: buffer, plaintextCount: padded, counter: counter)
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
        for index in 0..<batch.count {
            let packet = batch.packet(index)
            guard let destination = WireGuardMode.destination(of: packet) else {
                tally[.droppedMalformed] &+= 1
                continue
            }
            guard let peer = try? allowed.lookup(addressBytes: destination) else {
                // No peer's allowed IPs hold the destination: nowhere to send it.
                tally[.droppedIgnored] &+= 1
                countDeviceDrop("no_route")
                continue
            }
            guard peer.hasEndpoint, let keypair = peer.keypairs.sendingKeypair(now: now),
                  let ciphers = keypairs[keypair.localIndex], let counter = keypair.takeSendCounter(now: now) else {
                peer.stage(UnsafeRawBufferPointer(packet))
                if peer.hasEndpoint {
                    if let action = peer.timers.needSession(now: now) { perform(action, for: peer, now: now, &tally) }
                }
                continue
            }
            // The slot goes on past the packet: room for padding and the tag.
            let room = UnsafeMutableRawBufferPointer(start: packet.baseAddress, count: Scratch.slotSize - batch.prefix)
            guard let sealed = WireGuardMode.seal(room, count: packet.count, counter: counter, with: ciphers.sending) else {
                tally[.peerSendErrors] &+= 1
                continue
            }
            let header = sendQueue.nextHeaderSlot
            TransportHeader(receiverIndex: keypair.remoteIndex, counter: counter)
                .write(into: UnsafeMutableRawBufferPointer(start: header, count: TransportHeader.count))
            sendQueue.append(OutgoingPiece(base: header, count: TransportHeader.count),
                             OutgoingPiece(base: packet.baseAddress!, count: sealed),
                             to: peer.endpoint, length: peer.endpointLength)
            peer.statistics.recordSent(payloadBytes: packet.count)
            peer.timers.packetSent(.data, now: now)
            if let action = peer.timers.afterSending(current: keypair, now: now) { perform(action, for: peer, now: now, &tally) }
            if sendQueue.freeSlots == 0 { sendQueue.flush(socket.descriptor, &tally) }
        }
        // The queue points into the read buffers and at peers' endpoints: all of it goes now.
        sendQueue.flush(socket.descriptor, &tally)
        rearm()
    }
}
