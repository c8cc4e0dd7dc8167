#if canImport(Glibc)
import Glibc
#endif
import CBatchIO

/// Datagrams waiting for one `sendmmsg` to the peer. Each datagram is up to two pieces (a rebuilt header
/// in `headerArena`, then payload where it was read). With UDP GSO on, the segments of one super-packet
/// (all the same size but the last) travel as one message with a UDP_SEGMENT control message, and the
/// kernel cuts them apart: one trip through the UDP stack for up to 64 datagrams. Built once per thread.
final class SendQueue {
    static let defaultCapacity = 512
    /// Room kept for the segments of one more super-packet (an MSS of 1000+ gives under 64).
    static let reserve = 64
    /// What one GSO message may carry (the kernel's UDP_MAX_SEGMENTS and the 64 KiB of an skb).
    static let maximumSegments = 64, maximumGroupBytes = 60 * 1024
    /// `CMSG_SPACE(sizeof(uint16_t))` and `CMSG_LEN(sizeof(uint16_t))` on 64-bit Linux.
    static let controlSpace = 24, controlLength = 18

    let capacity: Int
    let headers: UnsafeMutablePointer<tund_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    let headerArena: UnsafeMutableRawPointer
    let controls: UnsafeMutableRawPointer
    /// Datagrams in each message (1 without GSO).
    let segmentCounts: UnsafeMutablePointer<Int>
    let peerAddress: UnsafeMutablePointer<sockaddr_storage>
    let peerLength: socklen_t
    /// Group segments into GSO messages; switched off for good when the kernel cannot segment UDP at all.
    var gso: Bool
    /// Datagrams this large or larger are not grouped: the kernel refused a GSO message of them as too
    /// large for the path (EMSGSIZE, EINVAL), which only fragmentation carries.
    private(set) var gsoSizeLimit = Int.max
    private(set) var used = 0
    private var vectorsUsed = 0
    private var segmentsUsed = 0
    /// The message still open for more segments of the same super-packet, with its segment size.
    private var openGroup: (message: Int, datagramSize: Int, bytes: Int)?

    init(capacity: Int, peer: SocketAddressStorage?, gso: Bool) {
        self.capacity = capacity
        self.gso = gso
        headers = .allocate(capacity: capacity)
        headers.initialize(repeating: tund_mmsghdr(), count: capacity)
        vectors = .allocate(capacity: capacity * 2)
        vectors.initialize(repeating: iovec(), count: capacity * 2)
        headerArena = .allocate(byteCount: capacity * Offload.maximumHeader, alignment: 64)
        controls = .allocate(byteCount: capacity * Self.controlSpace, alignment: 8)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * Self.controlSpace)
        segmentCounts = .allocate(capacity: capacity)
        segmentCounts.initialize(repeating: 0, count: capacity)
        peerAddress = .allocate(capacity: 1)
        peerAddress.initialize(to: peer?.storage ?? sockaddr_storage())
        peerLength = peer?.length ?? 0
    }

    /// Header slots left in the arena (the next `Offload.segment` writes from the first free one).
    var freeSlots: Int { capacity - segmentsUsed }

    /// Where the next datagram's rebuilt header goes.
    var nextHeaderSlot: UnsafeMutableRawPointer { headerArena + segmentsUsed * Offload.maximumHeader }

    /// Queues one datagram. `group`: it belongs to the same super-packet as the datagram queued before it,
    /// so with GSO it may join that datagram's message. `to`: this datagram's destination instead of the
    /// queue's peer (a wireguard worker sends each to its own peer); it must stay valid until `flush`.
    func append(_ header: OutgoingPiece?, _ payload: OutgoingPiece, group: Bool = false,
                to destination: UnsafeMutablePointer<sockaddr_storage>? = nil, length destinationLength: socklen_t = 0) {
        precondition(segmentsUsed < capacity)
        let size = (header?.count ?? 0) + payload.count
        if let header { vectors[vectorsUsed] = iovec(iov_base: header.base, iov_len: header.count); vectorsUsed += 1 }
        vectors[vectorsUsed] = iovec(iov_base: payload.base, iov_len: payload.count)
        vectorsUsed += 1
        segmentsUsed += 1
        let pieces = header == nil ? 1 : 2
        // Join the open message: same super-packet, not past its limits, and no datagram larger than the
        // first (only the last may be shorter, and once one is, the group is closed).
        if gso, group, let open = openGroup, size <= open.datagramSize, open.datagramSize < gsoSizeLimit,
           segmentCounts[open.message] < Self.maximumSegments, open.bytes + size <= Self.maximumGroupBytes {
            headers[open.message].msg_hdr.msg_iovlen += pieces
            segmentCounts[open.message] += 1
            let control = controls + open.message * Self.controlSpace
            headers[open.message].msg_hdr.msg_control = control
            headers[open.message].msg_hdr.msg_controllen = Self.controlSpace
            control.storeBytes(of: Self.controlLength, as: Int.self)                  // cmsg_len
            control.storeBytes(of: Int32(17), toByteOffset: 8, as: Int32.self)          // SOL_UDP
            control.storeBytes(of: Int32(103), toByteOffset: 12, as: Int32.self)        // UDP_SEGMENT
            control.storeBytes(of: UInt16(open.datagramSize), toByteOffset: 16, as: UInt16.self)
            openGroup = size == open.datagramSize ? (open.message, open.datagramSize, open.bytes + size) : nil
            return
        }
        headers[used].msg_hdr = msghdr(msg_name: UnsafeMutableRawPointer(destination ?? peerAddress),
                                       msg_namelen: destination == nil ? peerLength : destinationLength,
                                       msg_iov: vectors + vectorsUsed - pieces, msg_iovlen: pieces,
                                       msg_control: nil, msg_controllen: 0, msg_flags: 0)
        headers[used].msg_len = 0
        segmentCounts[used] = 1
        openGroup = gso ? (used, size, size) : nil
        used += 1
    }

    /// `sendmmsg` of everything queued, retrying what the socket did not take at once; then empty.
    func flush(_ socket: Int32, _ tally: inout BatchTally) {
        var sent = 0
        while sent < used {
            let result = tund_sendmmsg(socket, headers + sent, UInt32(used - sent), 0)
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                // A GSO message refused as such goes datagram by datagram. This path cannot segment UDP at
                // all (no checksum offload on the way out, an old kernel: EIO, EOPNOTSUPP): grouping stops
                // for good. Or not at this size (datagrams larger than the underlay's MTU, which only
                // fragmentation carries: EMSGSIZE, EINVAL): datagrams this large are no longer grouped,
                // smaller ones still are (each refusal lowers the bound, so a kernel that refuses every
                // size with EINVAL ends with none grouped).
                if segmentCounts[sent] > 1 && [EIO, EINVAL, EOPNOTSUPP, EMSGSIZE].contains(code) {
                    if code == EIO || code == EOPNOTSUPP {
                        gso = false
                    } else if let first = headers[sent].msg_hdr.msg_iov {
                        let datagram = (0..<piecesPerDatagram(sent)).reduce(0) { $0 + first[$1].iov_len }
                        gsoSizeLimit = min(gsoSizeLimit, datagram)
                    }
                    sendOneByOne(sent, socket, &tally)
                    sent += 1
                    continue
                }
                // EAGAIN (buffer full), ENETUNREACH, EPERM...: these packets are lost, as on a real link.
                for index in sent..<used { tally[.peerSendErrors] &+= UInt64(segmentCounts[index]) }
                break
            }
            for index in sent..<(sent + Int(result)) {
                tally[.peerPacketsSent] &+= UInt64(segmentCounts[index])
                tally[.peerBytesSent] &+= UInt64(headers[index].msg_len)
            }
            sent += Int(result)
        }
        used = 0
        vectorsUsed = 0
        segmentsUsed = 0
        openGroup = nil
    }

    /// The iovecs each datagram of message `index` takes: every datagram of a group has the same pieces
    /// (a rebuilt header and a payload, or one piece).
    private func piecesPerDatagram(_ index: Int) -> Int {
        headers[index].msg_hdr.msg_iovlen / segmentCounts[index]
    }

    /// The datagrams of GSO message `index`, each in a message of its own.
    private func sendOneByOne(_ index: Int, _ socket: Int32, _ tally: inout BatchTally) {
        var message = headers[index].msg_hdr
        let segments = segmentCounts[index]
        let pieces = piecesPerDatagram(index)
        let first = message.msg_iov!
        message.msg_control = nil
        message.msg_controllen = 0
        for segment in 0..<segments {
            message.msg_iov = first + segment * pieces
            message.msg_iovlen = pieces
            var sentBytes = sendmsg(socket, &message, 0)
            while sentBytes < 0 && errno == EINTR { sentBytes = sendmsg(socket, &message, 0) }
            if sentBytes < 0 {
                tally[.peerSendErrors] &+= 1
            } else {
                tally[.peerPacketsSent] &+= 1
                tally[.peerBytesSent] &+= UInt64(sentBytes)
            }
        }
    }

    func deallocate() {
        headers.deallocate()
        vectors.deallocate()
        headerArena.deallocate()
        controls.deallocate()
        segmentCounts.deallocate()
        peerAddress.deallocate()
    }
}
