#if canImport(Glibc)
import Glibc
#endif

/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h): 10 bytes in front of every packet of a
/// device opened with IFF_VNET_HDR. Little-endian fields, as the kernel uses on this host.
struct VirtioNetHeader: Equatable {
    static let size = 10
    static let needsChecksum: UInt8 = 1
    static let gsoNone: UInt8 = 0, gsoTCPv4: UInt8 = 1, gsoTCPv6: UInt8 = 4, gsoUDPL4: UInt8 = 5, gsoECN: UInt8 = 0x80

    var flags: UInt8 = 0
    var gsoType: UInt8 = 0
    var headerLength: UInt16 = 0
    var gsoSize: UInt16 = 0
    var checksumStart: UInt16 = 0
    var checksumOffset: UInt16 = 0

    init() {}

    init(_ raw: UnsafeRawPointer) {
        flags = raw.load(as: UInt8.self)
        gsoType = raw.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        gsoSize = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
    }

    func write(to raw: UnsafeMutableRawPointer) {
        raw.storeBytes(of: flags, as: UInt8.self)
        raw.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        raw.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        raw.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        raw.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        raw.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }
}

/// RFC 1071 sums, eight bytes at a time. The one's-complement sum does not depend on byte order: words
/// are added as the host loads them, and the folded result is stored the same way.
enum Checksum {
    /// Adds `count` bytes at `bytes` to `sum`. Every call but the last must cover an even number of bytes.
    @inline(__always)
    static func add(_ bytes: UnsafeRawPointer, _ count: Int, to sum: UInt64) -> UInt64 {
        // 32 bytes a round into four independent sums, so the additions overlap in the CPU: GRO checks
        // every TCP segment's checksum, and this loop is most of that cost.
        var (first, second, third, fourth) = (sum, UInt64(0), UInt64(0), UInt64(0))
        var offset = 0
        while offset + 32 <= count {
            let a = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let b = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let c = bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
            let d = bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            first &+= (a >> 32) &+ (a & 0xffff_ffff)
            second &+= (b >> 32) &+ (b & 0xffff_ffff)
            third &+= (c >> 32) &+ (c & 0xffff_ffff)
            fourth &+= (d >> 32) &+ (d & 0xffff_ffff)
            offset += 32
        }
        var total = first &+ second &+ third &+ fourth
        while offset + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            total &+= word >> 32
            total &+= word & 0xffff_ffff
            offset += 8
        }
        while offset + 2 <= count {
            total &+= UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count {
            // The odd last byte is the high-order byte of a word padded with zero, in network order: the
            // bytes [b, 0] as the host loads them.
            total &+= UInt64(UInt16(littleEndian: UInt16(bytes.load(fromByteOffset: offset, as: UInt8.self))))
        }
        return total
    }

    /// Folds to 16 bits, in the host's load order (store it with `storeBytes(of:as: UInt16.self)`).
    @inline(__always)
    static func fold(_ sum: UInt64) -> UInt16 {
        var value = sum
        while value >> 16 != 0 { value = (value & 0xffff) &+ (value >> 16) }
        return UInt16(value)
    }

    /// The pseudo-header of TCP and UDP: addresses from the IP header at `ip`, protocol, length.
    static func pseudoHeader(_ ip: UnsafeRawPointer, isIPv6: Bool, protocol number: UInt8, length: Int) -> UInt64 {
        var sum = isIPv6 ? add(ip + 8, 32, to: 0) : add(ip + 12, 8, to: 0)
        var tail: (UInt8, UInt8, UInt8, UInt8) = (0, number, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length))
        sum = withUnsafeBytes(of: &tail) { add($0.baseAddress!, 4, to: sum) }
        if isIPv6 && length > 0xffff { sum &+= UInt64(length >> 16) }
        return sum
    }

    static func ipv4Header(_ ip: UnsafeMutableRawPointer, length: Int) {
        ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        ip.storeBytes(of: ~fold(add(ip, length, to: 0)), toByteOffset: 10, as: UInt16.self)
    }
}

/// One datagram to send: up to two pieces (a rebuilt header, then payload left where it was read).
struct OutgoingPiece {
    var base: UnsafeMutableRawPointer
    var count: Int
}

/// Splitting what a device with offloads hands over (TSO/USO super-packets, unfinished checksums) into
/// the packets a peer expects, and merging consecutive TCP segments into super-packets on the way in
/// (GRO), as the kernel's own GSO and GRO do. Headers are rebuilt in `headerArena`; payloads stay in the
/// read buffer.
enum Offload {
    static let maximumHeader = 128

    /// Makes `packet` (after its virtio header) ready to leave: segments of a super-packet, or the packet
    /// with its checksum finished. Calls `emit(header, payload)` per datagram; `header` points into
    /// `arena` (`maximumHeader` bytes per segment, `arenaSlots` slots). Returns false when the packet is
    /// malformed or needs more slots than the arena has; nothing is emitted then. `reuseSlot`: every
    /// segment's header is rebuilt in the arena's first slot, for a caller that copies it out in `emit`
    /// (then any number of segments fits).
    static func segment(_ packet: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader,
                        arena: UnsafeMutableRawPointer, arenaSlots: Int, reuseSlot: Bool = false,
                        emit: (OutgoingPiece?, OutgoingPiece) -> Void) -> Bool {
        guard length >= 20 else { return false }
        let gsoType = header.gsoType & ~VirtioNetHeader.gsoECN
        if gsoType == VirtioNetHeader.gsoNone {
            guard finishChecksum(packet, length: length, header: header) else { return false }
            emit(nil, OutgoingPiece(base: packet, count: length))
            return true
        }
        let isIPv6 = packet.load(as: UInt8.self) >> 4 == 6
        let ipLength = isIPv6 ? 40 : Int(packet.load(as: UInt8.self) & 0x0f) * 4
        guard ipLength >= 20, length > ipLength + 8 else { return false }
        let transport = packet.load(fromByteOffset: isIPv6 ? 6 : 9, as: UInt8.self)
        let isTCP = gsoType == VirtioNetHeader.gsoTCPv4 || gsoType == VirtioNetHeader.gsoTCPv6
        guard transport == (isTCP ? 6 : 17) else { return false }
        let transportLength = isTCP ? Int(packet.load(fromByteOffset: ipLength + 12, as: UInt8.self) >> 4) * 4 : 8
        let headerLength = ipLength + transportLength
        let segmentSize = Int(header.gsoSize)
        guard transportLength >= 8, headerLength <= maximumHeader, length > headerLength, segmentSize > 0 else { return false }
        let payloadTotal = length - headerLength
        let segments = (payloadTotal + segmentSize - 1) / segmentSize
        guard reuseSlot || segments <= arenaSlots else { return false }
        let firstID = isIPv6 ? 0 : UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let firstSequence = isTCP ? UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: ipLength + 4, as: UInt32.self)) : 0
        let tcpFlags = isTCP ? packet.load(fromByteOffset: ipLength + 13, as: UInt8.self) : 0
        for index in 0..<segments {
            let offset = index * segmentSize
            let size = min(segmentSize, payloadTotal - offset)
            let slot = arena + (reuseSlot ? 0 : index) * maximumHeader
            slot.copyMemory(from: packet, byteCount: headerLength)
            let payload = packet + headerLength + offset
            if isIPv6 {
                slot.storeBytes(of: UInt16(transportLength + size).bigEndian, toByteOffset: 4, as: UInt16.self)
            } else {
                slot.storeBytes(of: UInt16(headerLength + size).bigEndian, toByteOffset: 2, as: UInt16.self)
                slot.storeBytes(of: (firstID &+ UInt16(truncatingIfNeeded: index)).bigEndian, toByteOffset: 4, as: UInt16.self)
                Checksum.ipv4Header(slot, length: ipLength)
            }
            let transportHeader = slot + ipLength
            if isTCP {
                transportHeader.storeBytes(of: (firstSequence &+ UInt32(truncatingIfNeeded: offset)).bigEndian, toByteOffset: 4, as: UInt32.self)
                var flags = tcpFlags
                if index < segments - 1 { flags &= ~0x09 }  // FIN and PSH only on the last segment
                if index > 0 { flags &= ~0x80 }             // CWR only on the first
                transportHeader.storeBytes(of: flags, toByteOffset: 13, as: UInt8.self)
            } else {
                transportHeader.storeBytes(of: UInt16(8 + size).bigEndian, toByteOffset: 4, as: UInt16.self)
            }
            let checksumField = isTCP ? 16 : 6
            transportHeader.storeBytes(of: UInt16(0), toByteOffset: checksumField, as: UInt16.self)
            var sum = Checksum.pseudoHeader(slot, isIPv6: isIPv6, protocol: isTCP ? 6 : 17, length: transportLength + size)
            sum = Checksum.add(transportHeader, transportLength, to: sum)
            sum = Checksum.add(payload, size, to: sum)
            var value = ~Checksum.fold(sum)
            if !isTCP && value == 0 { value = 0xffff }
            transportHeader.storeBytes(of: value, toByteOffset: checksumField, as: UInt16.self)
            emit(OutgoingPiece(base: slot, count: headerLength), OutgoingPiece(base: payload, count: size))
        }
        return true
    }

    /// Writes the checksum a packet without GSO still needs (the kernel left it to us: NEEDS_CSUM); false
    /// when the header's offsets lie outside the packet.
    static func finishChecksum(_ packet: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader) -> Bool {
        guard header.flags & VirtioNetHeader.needsChecksum != 0 else { return true }
        let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
        guard start < length, field + 2 <= length else { return false }
        var sum = Checksum.add(packet + start, length - start, to: 0)
        sum = UInt64(~Checksum.fold(sum))
        let value = UInt16(truncatingIfNeeded: sum)
        // A UDP checksum of 0 means "none": send the all-ones form instead.
        let isUDP = header.checksumOffset == 6
        packet.storeBytes(of: value == 0 && isUDP ? 0xffff : value, toByteOffset: field, as: UInt16.self)
        return true
    }

    /// The IP header length (20 or 40) of a packet GRO may merge: IPv4 without options, not a fragment,
    /// its header checksum good; or IPv6 without extension headers. Either carries `transport` and is as
    /// long as its header says. nil for anything else.
    static func plainIPHeaderLength(_ packet: UnsafeRawPointer, length: Int, carrying transport: UInt8) -> Int? {
        guard length >= 20 else { return nil }
        switch packet.load(as: UInt8.self) >> 4 {
        case 4:
            guard packet.load(as: UInt8.self) & 0x0f == 5, packet.load(fromByteOffset: 9, as: UInt8.self) == transport,
                  UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x3fff == 0,
                  Int(UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) == length,
                  Checksum.fold(Checksum.add(packet, 20, to: 0)) == 0xffff
            else { return nil }
            return 20
        case 6:
            guard length >= 40, packet.load(fromByteOffset: 6, as: UInt8.self) == transport,
                  Int(UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 4, as: UInt16.self))) + 40 == length
            else { return nil }
            return 40
        default:
            return nil
        }
    }

    /// Whether two packets' IP headers agree in all that merging keeps: IPv6 version, class, flow label,
    /// hop limit and addresses; IPv4 TOS, flags (DF), TTL, protocol and addresses.
    static func sameIPFields(_ packet: UnsafeRawPointer, _ other: UnsafeRawPointer, isIPv6: Bool) -> Bool {
        isIPv6 ? memcmp(packet, other, 4) == 0 && memcmp(packet + 7, other + 7, 33) == 0
            : memcmp(packet + 1, other + 1, 1) == 0 && memcmp(packet + 6, other + 6, 4) == 0 && memcmp(packet + 12, other + 12, 8) == 0
    }

    /// Writes a merged packet's length into its IP header (and the IPv4 header checksum again).
    static func setLength(_ ip: UnsafeMutableRawPointer, _ length: Int, isIPv6: Bool) {
        if isIPv6 {
            ip.storeBytes(of: UInt16(length - 40).bigEndian, toByteOffset: 4, as: UInt16.self)
        } else {
            ip.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            Checksum.ipv4Header(ip, length: 20)
        }
    }

    /// What a TCP segment must share with the one before it to be merged: everything in the IP and TCP
    /// headers but lengths, IDs, checksums, the sequence number and PSH.
    struct TCPSegment {
        let ipLength: Int
        let headerLength: Int
        let payloadLength: Int
        let sequence: UInt32
        let flags: UInt8
        let isIPv6: Bool

        /// nil for anything that is not a plain TCP segment with data (fragments, IPv4 options, IPv6
        /// extension headers, SYN/FIN/RST/URG, no payload), and for one whose checksums do not verify:
        /// merged, it would get a fresh, valid checksum that hides the corruption; written alone, it
        /// reaches the kernel as it came, and the kernel drops it. `verifyingPayload: false` skips the
        /// sum over the TCP segment, for packets an AEAD has already authenticated end to end.
        init?(_ packet: UnsafeRawPointer, length: Int, verifyingPayload: Bool = true) {
            guard let ipLength = Offload.plainIPHeaderLength(packet, length: length, carrying: 6), length >= ipLength + 20 else { return nil }
            self.ipLength = ipLength
            isIPv6 = ipLength == 40
            let tcpLength = Int(packet.load(fromByteOffset: ipLength + 12, as: UInt8.self) >> 4) * 4
            flags = packet.load(fromByteOffset: ipLength + 13, as: UInt8.self)
            headerLength = ipLength + tcpLength
            guard tcpLength >= 20, length > headerLength, flags & 0x27 == 0 else { return nil }  // FIN, SYN, RST, URG
            payloadLength = length - headerLength
            sequence = UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: ipLength + 4, as: UInt32.self))
            guard verifyingPayload else { return }
            let segmentSum = Checksum.pseudoHeader(packet, isIPv6: isIPv6, protocol: 6, length: length - ipLength)
            guard Checksum.fold(Checksum.add(packet + ipLength, length - ipLength, to: segmentSum)) == 0xffff else { return nil }
        }

        /// Same flow and same header fields as `first` (at `firstPacket`), apart from what segmentation changes.
        func continues(_ first: TCPSegment, _ firstPacket: UnsafeRawPointer, _ packet: UnsafeRawPointer) -> Bool {
            guard isIPv6 == first.isIPv6, headerLength == first.headerLength, flags & ~0x08 == first.flags & ~0x08,
                  Offload.sameIPFields(packet, firstPacket, isIPv6: isIPv6) else { return false }
            // Ports; acknowledgment, data offset and window; options.
            return memcmp(packet + ipLength, firstPacket + ipLength, 4) == 0
                && memcmp(packet + ipLength + 8, firstPacket + ipLength + 8, 4) == 0
                && memcmp(packet + ipLength + 14, firstPacket + ipLength + 14, 2) == 0
                && memcmp(packet + ipLength + 20, firstPacket + ipLength + 20, headerLength - ipLength - 20) == 0
        }
    }

    /// What a UDP datagram must share with the one before it to be merged: the IP header but lengths,
    /// IDs and checksums, and the ports.
    struct UDPDatagram {
        let ipLength: Int
        let payloadLength: Int
        let isIPv6: Bool
        static let headerCount = 8
        var headerLength: Int { ipLength + Self.headerCount }

        /// nil for anything that is not a plain UDP datagram with data (fragments, IPv4 options, IPv6
        /// extension headers, a UDP length that disagrees with the IP one), and, unless `verifyingPayload`
        /// is false (an AEAD authenticated it), for one whose checksum does not verify or is absent: merged,
        /// it would get a fresh checksum that hides the corruption.
        init?(_ packet: UnsafeRawPointer, length: Int, verifyingPayload: Bool = true) {
            guard let ipLength = Offload.plainIPHeaderLength(packet, length: length, carrying: 17), length > ipLength + Self.headerCount,
                  Int(UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: ipLength + 4, as: UInt16.self))) == length - ipLength
            else { return nil }
            self.ipLength = ipLength
            isIPv6 = ipLength == 40
            payloadLength = length - ipLength - Self.headerCount
            guard verifyingPayload else { return }
            guard packet.loadUnaligned(fromByteOffset: ipLength + 6, as: UInt16.self) != 0 else { return nil }
            let sum = Checksum.pseudoHeader(packet, isIPv6: isIPv6, protocol: 17, length: length - ipLength)
            guard Checksum.fold(Checksum.add(packet + ipLength, length - ipLength, to: sum)) == 0xffff else { return nil }
        }

        /// Same flow and same header fields as `first` (at `firstPacket`), apart from what segmentation changes.
        func continues(_ first: UDPDatagram, _ firstPacket: UnsafeRawPointer, _ packet: UnsafeRawPointer) -> Bool {
            isIPv6 == first.isIPv6 && Offload.sameIPFields(packet, firstPacket, isIPv6: isIPv6)
                && memcmp(packet + ipLength, firstPacket + ipLength, 4) == 0
        }
    }

    /// Turns the merged datagrams in `buffer` (virtio header space, then the first one's IP and UDP
    /// headers) into a USO super-packet: lengths, IPv4 header checksum, the UDP checksum field holding the
    /// pseudo-header sum over the whole, and a virtio header asking the kernel to cut it every
    /// `first.payloadLength` bytes of payload and finish each checksum.
    static func finishMerged(_ buffer: UnsafeMutableRawPointer, length: Int, first: UDPDatagram) {
        let ip = buffer + VirtioNetHeader.size
        let udpLength = length - first.ipLength
        setLength(ip, length, isIPv6: first.isIPv6)
        ip.storeBytes(of: UInt16(udpLength).bigEndian, toByteOffset: first.ipLength + 4, as: UInt16.self)
        let pseudo = Checksum.fold(Checksum.pseudoHeader(ip, isIPv6: first.isIPv6, protocol: 17, length: udpLength))
        ip.storeBytes(of: pseudo, toByteOffset: first.ipLength + 6, as: UInt16.self)
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.gsoType = VirtioNetHeader.gsoUDPL4
        header.headerLength = UInt16(first.headerLength)
        header.gsoSize = UInt16(first.payloadLength)
        header.checksumStart = UInt16(first.ipLength)
        header.checksumOffset = 6
        header.write(to: buffer)
    }

    /// Turns the merged packet in `buffer` (virtio header space, then IP) into a super-packet: lengths,
    /// IPv4 header checksum, the TCP checksum field holding the pseudo-header sum, and a virtio header
    /// asking the kernel to segment at `segmentSize` and finish the checksum.
    static func finishMerged(_ buffer: UnsafeMutableRawPointer, length: Int, first: TCPSegment, segmentSize: Int, push: Bool) {
        let ip = buffer + VirtioNetHeader.size
        setLength(ip, length, isIPv6: first.isIPv6)
        if push { ip.storeBytes(of: first.flags | 0x08, toByteOffset: first.ipLength + 13, as: UInt8.self) }
        let pseudo = Checksum.fold(Checksum.pseudoHeader(ip, isIPv6: first.isIPv6, protocol: 6, length: length - first.ipLength))
        ip.storeBytes(of: pseudo, toByteOffset: first.ipLength + 16, as: UInt16.self)
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.gsoType = first.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4
        header.headerLength = UInt16(first.headerLength)
        header.gsoSize = UInt16(segmentSize)
        header.checksumStart = UInt16(first.ipLength)
        header.checksumOffset = 16
        header.write(to: buffer)
    }
}
