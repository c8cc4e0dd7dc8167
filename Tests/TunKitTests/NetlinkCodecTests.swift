import NetAddress
import Testing
@testable import TunKit

/// Golden bytes written from the kernel's layouts (nlmsghdr 16 bytes, ifaddrmsg 8, rtmsg 12, ifinfomsg 16,
/// attributes {u16 len, u16 type} padded to 4), as iproute2 sends them for the same commands.
@Suite struct NetlinkCodecTests {
    /// `ip addr add 10.10.0.1/24 dev <ifindex 5>`
    @Test func encodesAddressAdd() {
        let bytes = RouteRequests.addAddress(IPPrefix(address: IPAddress("10.10.0.1")!, length: 24)!, index: 5, replace: false)
            .finish(sequence: 1)
        #expect(bytes == [
            0x28, 0, 0, 0, 0x14, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0,  // len 40, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
            2, 24, 0, 0, 5, 0, 0, 0,                                     // AF_INET, /24, flags, scope universe, ifindex
            8, 0, 2, 0, 10, 10, 0, 1,                                    // IFA_LOCAL
            8, 0, 1, 0, 10, 10, 0, 1,                                    // IFA_ADDRESS
        ])
    }

    /// `ip addr replace fd00::1/64 dev 5` with IFA_F_NODAD.
    @Test func encodesIPv6AddressReplaceWithNoDAD() {
        let bytes = RouteRequests.addAddress(IPPrefix(address: IPAddress("fd00::1")!, length: 64)!, index: 5, replace: true)
            .finish(sequence: 7)
        #expect(bytes.count == 16 + 8 + 20 + 20 + 8)
        #expect(Array(bytes[4..<8]) == [0x14, 0, 0x05, 0x05])  // REQUEST|ACK|CREATE|REPLACE
        #expect(Array(bytes[16..<24]) == [10, 64, 0, 0, 5, 0, 0, 0])
        #expect(Array(bytes[24..<28]) == [20, 0, 2, 0])
        #expect(Array(bytes[28..<44]) == [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [1])
        #expect(Array(bytes[64..<72]) == [8, 0, 8, 0, 0x02, 0, 0, 0])  // IFA_FLAGS = IFA_F_NODAD
    }

    /// `ip route add 10.20.0.0/16 via 10.10.0.2 dev 5 proto 212`
    @Test func encodesRouteAdd() {
        let route = RouteRequest(destination: IPPrefix(address: IPAddress("10.20.0.0")!, length: 16)!,
                                 gateway: IPAddress("10.10.0.2"), interfaceIndex: 5, metric: nil, protocol: 212)
        #expect(RouteRequests.addRoute(route, replace: false).finish(sequence: 2) == [
            0x34, 0, 0, 0, 0x18, 0, 0x05, 0x06, 2, 0, 0, 0, 0, 0, 0, 0,  // len 52, RTM_NEWROUTE
            2, 16, 0, 0, 0xfe, 212, 0, 1, 0, 0, 0, 0,                    // AF_INET /16, table main, proto 212, universe, unicast
            8, 0, 1, 0, 10, 20, 0, 0,                                    // RTA_DST
            8, 0, 5, 0, 10, 10, 0, 2,                                    // RTA_GATEWAY
            8, 0, 4, 0, 5, 0, 0, 0,                                      // RTA_OIF
        ])
    }

    /// An on-link route gets scope link; a metric becomes RTA_PRIORITY.
    @Test func encodesOnLinkRouteWithMetric() {
        let route = RouteRequest(destination: IPPrefix(address: IPAddress("10.30.0.0")!, length: 24)!,
                                 gateway: nil, interfaceIndex: 9, metric: 100, protocol: 212)
        let bytes = RouteRequests.addRoute(route, replace: true).finish(sequence: 3)
        #expect(bytes[22] == 253)  // RT_SCOPE_LINK
        #expect(Array(bytes[(bytes.count - 8)...]) == [8, 0, 6, 0, 100, 0, 0, 0])  // RTA_PRIORITY
    }

    /// `ip link set dev 5 up mtu 1400 alias tund:ab`
    @Test func encodesLinkSet() {
        let bytes = RouteRequests.setLink(index: 5, LinkChange(up: true, mtu: 1400, alias: "tund:ab")).finish(sequence: 4)
        #expect(bytes == [
            0x34, 0, 0, 0, 0x10, 0, 0x05, 0, 4, 0, 0, 0, 0, 0, 0, 0,      // len 52, RTM_NEWLINK, REQUEST|ACK
            0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,               // ifindex 5, flags IFF_UP, change IFF_UP
            8, 0, 4, 0, 0x78, 0x05, 0, 0,                                // IFLA_MTU 1400
            11, 0, 20, 0, 0x74, 0x75, 0x6e, 0x64, 0x3a, 0x61, 0x62, 0,   // IFLA_IFALIAS "tund:ab", padded
        ])
    }

    @Test func encodesLinkDownWithoutOtherChanges() {
        let bytes = RouteRequests.setLink(index: 3, LinkChange(up: false)).finish(sequence: 1)
        #expect(bytes.count == 32)
        #expect(Array(bytes[24..<32]) == [0, 0, 0, 0, 1, 0, 0, 0])  // flags 0, change IFF_UP
    }

    @Test func nestedAttributesCarryTheirLength() {
        var builder = NetlinkMessageBuilder(type: 16, flags: 1)
        builder.beginNested(18)
        builder.appendAttribute(1, string: "tun")
        builder.endNested()
        let bytes = builder.finish(sequence: 1)
        #expect(Array(bytes[16..<20]) == [12, 0, 18, 0x80])  // length 12, IFLA_LINKINFO | NLA_F_NESTED
        #expect(Array(bytes[20..<28]) == [8, 0, 1, 0, 0x74, 0x75, 0x6e, 0])
    }

    @Test func splitsADatagramIntoMessages() throws {
        let first = NetlinkMessageBuilder(type: 16, flags: 2).finish(sequence: 9)
        var second = NetlinkMessageBuilder(type: 3, flags: 2)
        second.appendHeader([0, 0, 0, 0])
        let messages = try NetlinkMessage.parse((first + second.finish(sequence: 9))[...])
        #expect(messages.map(\.type) == [16, 3])
        #expect(messages[1].payload == [0, 0, 0, 0])
        #expect(throws: NetlinkDecodeError.truncated) { try NetlinkMessage.parse([40, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0][...]) }
    }

    /// NLMSG_ERROR with NLM_F_CAPPED | NLM_F_ACK_TLVS: errno and the kernel's extended-ack text.
    @Test func decodesAnExtendedAck() throws {
        var payload: [UInt8] = [0xef, 0xff, 0xff, 0xff]         // error -17 (EEXIST)
        payload += [0x34, 0, 0, 0, 0x18, 0, 0x05, 0x06, 2, 0, 0, 0, 0, 0, 0, 0]  // echoed header only
        let text = Array("Route exists".utf8) + [0]
        payload += [UInt8(4 + text.count), 0, 1, 0] + text + [0, 0, 0]
        var header: [UInt8] = []
        withUnsafeBytes(of: UInt32(16 + payload.count)) { header += $0 }
        header += [2, 0, 0x00, 0x03, 2, 0, 0, 0, 0, 0, 0, 0]    // NLMSG_ERROR, flags CAPPED|ACK_TLVS, seq 2
        let message = try #require(try NetlinkMessage.parse((header + payload)[...]).first)
        let (code, kernelMessage) = decodeNetlinkError(message)
        #expect(code == 17)
        #expect(kernelMessage == "Route exists")
    }

    @Test func decodesAPlainAck() throws {
        let bytes: [UInt8] = [36, 0, 0, 0, 2, 0, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0] + [UInt8](repeating: 0, count: 16)
        let message = try #require(try NetlinkMessage.parse(bytes[...]).first)
        #expect(decodeNetlinkError(message).errno == 0)
    }

    /// An RTM_NEWLINK reply: ifinfomsg, name, MTU, operstate, alias, IFLA_LINKINFO/kind "tun".
    @Test func decodesALinkReply() throws {
        var builder = NetlinkMessageBuilder(type: 16, flags: 0)
        builder.appendHeader([0, 0, 0xfe, 0xff, 7, 0, 0, 0, 0x51, 0x10, 0x01, 0, 0, 0, 0, 0])  // index 7, UP|RUNNING|...
        builder.appendAttribute(3, string: "tun0")
        builder.appendAttribute(4, uint32: 1400)
        builder.appendAttribute(16, uint8: 6)
        builder.appendAttribute(20, Array("tund:ab".utf8))
        builder.beginNested(18)
        builder.appendAttribute(1, string: "tun")
        builder.endNested()
        let message = try #require(try NetlinkMessage.parse(builder.finish(sequence: 1)[...]).first)
        let link = try #require(RouteReplies.link(message))
        #expect(link.index == 7 && link.name == "tun0" && link.mtu == 1400 && link.isUp)
        #expect(link.operStateName == "up" && link.alias == "tund:ab" && link.kind == "tun")
        #expect(link.flagNames.contains("RUNNING"))
    }

    /// `RTM_GETSTATS` of ifindex 7 with only IFLA_STATS_LINK_64 (filter_mask 1), as `ip stats show dev` asks;
    /// without NLM_F_ACK, so the answer is one message.
    @Test func encodesStatisticsRequest() {
        #expect(RouteRequests.getStatistics(index: 7).finish(sequence: 3) == [
            0x1c, 0, 0, 0, 94, 0, 0x01, 0, 3, 0, 0, 0, 0, 0, 0, 0,  // len 28, RTM_GETSTATS, REQUEST
            0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0,                      // if_stats_msg: AF_UNSPEC, ifindex 7, filter_mask
        ])
    }

    /// An RTM_NEWSTATS reply: if_stats_msg, then IFLA_STATS_LINK_64 (struct rtnl_link_stats64, 24 u64 here).
    @Test func decodesAStatisticsReply() throws {
        var builder = NetlinkMessageBuilder(type: 92, flags: 0)
        builder.appendHeader([0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0])
        builder.appendAttribute(1, (1...24).flatMap { withUnsafeBytes(of: UInt64($0)) { Array($0) } })
        let message = try #require(try NetlinkMessage.parse(builder.finish(sequence: 1)[...]).first)
        let counters = try #require(RouteReplies.statistics(message))
        #expect(counters.rxPackets == 1 && counters.txPackets == 2 && counters.rxBytes == 3 && counters.txBytes == 4)
        #expect(counters.txDropped == 8 && counters.multicast == 9 && counters.collisions == 10)
        #expect(RouteReplies.statistics(NetlinkMessage(type: 16, flags: 0, sequence: 1, portID: 0, payload: [])) == nil)
    }
}
