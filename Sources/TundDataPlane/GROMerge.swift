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
                let run = writeRun(packets, from: position, first, verifying, into: device, space, &tally)
                if run.refused { tally[.writeErrors] &+= 1 }
                position = run.next
            } else if space.mergesUDP, let first = Offload.UDPDatagram(packet, length: length, verifyingPayload: verifying) {
                let run = writeRun(packets, from: position, first, verifying, into: device, space, &tally)
                if run.refused {
                    // A kernel older than 6.2 knows no UDP in a virtio header and refuses the write: from
                    // then on this worker writes datagrams alone, starting with these.
                    space.mergesUDP = false
                    for index in position..<run.next { writeWithEmptyHeader(packets.pointers[index], packets.lengths[index], device, &tally) }
                }
                position = run.next
            } else {
                writeWithEmptyHeader(packet, length, device, &tally)
                position += 1
            }
        }
    }

    /// Writes the run of one flow that starts at `position` (`first`): segments that follow one another,
    /// all of the first one's size but the last, as one super-packet (a run of one is written alone).
    /// Returns the position after the run, and whether the device refused the super-packet (nothing of
    /// the run written or counted then).
    private static func writeRun<Segment: GROSegment>(_ packets: PacketList, from position: Int, _ first: Segment, _ verifying: Bool,
                                                      into device: any PacketDevice, _ space: MergeSpace,
                                                      _ tally: inout BatchTally) -> (next: Int, refused: Bool) {
        let packet = packets.pointers[position]
        let pieces = space.pieces
        var total = packets.lengths[position]
        var last = position
        var previous = first
        pieces[1] = iovec(iov_base: packet + first.headerLength, iov_len: first.payloadLength)
        var pieceCount = 2
        // Merge while the earlier segments were full-sized, the next one follows and fits.
        while !previous.endsRun, last + 1 < packets.count, previous.payloadLength == first.payloadLength,
              pieceCount < MergeSpace.pieceLimit {
            let candidate = packets.pointers[last + 1]
            guard let segment = Segment(candidate, length: packets.lengths[last + 1], verifyingPayload: verifying),
                  segment.payloadLength <= first.payloadLength, total + segment.payloadLength <= 65535,
                  segment.follows(previous, in: first, firstAt: packet, at: candidate) else { break }
            pieces[pieceCount] = iovec(iov_base: candidate + segment.headerLength, iov_len: segment.payloadLength)
            pieceCount += 1
            total += segment.payloadLength
            previous = segment
            last += 1
        }
        if pieceCount == 2 {
            writeWithEmptyHeader(packet, total, device, &tally)
            return (last + 1, false)
        }
        (space.headers + VirtioNetHeader.size).copyMemory(from: packet, byteCount: first.headerLength)
        Segment.finishMerged(space.headers, length: total, first: first, last: previous)
        pieces[0] = iovec(iov_base: space.headers, iov_len: VirtioNetHeader.size + first.headerLength)
        guard device.write(gathering: UnsafeBufferPointer(start: pieces, count: pieceCount)) else { return (last + 1, true) }
        tally[.packetsWritten] &+= 1
        tally[.bytesWritten] &+= UInt64(total)
        return (last + 1, false)
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

/// A packet GRO can merge with the ones after it into a super-packet the kernel segments again.
protocol GROSegment {
    /// nil for a packet that cannot be merged (or whose checksum does not verify, with `verifyingPayload`).
    init?(_ packet: UnsafeRawPointer, length: Int, verifyingPayload: Bool)
    var headerLength: Int { get }
    var payloadLength: Int { get }
    /// Nothing may be merged after this one.
    var endsRun: Bool { get }
    /// Whether this segment (at `packet`) comes right after `previous` in the run `first` (at `firstPacket`) began.
    func follows(_ previous: Self, in first: Self, firstAt firstPacket: UnsafeRawPointer, at packet: UnsafeRawPointer) -> Bool
    /// Rewrites the headers in `buffer` (virtio header space, then `first`'s headers) for the merged run.
    static func finishMerged(_ buffer: UnsafeMutableRawPointer, length: Int, first: Self, last: Self)
}

extension Offload.TCPSegment: GROSegment {
    /// PSH: the sender wants what it has so far delivered.
    var endsRun: Bool { flags & 0x08 != 0 }

    func follows(_ previous: Self, in first: Self, firstAt firstPacket: UnsafeRawPointer, at packet: UnsafeRawPointer) -> Bool {
        sequence == previous.sequence &+ UInt32(previous.payloadLength) && continues(first, firstPacket, packet)
    }

    static func finishMerged(_ buffer: UnsafeMutableRawPointer, length: Int, first: Self, last: Self) {
        Offload.finishMerged(buffer, length: length, first: first, segmentSize: first.payloadLength, push: last.endsRun)
    }
}

extension Offload.UDPDatagram: GROSegment {
    var endsRun: Bool { false }

    func follows(_ previous: Self, in first: Self, firstAt firstPacket: UnsafeRawPointer, at packet: UnsafeRawPointer) -> Bool {
        continues(first, firstPacket, packet)
    }

    static func finishMerged(_ buffer: UnsafeMutableRawPointer, length: Int, first: Self, last: Self) {
        Offload.finishMerged(buffer, length: length, first: first)
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

