import NetAddress

/// `tunnel`, from the device to the peer: every packet becomes one UDP datagram (a TSO/USO super-packet,
/// read with a virtio header, becomes the datagrams it stands for), queued and sent with `sendmmsg`
/// (and UDP GSO where the kernel takes it). The other direction is `TunnelReceiver`.
final class TunnelMode: PacketMode {
    let socket: Int32
    let sendQueue: SendQueue
    let ownDatagram: OwnDatagram

    init(socket: Int32, local: SocketAddress, remote: SocketAddress, peer: SocketAddressStorage, gso: Bool) {
        self.socket = socket
        sendQueue = SendQueue(capacity: SendQueue.defaultCapacity, peer: peer, gso: gso)
        ownDatagram = OwnDatagram(local: local, remote: remote)
    }

    deinit { sendQueue.deallocate() }

    func handle(_ batch: ReadBatch, _ device: any PacketDevice, _ tally: inout BatchTally) -> ModeVerdict {
        for index in 0..<batch.count {
            let packet = batch.packet(index)
            if ownDatagram.matches(UnsafeRawBufferPointer(packet)) {
                tally[.droppedMalformed] &+= 1
                sendQueue.flush(socket, &tally)
                return .fail("routing loop: the tunnel's own datagram to \(ownDatagram.remoteDescription) came back through its device; stopped instead of spinning (route the remote through another interface, then PATCH the worker to restart it)")
            }
            if batch.prefix > 0 {
                let header = VirtioNetHeader(batch.frame(index).baseAddress!)
                var accepted = segmentIntoQueue(packet, header)
                if !accepted && sendQueue.used > 0 {
                    // Too many segments for the room left (a small MSS): send what is queued, try again.
                    sendQueue.flush(socket, &tally)
                    accepted = segmentIntoQueue(packet, header)
                }
                if !accepted { tally[.droppedMalformed] &+= 1 }
            } else {
                sendQueue.append(nil, OutgoingPiece(base: packet.baseAddress!, count: packet.count))
            }
            if sendQueue.freeSlots < SendQueue.reserve { sendQueue.flush(socket, &tally) }
        }
        // The queue points into the read buffers: everything goes before they are read into again.
        sendQueue.flush(socket, &tally)
        return .carryOn
    }

    /// Queues a packet read with a virtio header as the datagrams it becomes; false when it is malformed
    /// or needs more segments than the queue has room for.
    private func segmentIntoQueue(_ packet: UnsafeMutableRawBufferPointer, _ header: VirtioNetHeader) -> Bool {
        var first = true
        return Offload.segment(packet.baseAddress!, length: packet.count, header: header,
                               arena: sendQueue.nextHeaderSlot, arenaSlots: sendQueue.freeSlots) { header, payload in
            sendQueue.append(header, payload, group: !first)
            first = false
        }
    }
}

/// Recognises the tunnel's own datagrams (from its local port to its remote) among the packets its device
/// hands over: the kernel routed the underlay into the tunnel, and every packet sent would come back
/// to be sent again. Looked at only in tunnel mode, on the header bytes already in cache.
struct OwnDatagram: Sendable {
    let remote: [UInt8]
    let remotePort: UInt16
    let localPort: UInt16
    let remoteDescription: String

    init(local: SocketAddress, remote: SocketAddress) {
        remoteDescription = remote.description
        self.remote = remote.address.bytes
        remotePort = remote.port
        localPort = local.port
    }

    func matches(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard let first = packet.first else { return false }
        let udp: Int
        let destination: Int
        switch first >> 4 {
        case 4 where remote.count == 4:
            udp = Int(first & 0x0f) * 4
            guard udp >= 20, packet.count >= udp + 8, packet[9] == 17 else { return false }
            destination = 16
        case 6 where remote.count == 16:
            udp = 40
            guard packet.count >= udp + 8, packet[6] == 17 else { return false }
            destination = 24
        default:
            return false
        }
        for (offset, byte) in remote.enumerated() where packet[destination + offset] != byte { return false }
        let source = UInt16(packet[udp]) << 8 | UInt16(packet[udp + 1])
        let target = UInt16(packet[udp + 2]) << 8 | UInt16(packet[udp + 3])
        return source == localPort && target == remotePort
    }
}

