import Testing
@testable import TundDataPlane

/// TSO/USO splitting and GRO merging, checked the way a receiver checks: every emitted segment's IPv4 and
/// TCP/UDP checksums verify (sum to 0xffff), lengths and sequence numbers line up.
@Suite struct OffloadTests {
    /// An IPv4 TCP super-packet 10.0.0.1:40000 -> 10.0.0.2:5201 with `payload` bytes of 0..255 repeating.
    static func tcpSuperPacket(payload: Int, flags: UInt8 = 0x18) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 40 + payload)
        packet[0] = 0x45
        packet[2] = UInt8((40 + payload) >> 8 & 0xff); packet[3] = UInt8((40 + payload) & 0xff)
        packet[4] = 0x12; packet[5] = 0x34
        packet[6] = 0x40  // DF
        packet[8] = 64; packet[9] = 6
        packet[12...15] = [10, 0, 0, 1]; packet[16...19] = [10, 0, 0, 2]
        packet[20] = 0x9c; packet[21] = 0x40; packet[22] = 0x14; packet[23] = 0x51
        packet[24...27] = [0, 0, 0x10, 0]  // seq 4096
        packet[28...31] = [0, 0, 0, 7]     // ack 7
        packet[32] = 0x50
        packet[33] = flags
        packet[34] = 0xff; packet[35] = 0xff
        for index in 0..<payload { packet[40 + index] = UInt8(index & 0xff) }
        return packet
    }

    /// The same packet with its IPv4 header and TCP checksums filled in, as a sender would send it.
    static func withChecksums(_ packet: [UInt8]) -> [UInt8] {
        var packet = packet
        packet.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            Checksum.ipv4Header(base, length: 20)
            base.storeBytes(of: UInt16(0), toByteOffset: 36, as: UInt16.self)
            let tcpLength = raw.count - 20
            let sum = Checksum.add(base + 20, tcpLength, to: Checksum.pseudoHeader(base, isIPv6: false, protocol: 6, length: tcpLength))
            base.storeBytes(of: ~Checksum.fold(sum), toByteOffset: 36, as: UInt16.self)
        }
        return packet
    }

    /// An IPv4 UDP datagram 10.0.0.1:40000 -> 10.0.0.2:5201 with `payload` bytes starting at `seed`,
    /// its checksums filled in.
    static func udpDatagram(payload: Int, seed: Int = 0, sourcePort: UInt8 = 0x40) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 28 + payload)
        packet[0] = 0x45
        packet[2] = UInt8((28 + payload) >> 8); packet[3] = UInt8((28 + payload) & 0xff)
        packet[6] = 0x40  // DF
        packet[8] = 64; packet[9] = 17
        packet[12...15] = [10, 0, 0, 1]; packet[16...19] = [10, 0, 0, 2]
        packet[20] = 0x9c; packet[21] = sourcePort; packet[22] = 0x14; packet[23] = 0x51
        packet[24] = UInt8((8 + payload) >> 8); packet[25] = UInt8((8 + payload) & 0xff)
        for index in 0..<payload { packet[28 + index] = UInt8(truncatingIfNeeded: seed + index) }
        packet.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            Checksum.ipv4Header(base, length: 20)
            let sum = Checksum.add(base + 20, 8 + payload, to: Checksum.pseudoHeader(base, isIPv6: false, protocol: 17, length: 8 + payload))
            base.storeBytes(of: ~Checksum.fold(sum), toByteOffset: 26, as: UInt16.self)
        }
        return packet
    }

    /// The same flow over IPv6, fd00::1 -> fd00::2, hop limit 64.
    static func udpDatagramIPv6(payload: Int, seed: Int = 0) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 48 + payload)
        packet[0] = 0x60
        packet[4] = UInt8((8 + payload) >> 8); packet[5] = UInt8((8 + payload) & 0xff)
        packet[6] = 17; packet[7] = 64
        packet[8] = 0xfd; packet[23] = 1; packet[24] = 0xfd; packet[39] = 2
        packet[40] = 0x9c; packet[41] = 0x40; packet[42] = 0x14; packet[43] = 0x51
        packet[44] = UInt8((8 + payload) >> 8); packet[45] = UInt8((8 + payload) & 0xff)
        for index in 0..<payload { packet[48 + index] = UInt8(truncatingIfNeeded: seed + index) }
        packet.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            let sum = Checksum.add(base + 40, 8 + payload, to: Checksum.pseudoHeader(base, isIPv6: true, protocol: 17, length: 8 + payload))
            base.storeBytes(of: ~Checksum.fold(sum), toByteOffset: 46, as: UInt16.self)
        }
        return packet
    }

    /// The packets a super-packet (virtio header first) stands for, cut as the kernel cuts it; nil when
    /// the header does not fit it.
    static func cutAsTheKernelDoes(_ superPacket: [UInt8]) -> [[UInt8]]? {
        var bytes = superPacket
        let header = bytes.withUnsafeBytes { VirtioNetHeader($0.baseAddress!) }
        var segments: [[UInt8]] = []
        let arena = UnsafeMutableRawPointer.allocate(byteCount: Offload.maximumHeader * MergeSpace.pieceLimit, alignment: 64)
        defer { arena.deallocate() }
        let cut = bytes.withUnsafeMutableBytes { raw in
            Offload.segment(raw.baseAddress! + VirtioNetHeader.size, length: raw.count - VirtioNetHeader.size, header: header,
                            arena: arena, arenaSlots: MergeSpace.pieceLimit) { head, payload in
                segments.append(Array(UnsafeRawBufferPointer(start: head!.base, count: head!.count))
                                + Array(UnsafeRawBufferPointer(start: payload.base, count: payload.count)))
            }
        }
        return cut ? segments : nil
    }

    /// Copies `packets` into storage a PacketList points at, as a receive batch would hold them.
    static func withList(_ packets: [[UInt8]], _ body: (PacketList) -> Void) {
        let list = PacketList(capacity: packets.count)
        let stored = packets.map { bytes in
            let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 8)
            bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            list.append(copy, bytes.count)
            return copy
        }
        defer { stored.forEach { $0.deallocate() }; list.deallocate() }
        body(list)
    }

    static func verifies(_ packet: [UInt8]) -> Bool {
        packet.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            let ip = Checksum.fold(Checksum.add(base, 20, to: 0)) == 0xffff
            let tcpLength = packet.count - 20
            var sum = Checksum.pseudoHeader(base, isIPv6: false, protocol: packet[9], length: tcpLength)
            sum = Checksum.add(base + 20, tcpLength, to: sum)
            return ip && Checksum.fold(sum) == 0xffff
        }
    }

    /// The sum over any length, odd ones included, equals RFC 1071 done byte by byte in network order
    /// (an odd last byte once broke a release build: it was read with an aligned load).
    @Test(arguments: [0, 1, 2, 3, 7, 8, 9, 33, 1471, 1472])
    func checksumMatchesTheReference(_ length: Int) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var reference: UInt32 = 0
        for index in stride(from: 0, to: length, by: 2) {
            reference += UInt32(bytes[index]) << 8 | (index + 1 < length ? UInt32(bytes[index + 1]) : 0)
        }
        while reference >> 16 != 0 { reference = (reference & 0xffff) + (reference >> 16) }
        let folded = bytes.withUnsafeBytes { Checksum.fold(Checksum.add($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, length, to: 0)) }
        #expect(UInt16(bigEndian: folded) == UInt16(reference))
    }

    @Test func splitsATCPSuperPacketIntoValidSegments() throws {
        var packet = Self.tcpSuperPacket(payload: 2500)
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.gsoType = VirtioNetHeader.gsoTCPv4
        header.gsoSize = 1000
        header.headerLength = 40
        let arena = UnsafeMutableRawPointer.allocate(byteCount: 8 * Offload.maximumHeader, alignment: 64)
        defer { arena.deallocate() }
        var segments: [[UInt8]] = []
        let accepted = packet.withUnsafeMutableBytes { raw in
            Offload.segment(raw.baseAddress!, length: raw.count, header: header, arena: arena, arenaSlots: 8) { head, payload in
                let headBytes = head.map { Array(UnsafeRawBufferPointer(start: $0.base, count: $0.count)) } ?? []
                segments.append(headBytes + Array(UnsafeRawBufferPointer(start: payload.base, count: payload.count)))
            }
        }
        #expect(accepted)
        #expect(segments.map(\.count) == [1040, 1040, 540])
        #expect(segments.allSatisfy(Self.verifies))
        let sequences = segments.map { UInt32($0[24]) << 24 | UInt32($0[25]) << 16 | UInt32($0[26]) << 8 | UInt32($0[27]) }
        #expect(sequences == [4096, 5096, 6096])
        #expect(segments.map { $0[33] } == [0x10, 0x10, 0x18])  // PSH only on the last
        #expect(segments.map { $0[5] } == [0x34, 0x35, 0x36])    // IPv4 ids count up
        #expect(Array(segments[1][40..<44]) == [232, 233, 234, 235])  // payload bytes 1000.. continue
    }

    @Test func finishesAPartialChecksum() {
        var packet = Self.tcpSuperPacket(payload: 100)
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.checksumStart = 20
        header.checksumOffset = 16
        // What the kernel leaves in the field: the folded pseudo-header sum.
        let pseudo = packet.withUnsafeBytes { Checksum.fold(Checksum.pseudoHeader($0.baseAddress!, isIPv6: false, protocol: 6, length: 120)) }
        packet.withUnsafeMutableBytes { $0.storeBytes(of: pseudo, toByteOffset: 36, as: UInt16.self) }
        packet.withUnsafeMutableBytes { Checksum.ipv4Header($0.baseAddress!, length: 20) }
        var out: [[UInt8]] = []
        _ = packet.withUnsafeMutableBytes { raw in
            Offload.segment(raw.baseAddress!, length: raw.count, header: header, arena: raw.baseAddress!, arenaSlots: 0) { _, payload in
                out.append(Array(UnsafeRawBufferPointer(start: payload.base, count: payload.count)))
            }
        }
        #expect(out.count == 1 && Self.verifies(out[0]))
    }

    @Test func refusesMalformedSuperPackets() {
        var packet = Self.tcpSuperPacket(payload: 100)
        var header = VirtioNetHeader()
        header.gsoType = VirtioNetHeader.gsoTCPv4
        header.gsoSize = 0
        let arena = UnsafeMutableRawPointer.allocate(byteCount: Offload.maximumHeader, alignment: 64)
        defer { arena.deallocate() }
        let zeroSize = packet.withUnsafeMutableBytes { Offload.segment($0.baseAddress!, length: $0.count, header: header, arena: arena, arenaSlots: 1) { _, _ in } }
        header.gsoSize = 10  // would need 10 segments, the arena has 1
        let tooMany = packet.withUnsafeMutableBytes { Offload.segment($0.baseAddress!, length: $0.count, header: header, arena: arena, arenaSlots: 1) { _, _ in } }
        header.gsoType = VirtioNetHeader.gsoUDPL4  // but the packet is TCP
        let wrongProtocol = packet.withUnsafeMutableBytes { Offload.segment($0.baseAddress!, length: $0.count, header: header, arena: arena, arenaSlots: 1) { _, _ in } }
        #expect(!zeroSize && !tooMany && !wrongProtocol)
    }

    /// A segment whose payload was damaged on the way is never merged: merging would give it a fresh,
    /// valid checksum. Alone, it reaches the kernel as it came and is dropped there.
    @Test func aSegmentWithABadChecksumIsNotMerged() {
        let good = Self.withChecksums(Self.tcpSuperPacket(payload: 1000, flags: 0x10))
        #expect(good.withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count) } != nil)
        var damagedPayload = good
        damagedPayload[700] ^= 0x01
        #expect(damagedPayload.withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count) } == nil)
        var damagedHeader = good
        damagedHeader[8] = 63  // TTL changed, IPv4 header checksum not updated
        #expect(damagedHeader.withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count) } == nil)
        // What an AEAD authenticated (WireGuard) is not summed again; its IPv4 header still is, as the kernel would.
        #expect(damagedPayload.withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count, verifyingPayload: false) } != nil)
        #expect(damagedHeader.withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count, verifyingPayload: false) } == nil)
    }

    @Test func segmentsOfOneFlowMergeAndOthersDoNot() {
        let first = Self.withChecksums(Self.tcpSuperPacket(payload: 1000, flags: 0x10))
        var second = Self.tcpSuperPacket(payload: 1000, flags: 0x18)
        second[24...27] = [0, 0, 0x13, 0xe8]  // seq 4096 + 1000
        var otherFlow = second
        otherFlow[23] = 0x52                  // another port
        second = Self.withChecksums(second)
        otherFlow = Self.withChecksums(otherFlow)
        let segments = [first, second, otherFlow].map { bytes in
            bytes.withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count)! }
        }
        first.withUnsafeBytes { a in
            second.withUnsafeBytes { b in #expect(segments[1].continues(segments[0], a.baseAddress!, b.baseAddress!)) }
            otherFlow.withUnsafeBytes { c in #expect(!segments[2].continues(segments[0], a.baseAddress!, c.baseAddress!)) }
        }
        #expect(segments[1].sequence == segments[0].sequence + 1000)
        var syn = first
        syn[33] = 0x02
        #expect(Self.withChecksums(syn).withUnsafeBytes { Offload.TCPSegment($0.baseAddress!, length: $0.count) } == nil)

        // The merged super-packet: a virtio header asking for TSO at 1000, total length fixed.
        var merged = [UInt8](repeating: 0, count: VirtioNetHeader.size) + first + Array(second[40...])
        merged.withUnsafeMutableBytes { Offload.finishMerged($0.baseAddress!, length: 2040, first: segments[0], segmentSize: 1000, push: true) }
        let header = merged.withUnsafeBytes { VirtioNetHeader($0.baseAddress!) }
        #expect(header.gsoType == VirtioNetHeader.gsoTCPv4 && header.gsoSize == 1000 && header.checksumStart == 20 && header.checksumOffset == 16)
        #expect(merged[10 + 2] == 0x07 && merged[10 + 3] == 0xf8)  // IPv4 total length 2040
        #expect(merged[10 + 33] == 0x18)                             // PSH carried from the last segment

        // Through GROMerge into a device: the run of one flow is gathered into that same super-packet (the
        // first segment's headers rewritten, then both payloads where they lie), the other flow goes alone.
        let list = PacketList(capacity: 4)
        let stored = [first, second, otherFlow].map { bytes in
            let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 8)
            bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            list.append(copy, bytes.count)
            return copy
        }
        defer { stored.forEach { $0.deallocate() }; list.deallocate() }
        let device = FakePacketDevice()
        var tally = BatchTally()
        GROMerge.write(list, into: device, merging: MergeSpace(), integrity: .checksummed, &tally)
        #expect(device.written == [merged, [UInt8](repeating: 0, count: VirtioNetHeader.size) + otherFlow])
        #expect(tally[.packetsWritten] == 2 && tally[.bytesWritten] == UInt64(2040 + otherFlow.count))
        #expect(stored[0].load(fromByteOffset: 2, as: UInt16.self) == UInt16(1040).bigEndian)  // the read buffer untouched
    }

    /// A burst of one UDP flow goes to the device as one USO super-packet (the last datagram may be
    /// shorter); cut again the way the kernel cuts it, it gives back the datagrams that were merged.
    @Test func datagramsOfOneUDPFlowMergeIntoOneSuperPacket() throws {
        let burst = [Self.udpDatagram(payload: 64, seed: 0), Self.udpDatagram(payload: 64, seed: 64), Self.udpDatagram(payload: 30, seed: 128)]
        let otherFlow = Self.udpDatagram(payload: 64, seed: 1, sourcePort: 0x41)
        let device = FakePacketDevice()
        var tally = BatchTally()
        Self.withList(burst + [otherFlow]) { GROMerge.write($0, into: device, merging: MergeSpace(), integrity: .checksummed, &tally) }
        try #require(device.written.count == 2)
        #expect(device.written[1] == [UInt8](repeating: 0, count: VirtioNetHeader.size) + otherFlow)
        #expect(tally[.packetsWritten] == 2 && tally[.bytesWritten] == UInt64(28 + 158 + otherFlow.count))

        let merged = device.written[0]
        let header = merged.withUnsafeBytes { VirtioNetHeader($0.baseAddress!) }
        #expect(header.gsoType == VirtioNetHeader.gsoUDPL4 && header.gsoSize == 64 && header.headerLength == 28)
        #expect(header.checksumStart == 20 && header.checksumOffset == 6 && header.flags == VirtioNetHeader.needsChecksum)
        let ip = Array(merged[VirtioNetHeader.size...])
        #expect(ip.count == 28 + 158 && Int(ip[2]) << 8 | Int(ip[3]) == ip.count && Int(ip[24]) << 8 | Int(ip[25]) == 8 + 158)
        let segments = Self.cutAsTheKernelDoes(merged)
        #expect(segments?.count == 3)
        for (segment, original) in zip(segments ?? [], burst) {
            #expect(segment[20...] == original[20...])  // UDP header with its checksum, and the payload
            #expect(segment.withUnsafeBytes { Offload.UDPDatagram($0.baseAddress!, length: $0.count) } != nil)
        }
    }

    /// A datagram damaged on the way, or without a checksum, is not merged (unless an AEAD vouched for it);
    /// a kernel that refuses USO gets the datagrams alone, then and from then on.
    @Test func udpMergingVerifiesAndFallsBack() {
        var damaged = Self.udpDatagram(payload: 64, seed: 64)
        damaged[50] ^= 1
        #expect(damaged.withUnsafeBytes { Offload.UDPDatagram($0.baseAddress!, length: $0.count) } == nil)
        #expect(damaged.withUnsafeBytes { Offload.UDPDatagram($0.baseAddress!, length: $0.count, verifyingPayload: false) } != nil)
        var unsummed = Self.udpDatagram(payload: 64)
        unsummed[26] = 0; unsummed[27] = 0
        #expect(unsummed.withUnsafeBytes { Offload.UDPDatagram($0.baseAddress!, length: $0.count) } == nil)
        var fragment = Self.udpDatagram(payload: 64)
        fragment[6] = 0x20  // more fragments
        #expect(fragment.withUnsafeBytes { Offload.UDPDatagram($0.baseAddress!, length: $0.count, verifyingPayload: false) } == nil)

        let burst = (0..<3).map { Self.udpDatagram(payload: 64, seed: 64 * $0) }
        let empty = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        let device = FakePacketDevice()
        Self.withList([burst[0], damaged, burst[2]]) {
            var tally = BatchTally()
            GROMerge.write($0, into: device, merging: MergeSpace(), integrity: .checksummed, &tally)
        }
        #expect(device.written == [empty + burst[0], empty + damaged, empty + burst[2]])

        let refusing = FakePacketDevice()
        refusing.refusesUDPSegmentation = true
        let space = MergeSpace()
        var tally = BatchTally()
        Self.withList(burst) { GROMerge.write($0, into: refusing, merging: space, integrity: .authenticated, &tally) }
        #expect(refusing.written == burst.map { empty + $0 } && !space.mergesUDP)
        #expect(tally[.packetsWritten] == 3 && tally[.writeErrors] == 0)
    }

    /// Over IPv6 the same: one super-packet whose payload length covers the run, cut back into the
    /// datagrams that were merged, each with a checksum that verifies.
    @Test func datagramsOfOneIPv6FlowMergeToo() throws {
        let burst = [Self.udpDatagramIPv6(payload: 100, seed: 0), Self.udpDatagramIPv6(payload: 100, seed: 100),
                     Self.udpDatagramIPv6(payload: 40, seed: 200)]
        #expect(burst.allSatisfy { packet in packet.withUnsafeBytes { Offload.UDPDatagram($0.baseAddress!, length: $0.count) } != nil })
        let device = FakePacketDevice()
        var tally = BatchTally()
        Self.withList(burst) { GROMerge.write($0, into: device, merging: MergeSpace(), integrity: .checksummed, &tally) }
        try #require(device.written.count == 1)
        let merged = device.written[0]
        let header = merged.withUnsafeBytes { VirtioNetHeader($0.baseAddress!) }
        #expect(header.gsoType == VirtioNetHeader.gsoUDPL4 && header.gsoSize == 100 && header.headerLength == 48 && header.checksumStart == 40)
        let ip = Array(merged[VirtioNetHeader.size...])
        #expect(ip.count == 48 + 240 && Int(ip[4]) << 8 | Int(ip[5]) == 8 + 240 && Int(ip[44]) << 8 | Int(ip[45]) == 8 + 240)
        let segments = Self.cutAsTheKernelDoes(merged)
        #expect(segments == burst)
    }
}
