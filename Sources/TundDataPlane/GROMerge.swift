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
    static func write(_ packets: PacketList, into device: any PacketDevice, merging merged: UnsafeMutableRawPointer,
                      integrity: Integrity, _ tally: inout BatchTally) {
        let verifying = integrity == .checksummed
        let prefix = VirtioNetHeader.size
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
            var segments = 1
            var previousLength = first.payloadLength
            // Merge while the next segment continues the flow, the earlier ones were full-sized, and it fits.
            while !push, last + 1 < packets.count, previousLength == first.payloadLength {
                let candidate = packets.pointers[last + 1]
                let candidateLength = packets.lengths[last + 1]
                guard let segment = Offload.TCPSegment(candidate, length: candidateLength, verifyingPayload: verifying),
                      segment.sequence == next,
                      segment.payloadLength <= first.payloadLength, total + segment.payloadLength <= 65535,
                      segment.continues(first, packet, candidate) else { break }
                if segments == 1 { (merged + prefix).copyMemory(from: packet, byteCount: length) }
                (merged + prefix + total).copyMemory(from: candidate + segment.headerLength, byteCount: segment.payloadLength)
                total += segment.payloadLength
                next = next &+ UInt32(segment.payloadLength)
                push = segment.flags & 0x08 != 0
                previousLength = segment.payloadLength
                segments += 1
                last += 1
            }
            if segments == 1 {
                writeWithEmptyHeader(packet, length, device, &tally)
            } else {
                Offload.finishMerged(merged, length: total, first: first, segmentSize: first.payloadLength, push: push)
                device.writeCounted(UnsafeRawBufferPointer(start: merged, count: prefix + total), prefix: prefix, &tally)
            }
            position = last + 1
        }
    }

    /// One packet with an all-zero virtio header (no offload asked).
    static func writeWithEmptyHeader(_ packet: UnsafeMutableRawPointer, _ length: Int, _ device: any PacketDevice, _ tally: inout BatchTally) {
        let empty = (UInt64(0), UInt16(0))
        let written = withUnsafeBytes(of: empty) { header in
            device.write(header: UnsafeRawBufferPointer(rebasing: header[0..<VirtioNetHeader.size]),
                         packet: UnsafeRawBufferPointer(start: packet, count: length))
        }
        if written {
            tally[.packetsWritten] &+= 1
            tally[.bytesWritten] &+= UInt64(length)
        } else {
            tally[.writeErrors] &+= 1
        }
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

