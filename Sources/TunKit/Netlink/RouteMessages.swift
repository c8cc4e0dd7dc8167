import CLinux
import NetAddress

/// Family headers and attribute numbers of rtnetlink (include/uapi/linux/rtnetlink.h, if_link.h,
/// if_addr.h), as the byte layouts and small integers the codec needs. Pure, like the codec.
enum RouteMessage {
    static let newLink = UInt16(RTM_NEWLINK), delLink = UInt16(RTM_DELLINK), getLink = UInt16(RTM_GETLINK)
    static let newAddress = UInt16(RTM_NEWADDR), delAddress = UInt16(RTM_DELADDR), getAddress = UInt16(RTM_GETADDR)
    static let newRoute = UInt16(RTM_NEWROUTE), delRoute = UInt16(RTM_DELROUTE), getRoute = UInt16(RTM_GETROUTE)

    static let request = UInt16(NLM_F_REQUEST), ack = UInt16(NLM_F_ACK), dump = UInt16(NLM_F_DUMP)
    static let create = UInt16(NLM_F_CREATE), exclusive = UInt16(NLM_F_EXCL), replace = UInt16(NLM_F_REPLACE)

    /// `struct ifinfomsg` (16 bytes): family, pad, type, index, flags, change.
    static func ifinfomsg(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(AF_UNSPEC), 0, 0, 0]
        bytes += littleBytes(index) + littleBytes(flags) + littleBytes(change)
        return bytes
    }

    /// `struct ifaddrmsg` (8 bytes): family, prefixlen, flags, scope, index.
    static func ifaddrmsg(family: UInt8, prefixLength: UInt8, index: UInt32) -> [UInt8] {
        [family, prefixLength, 0, UInt8(RT_SCOPE_UNIVERSE.rawValue)] + littleBytes(index)
    }

    /// `struct rtmsg` (12 bytes): family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    static func rtmsg(family: UInt8, destinationLength: UInt8, protocol: UInt8, scope: UInt8, type: UInt8,
                      table: UInt8 = UInt8(RT_TABLE_MAIN.rawValue)) -> [UInt8] {
        [family, destinationLength, 0, 0, table, `protocol`, scope, type] + littleBytes(UInt32(0))
    }

    static func littleBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    // Attribute numbers.
    static let iflaAddress = UInt16(IFLA_ADDRESS), iflaIfname = UInt16(IFLA_IFNAME), iflaMTU = UInt16(IFLA_MTU)
    static let iflaOperstate = UInt16(IFLA_OPERSTATE), iflaIfalias = UInt16(IFLA_IFALIAS), iflaGroup = UInt16(IFLA_GROUP)
    static let iflaStats64 = UInt16(IFLA_STATS64), iflaLinkinfo = UInt16(IFLA_LINKINFO)
    static let iflaInfoKind = UInt16(IFLA_INFO_KIND), iflaInfoData = UInt16(IFLA_INFO_DATA)
    static let iflaExtMask = UInt16(IFLA_EXT_MASK), iflaNumTxQueues = UInt16(IFLA_NUM_TX_QUEUES)
    static let iflaTunMultiQueue = UInt16(IFLA_TUN_MULTI_QUEUE), iflaTunPersist = UInt16(IFLA_TUN_PERSIST)
    static let iflaTunType = UInt16(IFLA_TUN_TYPE), iflaTunOwner = UInt16(IFLA_TUN_OWNER), iflaTunGroup = UInt16(IFLA_TUN_GROUP)
    static let ifaAddress = UInt16(IFA_ADDRESS), ifaLocal = UInt16(IFA_LOCAL), ifaFlags = UInt16(IFA_FLAGS)
    static let ifaProto = UInt16(IFA_PROTO)
    static let rtaDst = UInt16(RTA_DST.rawValue), rtaGateway = UInt16(RTA_GATEWAY.rawValue)
    static let rtaOif = UInt16(RTA_OIF.rawValue), rtaPriority = UInt16(RTA_PRIORITY.rawValue)
    static let rtaTable = UInt16(RTA_TABLE.rawValue)
}
