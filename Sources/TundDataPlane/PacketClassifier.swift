/// The protocol counters a packet adds to. Every packet counts in exactly one of arp, icmp, icmpv6, tcp,
/// udp and other; IP packets count in ipv4 or ipv6 as well. A packet too short for its headers is
/// `malformed` and counts in no protocol.
public struct PacketClass: Equatable, Sendable {
    public enum Network: Sendable { case ipv4, ipv6, arp, other }
    public enum Transport: Sendable { case icmp, icmpv6, tcp, udp, other, none }

    public var network: Network
    public var transport: Transport
    public var malformed: Bool

    public init(network: Network, transport: Transport, malformed: Bool = false) {
        self.network = network
        self.transport = transport
        self.malformed = malformed
    }

    static let malformedPacket = PacketClass(network: .other, transport: .none, malformed: true)
}

/// Classifies what a TUN device hands over (a bare IP packet, IFF_NO_PI) or a TAP device (an Ethernet
/// frame). Reads only headers, allocates nothing.
public enum PacketClassifier {
    public static func classify(_ packet: UnsafeRawBufferPointer, kind: DeviceKind) -> PacketClass {
        kind == .tun ? classifyIP(packet, at: 0) : classifyEthernet(packet)
    }

    static func classifyEthernet(_ frame: UnsafeRawBufferPointer) -> PacketClass {
        guard frame.count >= 14 else { return .malformedPacket }
        var offset = 12
        var etherType = UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1])
        // 802.1Q / 802.1ad tags: skip up to two to reach the payload's type.
        var tags = 0
        while (etherType == 0x8100 || etherType == 0x88a8) && tags < 2 {
            guard frame.count >= offset + 6 else { return .malformedPacket }
            offset += 4
            etherType = UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1])
            tags += 1
        }
        let payload = offset + 2
        switch etherType {
        case 0x0800, 0x86dd: return classifyIP(frame, at: payload)
        case 0x0806: return frame.count >= payload + 8 ? PacketClass(network: .arp, transport: .none) : .malformedPacket
        default: return PacketClass(network: .other, transport: .other)
        }
    }

    static func classifyIP(_ packet: UnsafeRawBufferPointer, at start: Int) -> PacketClass {
        guard packet.count > start else { return .malformedPacket }
        switch packet[start] >> 4 {
        case 4:
            let headerLength = Int(packet[start] & 0x0f) * 4
            guard headerLength >= 20, packet.count >= start + headerLength else { return .malformedPacket }
            return PacketClass(network: .ipv4, transport: transport(packet[start + 9], v6: false))
        case 6:
            guard packet.count >= start + 40 else { return .malformedPacket }
            return PacketClass(network: .ipv6, transport: ipv6Transport(packet, start: start))
        default:
            return PacketClass(network: .other, transport: .other)
        }
    }

    /// Walks IPv6 extension headers (hop-by-hop, routing, fragment, destination options) to the upper
    /// layer: MLD reports, for one, sit behind a hop-by-hop header.
    static func ipv6Transport(_ packet: UnsafeRawBufferPointer, start: Int) -> PacketClass.Transport {
        var next = packet[start + 6]
        var offset = start + 40
        for _ in 0..<8 {
            switch next {
            case 0, 43, 60:
                guard packet.count >= offset + 8 else { return .other }
                let length = (Int(packet[offset + 1]) + 1) * 8
                next = packet[offset]
                offset += length
            case 44:
                guard packet.count >= offset + 8 else { return .other }
                next = packet[offset]
                offset += 8
            default:
                return transport(next, v6: true)
            }
        }
        return .other
    }

    static func transport(_ protocolNumber: UInt8, v6: Bool) -> PacketClass.Transport {
        switch protocolNumber {
        case 1: v6 ? .other : .icmp
        case 58: v6 ? .icmpv6 : .other
        case 6: .tcp
        case 17: .udp
        default: .other
        }
    }
}
