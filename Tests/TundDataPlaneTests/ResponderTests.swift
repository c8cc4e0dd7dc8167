import Testing
import TundFakes
@testable import TundDataPlane

/// The responder's answers, checked with an RFC 1071 sum written out byte by byte here.
@Suite struct ResponderTests {
    static func sum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
        var total = initial
        var index = bytes.startIndex
        while index < bytes.endIndex {
            total += UInt32(bytes[index]) << 8 | (index + 1 < bytes.endIndex ? UInt32(bytes[index + 1]) : 0)
            index += 2
        }
        while total >> 16 != 0 { total = (total & 0xffff) + (total >> 16) }
        return UInt16(total)
    }

    static func answer(_ packet: [UInt8], kind: DeviceKind) -> [UInt8]? {
        var buffer = packet
        let length = buffer.withUnsafeMutableBytes { Responder.answer($0, length: packet.count, kind: kind) }
        return length.map { Array(buffer[0..<$0]) }
    }

    static func echoRequestV4() -> [UInt8] {
        var packet: [UInt8] = [0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 31, 0, 1, 10, 31, 0, 2]
        packet += [8, 0, 0, 0, 0x12, 0x34, 0, 1] + Array("payload!".utf8)
        return packet
    }

    static func echoRequestV6(target: [UInt8] = [0xfd, 0, 0, 0x31] + [UInt8](repeating: 0, count: 11) + [2]) -> [UInt8] {
        let source: [UInt8] = [0xfd, 0, 0, 0x31] + [UInt8](repeating: 0, count: 11) + [1]
        return [0x60, 0, 0, 0, 0, 16, 58, 64] + source + target + [128, 0, 0, 0, 0x12, 0x34, 0, 1] + Array("payload!".utf8)
    }

    static func icmpv6Verifies(_ packet: ArraySlice<UInt8>) -> Bool {
        let start = packet.startIndex
        let length = packet.count - 40
        var pseudo: UInt32 = UInt32(sum(packet[(start + 8)..<(start + 40)]))
        pseudo += UInt32(length) + 58
        return sum(packet[(start + 40)...], initial: pseudo) == 0xffff
    }

    @Test func answersAnICMPv4EchoRequest() throws {
        let reply = try #require(Self.answer(Self.echoRequestV4(), kind: .tun))
        #expect(reply.count == 36 && reply[20] == 0)                            // echo reply
        #expect(Array(reply[12..<16]) == [10, 31, 0, 2] && Array(reply[16..<20]) == [10, 31, 0, 1])
        #expect(Self.sum(reply[0..<20]) == 0xffff && Self.sum(reply[20...]) == 0xffff)
        #expect(Array(reply[28...]) == Array("payload!".utf8))
    }

    @Test func answersAnICMPv6EchoRequestAndIgnoresMulticast() throws {
        let reply = try #require(Self.answer(Self.echoRequestV6(), kind: .tun))
        #expect(reply[40] == 129 && reply[39] == 1 && reply[23] == 2)           // reply, addresses swapped
        #expect(Self.icmpv6Verifies(reply[...]))
        let multicast = Self.echoRequestV6(target: [0xff, 2] + [UInt8](repeating: 0, count: 13) + [1])
        #expect(Self.answer(multicast, kind: .tun) == nil)
    }

    @Test func answersArpAndNeighbourSolicitationOnTap() throws {
        let requester: [UInt8] = [0x02, 0, 0, 0, 0, 0x0a]
        let arp = [UInt8](repeating: 0xff, count: 6) + requester + [0x08, 0x06]
            + [0, 1, 8, 0, 6, 4, 0, 1] + requester + [10, 31, 0, 1] + [UInt8](repeating: 0, count: 6) + [10, 31, 0, 2]
        let reply = try #require(Self.answer(arp, kind: .tap))
        #expect(Array(reply[0..<6]) == requester && Array(reply[6..<12]) == Responder.responderMAC)
        #expect(reply[21] == 2 && Array(reply[22..<28]) == Responder.responderMAC && Array(reply[28..<32]) == [10, 31, 0, 2])

        let source: [UInt8] = [0xfd, 0, 0, 0x31] + [UInt8](repeating: 0, count: 11) + [1]
        let target: [UInt8] = [0xfd, 0, 0, 0x31] + [UInt8](repeating: 0, count: 11) + [2]
        let solicited: [UInt8] = [0xff, 2] + [UInt8](repeating: 0, count: 9) + [1, 0xff, 0, 0, 2]
        let solicitation = [0x33, 0x33, 0xff, 0, 0, 2] + requester + [0x86, 0xdd]
            + [0x60, 0, 0, 0, 0, 32, 58, 255] + source + solicited
            + [135, 0, 0, 0, 0, 0, 0, 0] + target + [1, 1] + requester
        let advertisement = try #require(Self.answer(solicitation, kind: .tap))
        let ip = advertisement[14...]
        #expect(ip[ip.startIndex + 40] == 136 && ip[ip.startIndex + 44] == 0x60)
        #expect(Array(ip[(ip.startIndex + 8)..<(ip.startIndex + 24)]) == target)
        #expect(Array(ip[(ip.startIndex + 66)..<(ip.startIndex + 72)]) == Responder.responderMAC)
        #expect(Self.icmpv6Verifies(ip))
    }
}
