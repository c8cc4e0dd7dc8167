public enum PacketSamples {
    /// A minimal IPv4 packet: 20-byte header with `protocol`, then `payload` zero bytes.
    public static func ipv4(protocol number: UInt8, payload: Int) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 20 + payload)
        packet[0] = 0x45
        packet[9] = number
        return packet
    }

    /// An IPv6 packet with `next` header and optional extension headers (each 8 bytes, chained).
    public static func ipv6(next: UInt8, extensions: [UInt8] = [], payload: Int = 8) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 40)
        packet[0] = 0x60
        packet[6] = extensions.first ?? next
        for (index, kind) in extensions.enumerated() {
            _ = kind
            var header = [UInt8](repeating: 0, count: 8)
            header[0] = index + 1 < extensions.count ? extensions[index + 1] : next
            packet += header
        }
        return packet + [UInt8](repeating: 0, count: payload)
    }

    public static func ethernet(type: UInt16, payload: [UInt8]) -> [UInt8] {
        [UInt8](repeating: 0x02, count: 12) + [UInt8(type >> 8), UInt8(type & 0xff)] + payload
    }
}
