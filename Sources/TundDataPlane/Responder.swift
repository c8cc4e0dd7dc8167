/// The `responder` mode's packet logic: turns an ICMPv4/ICMPv6 echo request into its reply, and on TAP
/// devices an ARP request or IPv6 neighbour solicitation into its answer, in place in the read buffer,
/// so the worker writes the same buffer back. Pure and allocation-free.
///
/// The responder plays a peer host behind the device: it answers for every address the kernel sends into
/// the device, with the MAC `responderMAC` on TAP devices.
public enum Responder {
    /// 02:74:75:6e:64:01, locally administered ("tund" in ASCII).
    public static let responderMAC: [UInt8] = [0x02, 0x74, 0x75, 0x6e, 0x64, 0x01]

    /// Rewrites the packet in `buffer[0..<length]` into its answer and returns the answer's length, or nil
    /// when the packet is not one the responder answers.
    public static func answer(_ buffer: UnsafeMutableRawBufferPointer, length: Int, kind: DeviceKind) -> Int? {
        switch kind {
        case .tun: return answerIP(buffer, start: 0, length: length)
        case .tap: return answerFrame(buffer, length: length)
        }
    }

    static func answerFrame(_ frame: UnsafeMutableRawBufferPointer, length: Int) -> Int? {
        guard length >= 14 else { return nil }
        let etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        let answered: Int?
        switch etherType {
        case 0x0806: answered = answerARP(frame, length: length)
        case 0x0800, 0x86dd: answered = answerIP(frame, start: 14, length: length)
        default: answered = nil
        }
        guard let answered else { return nil }
        // The answer goes back to whoever asked, from the responder's MAC.
        for index in 0..<6 {
            frame[index] = frame[6 + index]
            frame[6 + index] = responderMAC[index]
        }
        return answered
    }

    /// ARP request (RFC 826) for any IPv4 address -> reply "it is at responderMAC".
    static func answerARP(_ frame: UnsafeMutableRawBufferPointer, length: Int) -> Int? {
        let arp = 14
        guard length >= arp + 28,
              frame[arp] == 0, frame[arp + 1] == 1,            // Ethernet
              frame[arp + 2] == 0x08, frame[arp + 3] == 0x00,  // IPv4
              frame[arp + 4] == 6, frame[arp + 5] == 4,
              frame[arp + 6] == 0, frame[arp + 7] == 1         // request
        else { return nil }
        let senderIP = arp + 14, targetIP = arp + 24
        // Gratuitous ARP and probes (sender 0.0.0.0) announce, they do not ask.
        let senderIsZero = (0..<4).allSatisfy { frame[senderIP + $0] == 0 }
        let sameAddress = (0..<4).allSatisfy { frame[senderIP + $0] == frame[targetIP + $0] }
        guard !senderIsZero, !sameAddress else { return nil }
        frame[arp + 7] = 2  // reply
        for index in 0..<6 {
            frame[arp + 18 + index] = frame[arp + 8 + index]     // target MAC = requester's MAC
            frame[arp + 8 + index] = responderMAC[index]         // sender MAC = ours
        }
        for index in 0..<4 {
            let asked = frame[targetIP + index]
            frame[targetIP + index] = frame[senderIP + index]
            frame[senderIP + index] = asked
        }
        return arp + 28
    }

    static func answerIP(_ buffer: UnsafeMutableRawBufferPointer, start: Int, length: Int) -> Int? {
        guard length > start else { return nil }
        switch buffer[start] >> 4 {
        case 4: return answerICMPv4(buffer, start: start, length: length)
        case 6: return answerICMPv6(buffer, start: start, length: length)
        default: return nil
        }
    }

    /// ICMPv4 echo request -> echo reply: addresses swapped, type 0, TTL 64, both checksums recomputed.
    static func answerICMPv4(_ packet: UnsafeMutableRawBufferPointer, start: Int, length: Int) -> Int? {
        let headerLength = Int(packet[start] & 0x0f) * 4
        guard headerLength >= 20, length >= start + headerLength + 8, packet[start + 9] == 1 else { return nil }
        let totalLength = Int(packet[start + 2]) << 8 | Int(packet[start + 3])
        guard totalLength >= headerLength + 8, start + totalLength <= length else { return nil }
        // Fragments and multicast/broadcast destinations are not answered.
        guard packet[start + 6] & 0x3f == 0, packet[start + 7] == 0, packet[start + 16] < 224 else { return nil }
        let icmp = start + headerLength
        guard packet[icmp] == 8, packet[icmp + 1] == 0 else { return nil }
        for index in 0..<4 { packet.swapAt(start + 12 + index, start + 16 + index) }
        packet[start + 8] = 64
        packet[icmp] = 0
        let base = packet.baseAddress!
        Checksum.ipv4Header(base + start, length: headerLength)
        base.storeBytes(of: UInt16(0), toByteOffset: icmp + 2, as: UInt16.self)
        base.storeBytes(of: ~Checksum.fold(Checksum.add(base + icmp, totalLength - headerLength, to: 0)), toByteOffset: icmp + 2, as: UInt16.self)
        return start + totalLength
    }

    /// ICMPv6 echo request -> echo reply; on TAP also neighbour solicitation -> advertisement.
    static func answerICMPv6(_ packet: UnsafeMutableRawBufferPointer, start: Int, length: Int) -> Int? {
        guard length >= start + 48, packet[start + 6] == 58 else { return nil }
        let payloadLength = Int(packet[start + 4]) << 8 | Int(packet[start + 5])
        let icmp = start + 40
        guard payloadLength >= 8, icmp + payloadLength <= length else { return nil }
        switch packet[icmp] {
        case 128:
            guard packet[start + 24] != 0xff else { return nil }  // not to multicast destinations
            for index in 0..<16 { packet.swapAt(start + 8 + index, start + 24 + index) }
            packet[start + 7] = 64
            packet[icmp] = 129
        case 135 where start == 14:
            // Neighbour solicitation (RFC 4861 4.3): answer for its target with our link-layer address.
            guard payloadLength >= 24, packet[start + 7] == 255 else { return nil }
            let sourceIsUnspecified = (0..<16).allSatisfy { packet[start + 8 + $0] == 0 }
            guard !sourceIsUnspecified else { return nil }  // duplicate address detection: stay silent
            for index in 0..<16 {
                packet[start + 24 + index] = packet[start + 8 + index]   // to the solicitor
                packet[start + 8 + index] = packet[icmp + 8 + index]     // from the target address
            }
            packet[icmp] = 136
            packet[icmp + 1] = 0
            packet[icmp + 4] = 0x60  // Solicited | Override
            packet[icmp + 5] = 0; packet[icmp + 6] = 0; packet[icmp + 7] = 0
            // Option: target link-layer address (type 2, 8 bytes).
            packet[icmp + 24] = 2
            packet[icmp + 25] = 1
            for index in 0..<6 { packet[icmp + 26 + index] = responderMAC[index] }
            let answerLength = 32
            packet[start + 4] = 0
            packet[start + 5] = UInt8(answerLength)
            storeICMPv6Checksum(packet.baseAddress!, start: start, length: answerLength)
            return icmp + answerLength
        default:
            return nil
        }
        storeICMPv6Checksum(packet.baseAddress!, start: start, length: payloadLength)
        return icmp + payloadLength
    }

    /// The ICMPv6 checksum over the pseudo-header (addresses, length, next header 58) and the message.
    static func storeICMPv6Checksum(_ base: UnsafeMutableRawPointer, start: Int, length: Int) {
        let icmp = start + 40
        base.storeBytes(of: UInt16(0), toByteOffset: icmp + 2, as: UInt16.self)
        var sum = Checksum.pseudoHeader(base + start, isIPv6: true, protocol: 58, length: length)
        sum = Checksum.add(base + icmp, length, to: sum)
        base.storeBytes(of: ~Checksum.fold(sum), toByteOffset: icmp + 2, as: UInt16.self)
    }
}
