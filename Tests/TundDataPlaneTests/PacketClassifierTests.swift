import Testing
import TundFakes
@testable import TundDataPlane


@Suite struct PacketClassifierTests {
    func classify(_ bytes: [UInt8], _ kind: DeviceKind = .tun) -> PacketClass {
        bytes.withUnsafeBytes { PacketClassifier.classify($0, kind: kind) }
    }

    @Test func classifiesIPv4Transports() {
        #expect(classify(PacketSamples.ipv4(protocol: 1, payload: 8)) == PacketClass(network: .ipv4, transport: .icmp))
        #expect(classify(PacketSamples.ipv4(protocol: 6, payload: 20)) == PacketClass(network: .ipv4, transport: .tcp))
        #expect(classify(PacketSamples.ipv4(protocol: 17, payload: 8)) == PacketClass(network: .ipv4, transport: .udp))
        #expect(classify(PacketSamples.ipv4(protocol: 47, payload: 8)) == PacketClass(network: .ipv4, transport: .other))
        #expect(classify(PacketSamples.ipv4(protocol: 58, payload: 8)) == PacketClass(network: .ipv4, transport: .other))
    }

    @Test func walksIPv6ExtensionHeaders() {
        #expect(classify(PacketSamples.ipv6(next: 58)) == PacketClass(network: .ipv6, transport: .icmpv6))
        // An MLD report: hop-by-hop options, then ICMPv6.
        #expect(classify(PacketSamples.ipv6(next: 58, extensions: [0])) == PacketClass(network: .ipv6, transport: .icmpv6))
        #expect(classify(PacketSamples.ipv6(next: 6, extensions: [0, 60])) == PacketClass(network: .ipv6, transport: .tcp))
        #expect(classify(PacketSamples.ipv6(next: 17, extensions: [44])) == PacketClass(network: .ipv6, transport: .udp))
        #expect(classify(PacketSamples.ipv6(next: 1)) == PacketClass(network: .ipv6, transport: .other))
    }

    @Test func malformedPacketsAreFlagged() {
        #expect(classify([]).malformed)
        #expect(classify([0x45, 0, 0, 0]).malformed)
        #expect(classify([0x4f] + [UInt8](repeating: 0, count: 30)).malformed)  // IHL 60 > length
        #expect(classify([0x60] + [UInt8](repeating: 0, count: 20)).malformed)
        #expect(classify([0x02, 0x00], .tap).malformed)
        #expect(classify([0x10, 0, 0, 0]) == PacketClass(network: .other, transport: .other))
    }

    @Test func classifiesEthernetFrames() {
        let ip = PacketSamples.ipv4(protocol: 1, payload: 8)
        #expect(classify(PacketSamples.ethernet(type: 0x0800, payload: ip), .tap) == PacketClass(network: .ipv4, transport: .icmp))
        #expect(classify(PacketSamples.ethernet(type: 0x86dd, payload: PacketSamples.ipv6(next: 58)), .tap).transport == .icmpv6)
        #expect(classify(PacketSamples.ethernet(type: 0x0806, payload: [UInt8](repeating: 0, count: 28)), .tap) == PacketClass(network: .arp, transport: .none))
        #expect(classify(PacketSamples.ethernet(type: 0x88cc, payload: [0, 0]), .tap) == PacketClass(network: .other, transport: .other))
        // 802.1Q tag, then IPv4/UDP.
        let tagged = [UInt8](repeating: 0x02, count: 12) + [0x81, 0x00, 0x00, 0x05, 0x08, 0x00] + PacketSamples.ipv4(protocol: 17, payload: 8)
        #expect(classify(tagged, .tap) == PacketClass(network: .ipv4, transport: .udp))
    }

    @Test func tallyCountsEachPacketInExactlyOneTransportBucket() {
        var tally = BatchTally()
        tally.count(PacketClass(network: .ipv4, transport: .icmp), bytes: 84)
        tally.count(PacketClass(network: .arp, transport: .none), bytes: 42)
        tally.count(PacketClass(network: .other, transport: .other), bytes: 60)
        tally.count(PacketClass.malformedPacket, bytes: 3)
        #expect(tally[.packetsRead] == 4 && tally[.bytesRead] == 189)
        #expect(tally[.icmp] == 1 && tally[.ipv4] == 1 && tally[.arp] == 1 && tally[.other] == 1 && tally[.droppedMalformed] == 1)
    }
}
