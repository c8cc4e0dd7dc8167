#if canImport(Glibc)
import Glibc
#endif

/// GRO towards the device: consecutive segments of one TCP flow, or datagrams of one UDP flow, received
/// from the peer, become one super-packet with a virtio header asking the kernel to segment it again, so
/// the kernel takes a whole window (or a burst of datagrams) in one write. Anything else is written alone
/// with an empty virtio header.
enum GROMerge {
    /// How far a received packet's bytes are already known to be the ones its sender wrote.
    enum Integrity {
        /// Only as far as its own checksums say: each segment's TCP or UDP checksum is verified before merging.
        case checksummed
        /// Authenticated by an AEAD tag (WireGuard): the sum over each segment is not computed again, as
        /// Linux's WireGuard marks what it decrypts CHECKSUM_UNNECESSARY.
        case authenticated
    }

    /// Writes `packets` into a device with a virtio header, merging runs of one flow into super-packets.
    /// A super-packet is gathered, not copied: its headers (rewritten) from `space`, then each segment's
    /// payload where it lies, in one `writev`.
    static func write(_ packets: PacketList, into device: any PacketDevice, merging space: MergeSpace,
                      integrity: Integrity, _ tally: inout BatchTally) {
        let verifying = integrity == .checksummed
        var position = 0
        while position < packets.count {
            let packet = packets.pointers[position]
            let length = packets.lengths[position]
            if let first = Offload.TCPSegment(packet, length: length, verifyingPayload: verifying) {
                position = mergeTCP(packets, from: position, first, verifying, into: device, space, &tally)
            } else if space.mergesUDP, let first = Offload.UDPDatagram(packet, length: length, verifyingPayload: verifying) {
                position = mergeUDP(packets, from: position, first, verifying, into: device, space, &tally)
            } else {
                writeWithEmptyHeader(packet, length, device, &tally)
                position += 1
            }
        }
    }

    /// Writes the run of one TCP flow that starts at `position` (`first`); returns the position after it.
    private static func mergeTCP(_ packets: PacketList, from position: Int, _ first: Offload.TCPSegment, _ verifying: Bool,
                                 into device: any PacketDevice, _ space: MergeSpace, _ tally: inout BatchTally) -> Int {
        let packet = packets.pointers[position]
        let pieces = space.pieces
        var total = packets.lengths[position]
        var next = first.sequence &+ UInt32(first.payloadLength)
        var last = position
        var push = first.flags & 0x08 != 0
        var previousLength = first.payloadLength
        pieces[1] = iovec(iov_base: packet + first.headerLength, iov_len: first.payloadLength)
        var pieceCount = 2
        // Merge while the next segment continues the flow, the earlier ones were full-sized, and it fits.
        while !push, last + 1 < packets.count, previousLength == first.payloadLength, pieceCount < MergeSpace.pieceLimit {
            let candidate = packets.pointers[last + 1]
            guard let segment = Offload.TCPSegment(candidate, length: packets.lengths[last + 1], verifyingPayload: verifying),
                  segment.sequence == next,
                  segment.payloadLength <= first.payloadLength, total + segment.payloadLength <= 65535,
                  segment.continues(first, packet, candidate) else { break }
            pieces[pieceCount] = iovec(iov_base: candidate + segment.headerLength, iov_len: segment.payloadLength)
            pieceCount += 1
            total += segment.payloadLength
            next = next &+ UInt32(segment.payloadLength)
            push = segment.flags & 0x08 != 0
            previousLength = segment.payloadLength
            last += 1
        }
        if pieceCount == 2 {
            writeWithEmptyHeader(packet, total, device, &tally)
        } else {
            (space.headers + VirtioNetHeader.size).copyMemory(from: packet, byteCount: first.headerLength)
            Offload.finishMerged(space.headers, length: total, first: first, segmentSize: first.payloadLength, push: push)
            pieces[0] = iovec(iov_base: space.headers, iov_len: VirtioNetHeader.size + first.headerLength)
            device.writeCounted(gathering: UnsafeBufferPointer(start: pieces, count: pieceCount), payloadBytes: total, &tally)
        }
        return last + 1
    }

    /// Writes the run of one UDP flow that starts at `position` (`first`): datagrams of the first one's
    /// size, the last of them possibly shorter, as one USO super-packet. Returns the position after it.
    private static func mergeUDP(_ packets: PacketList, from position: Int, _ first: Offload.UDPDatagram, _ verifying: Bool,
                                 into device: any PacketDevice, _ space: MergeSpace, _ tally: inout BatchTally) -> Int {
        let packet = packets.pointers[position]
        let pieces = space.pieces
        let headerLength = first.ipLength + Offload.UDPDatagram.headerCount
        var total = packets.lengths[position]
        var last = position
        var previousLength = first.payloadLength
        pieces[1] = iovec(iov_base: packet + headerLength, iov_len: first.payloadLength)
        var pieceCount = 2
        while last + 1 < packets.count, previousLength == first.payloadLength, pieceCount < MergeSpace.pieceLimit {
            let candidate = packets.pointers[last + 1]
            guard let datagram = Offload.UDPDatagram(candidate, length: packets.lengths[last + 1], verifyingPayload: verifying),
                  datagram.payloadLength <= first.payloadLength, total + datagram.payloadLength <= 65535,
                  datagram.continues(first, packet, candidate) else { break }
            pieces[pieceCount] = iovec(iov_base: candidate + headerLength, iov_len: datagram.payloadLength)
            pieceCount += 1
            total += datagram.payloadLength
            previousLength = datagram.payloadLength
            last += 1
        }
        if pieceCount == 2 {
            writeWithEmptyHeader(packet, total, device, &tally)
            return last + 1
        }
        (space.headers + VirtioNetHeader.size).copyMemory(from: packet, byteCount: headerLength)
        Offload.finishMerged(space.headers, length: total, first: first)
        pieces[0] = iovec(iov_base: space.headers, iov_len: VirtioNetHeader.size + headerLength)
        if device.write(gathering: UnsafeBufferPointer(start: pieces, count: pieceCount)) {
            tally[.packetsWritten] &+= 1
            tally[.bytesWritten] &+= UInt64(total)
            return last + 1
        }
        // A kernel older than 6.2 knows no UDP in a virtio header and refuses the write: from then on
        // this worker writes datagrams alone, starting with these.
        space.mergesUDP = false
        for index in position...last { writeWithEmptyHeader(packets.pointers[index], packets.lengths[index], device, &tally) }
        return last + 1
    }

    /// One packet with an all-zero virtio header (no offload asked).
    static func writeWithEmptyHeader(_ packet: UnsafeMutableRawPointer, _ length: Int, _ device: any PacketDevice, _ tally: inout BatchTally) {
        // The header and the two pieces on the stack: no allocation per packet.
        var empty = (UInt64(0), UInt16(0))
        withUnsafeMutableBytes(of: &empty) { header in
            var pieces = (iovec(iov_base: header.baseAddress, iov_len: VirtioNetHeader.size), iovec(iov_base: packet, iov_len: length))
            withUnsafeBytes(of: &pieces) { raw in
                device.writeCounted(gathering: UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: iovec.self), count: 2),
                                    payloadBytes: length, &tally)
            }
        }
    }
}

/// Where GRO puts a super-packet together: its virtio header and rewritten IP and TCP/UDP headers, and the
/// list of pieces (those headers, then every segment's payload) one `writev` hands to the kernel.
final class MergeSpace {
    /// Pieces per super-packet: the headers and up to 63 payloads (a 64 KiB super-packet of 1,400-byte
    /// segments has 47).
    static let pieceLimit = 64
    /// Room for a virtio header and IP and TCP headers with options (at most 40 + 60 bytes).
    static let headerRoom = 256

    let headers: UnsafeMutableRawPointer
    let pieces: UnsafeMutablePointer<iovec>
    /// Whether runs of UDP datagrams are merged: until the kernel refuses a USO super-packet.
    var mergesUDP = true

    init() {
        headers = .allocate(byteCount: Self.headerRoom, alignment: 64)
        pieces = .allocate(capacity: Self.pieceLimit)
    }

    deinit {
        headers.deallocate()
        pieces.deallocate()
    }
}

/// The packets of one receive batch, by pointer and length, in fixed storage.
final class PacketList {
    let capacity: Int
    let pointers: UnsafeMutablePointer<UnsafeMutableRawPointer>
    let lengths: UnsafeMutablePointer<Int>
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        pointers = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
    }

    func append(_ pointer: UnsafeMutableRawPointer, _ length: Int) {
        pointers[count] = pointer
        lengths[count] = length
        count += 1
    }

    func deallocate() {
        pointers.deallocate()
        lengths.deallocate()
    }
}

