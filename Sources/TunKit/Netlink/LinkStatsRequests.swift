import CLinux

/// `ip -s link show` reduced to the counters: RTM_GETSTATS for one ifindex with only IFLA_STATS_LINK_64
/// asked for. The answer is the 12-byte `if_stats_msg` and one 200-byte attribute, where RTM_GETLINK
/// answers ~1.5 KB of attributes the kernel has to gather first.
extension RouteRequests {
    /// RTM_GETSTATS of one ifindex, filter_mask IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64).
    public static func getStatistics(index: Int32) -> NetlinkMessageBuilder {
        // No NLM_F_ACK: the answer (or an error) is the one message that comes back, which saves a recv
        // on every GET .../stats.
        var message = NetlinkMessageBuilder(type: UInt16(RTM_GETSTATS), flags: RouteMessage.request)
        // struct if_stats_msg (12 bytes): family, pad1, pad2 (u16), ifindex, filter_mask.
        let filterMask: UInt32 = 1 << (UInt32(IFLA_STATS_LINK_64) - 1)
        message.appendHeader([UInt8(AF_UNSPEC), 0, 0, 0] + RouteMessage.littleBytes(index) + RouteMessage.littleBytes(filterMask))
        return message
    }
}

extension RouteReplies {
    /// The IFLA_STATS_LINK_64 counters of an RTM_NEWSTATS answer (the same `rtnl_link_stats64` as IFLA_STATS64).
    public static func statistics(_ message: NetlinkMessage) -> LinkStatistics? {
        let payload = message.payload[...]
        guard message.type == UInt16(RTM_NEWSTATS), payload.count >= 12 else { return nil }
        var offset = payload.startIndex + 12
        while payload.endIndex - offset >= 4 {
            let length = Int(payload.readInteger(UInt16.self, at: offset))
            let type = payload.readInteger(UInt16.self, at: offset + 2) & 0x3fff
            guard length >= 4, offset + length <= payload.endIndex else { return nil }
            if type == UInt16(IFLA_STATS_LINK_64) { return LinkStatistics(payload[(offset + 4)..<(offset + length)]) }
            offset += netlinkAlign(length)
        }
        return nil
    }
}
