#if canImport(Glibc)
import Glibc
#endif
import CBatchIO

/// `tunnel`, from the peer to the device: `recvmmsg` of what the peer sent, each datagram from the peer
/// written into the device. With offloads a message may hold a run of datagrams the kernel merged (UDP
/// GRO, cut apart here by its segment size), and consecutive segments of one TCP flow are merged into a
/// super-packet before they are written (`GROMerge`). Datagrams from anyone else are dropped and counted.
final class TunnelReceiver: DatagramReceiver {
    let socket: Int32
    let peer: SocketAddressStorage
    let vnetHeader: Bool
    /// At most this many `recvmmsg` calls per wakeup: a flooded tunnel yields to the thread's other devices.
    static let roundsPerWakeup = 4

    init(socket: Int32, peer: SocketAddressStorage, vnetHeader: Bool) {
        self.socket = socket
        self.peer = peer
        self.vnetHeader = vnetHeader
    }

    func receive(_ scratch: Scratch, into device: any PacketDevice, _ tally: inout BatchTally) {
        let prefix = vnetHeader ? VirtioNetHeader.size : 0
        let batch = scratch.messages
        let packets = scratch.packets
        for _ in 0..<Self.roundsPerWakeup {
            batch.prepareReceive(reserving: prefix, control: vnetHeader)
            let received = tund_recvmmsg(socket, batch.headers, UInt32(Scratch.batchLimit), Int32(MSG_DONTWAIT))
            if received <= 0 {
                if received < 0 && errno != EAGAIN && errno != EINTR { tally[.peerReceiveErrors] &+= 1 }
                return
            }
            packets.count = 0
            for index in 0..<Int(received) {
                let length = Int(batch.headers[index].msg_len)
                guard peer.matches(batch.addresses + index, length: batch.headers[index].msg_hdr.msg_namelen) else {
                    tally[.droppedUnexpectedSource] &+= 1
                    continue
                }
                let segmentSize = batch.groSegmentSize(index) ?? length
                let start = batch.slot(index).baseAddress! + prefix
                var offset = 0
                while offset < length, packets.count < packets.capacity {
                    let size = min(segmentSize, length - offset)
                    packets.append(start + offset, size)
                    tally[.peerPacketsReceived] &+= 1
                    tally[.peerBytesReceived] &+= UInt64(size)
                    offset += max(size, 1)
                }
            }
            if vnetHeader {
                GROMerge.write(packets, into: device, merging: scratch.merged, integrity: .checksummed, &tally)
            } else {
                for index in 0..<packets.count {
                    device.writeCounted(UnsafeRawBufferPointer(start: packets.pointers[index], count: packets.lengths[index]), prefix: 0, &tally)
                }
            }
            if received < Scratch.batchLimit { return }
        }
    }
}
