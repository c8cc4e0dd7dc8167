#if canImport(Glibc)
import Glibc
#endif

/// GRO towards the device: consecutive segments of one TCP flow, received from the peer, become one
/// super-packet with a virtio header asking the kernel to segment it again, so the kernel takes a whole
/// window in one write. Anything else is written alone with an empty virtio header.
enum GROMerge {
    /// How far a received packet's bytes are already known to be the ones its sender wrote.
    enum Integrity {
        /// Only as far as its own checksums say: each segment's TCP checksum is verified before merging.
        case checksummed
        /// Authenticated by an AEAD tag (WireGuard): the sum over each segment is not computed again, as
        /// Linux's WireGuard marks what it decrypts CHECKSUM_UNNECESSARY.
        case authenticated
    }

    /// Writes `packets` into a device with a virtio header, merging runs of one TCP flow into super-packets.
    /// A super-packet is gathered, not copied: its headers (rewritten) from `space`, then each segment's
    /// payload where it lies, in one `writev`.
    static func write(_ packets: PacketList, into device: any PacketDevice, merging space: MergeSpace,
                      integrity: Integrity, _ tally: inout BatchTally) {
        let verifying = integrity == .checksummed
        let prefix = VirtioNetHeader.size
        let pieces = space.pieces
        var position = 0
        while position < packets.count {
            let packet = packets.pointers[position]
            let length = packets.lengths[position]
            guard let first = Offload.TCPSegment(packet, length: length, verifyingPayload: verifying) else {
                writeWithEmptyHeader(packet, length, device, &tally)
                position += 1
                continue
            }
            var total = length
            var next = first.sequence &+ UInt32(first.payloadLength)
            var last = position
            var push = first.flags & 0x08 != 0
            var previousLength = first.payloadLength
            pieces[1] = iovec(iov_base: packet + first.headerLength, iov_len: first.payloadLength)
            var pieceCount = 2
            // Merge while the next segment continues the flow, the earlier ones were full-sized, and it fits.
            while !push, last + 1 < packets.count, previousLength == first.payloadLength, pieceCount < MergeSpace.pieceLimit {
                let candidate = packets.pointers[last + 1]
                let candidateLength = packets.lengths[last + 1]
                guard let segment = Offload.TCPSegment(candidate, length: candidateLength, verifyingPayload: verifying),
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
                writeWithEmptyHeader(packet, length, device, &tally)
            } else {
                (space.headers + prefix).copyMemory(from: packet, byteCount: first.headerLength)
                Offload.finishMerged(space.headers, length: total, first: first, segmentSize: first.payloadLength, push: push)
                pieces[0] = iovec(iov_base: space.headers, iov_len: prefix + first.headerLength)
                device.writeCounted(gathering: UnsafeBufferPointer(start: pieces, count: pieceCount), payloadBytes: total, &tally)
            }
            position = last + 1
        }
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

/// Where GRO puts a super-packet together: its virtio header and rewritten IP and TCP headers, and the
/// list of pieces (those headers, then every segment's payload) one `writev` hands to the kernel.
final class MergeSpace {
    /// Pieces per super-packet: the headers and up to 63 payloads (a 64 KiB super-packet of 1,400-byte
    /// segments has 47).
    static let pieceLimit = 64
    /// Room for a virtio header and IP and TCP headers with options (at most 40 + 60 bytes).
    static let headerRoom = 256

    let headers: UnsafeMutableRawPointer
    let pieces: UnsafeMutablePointer<iovec>

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

