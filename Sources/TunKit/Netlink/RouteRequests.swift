import CLinux
import NetAddress

/// The rtnetlink requests tund sends, built without a socket so tests can compare them byte for byte
/// with what `ip` sends. Each names its `ip` equivalent.
public enum RouteRequests {
    /// `ip link show dev NAME` (RTM_GETLINK by IFLA_IFNAME).
    public static func getLink(name: String) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.getLink, flags: RouteMessage.request | RouteMessage.ack)
        message.appendHeader(RouteMessage.ifinfomsg(index: 0))
        message.appendAttribute(RouteMessage.iflaIfname, string: name)
        return message
    }

    /// `ip link show` of one ifindex.
    public static func getLink(index: Int32) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.getLink, flags: RouteMessage.request | RouteMessage.ack)
        message.appendHeader(RouteMessage.ifinfomsg(index: index))
        return message
    }

    /// `ip link show` (dump of every link).
    public static func dumpLinks() -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.getLink, flags: RouteMessage.request | RouteMessage.dump)
        message.appendHeader(RouteMessage.ifinfomsg(index: 0))
        return message
    }

    /// `ip link set dev IFINDEX [up|down] [mtu N] [address MAC] [alias TEXT]`.
    public static func setLink(index: Int32, _ change: LinkChange) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.newLink, flags: RouteMessage.request | RouteMessage.ack)
        let upFlag: UInt32 = 0x1  // IFF_UP
        message.appendHeader(RouteMessage.ifinfomsg(
            index: index, flags: change.up == true ? upFlag : 0, change: change.up == nil ? 0 : upFlag))
        if let mtu = change.mtu { message.appendAttribute(RouteMessage.iflaMTU, uint32: UInt32(mtu)) }
        if let mac = change.mac { message.appendAttribute(RouteMessage.iflaAddress, mac.bytes) }
        if let alias = change.alias { message.appendAttribute(RouteMessage.iflaIfalias, Array(alias.utf8)) }
        return message
    }

    /// `ip link del dev IFINDEX`.
    public static func deleteLink(index: Int32) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.delLink, flags: RouteMessage.request | RouteMessage.ack)
        message.appendHeader(RouteMessage.ifinfomsg(index: index))
        return message
    }

    /// `ip addr add PREFIX dev IFINDEX [proto P]` (`replace`: `ip addr replace`). IPv6 addresses skip
    /// duplicate address detection (IFA_F_NODAD) so they are usable at once. `protocol` (IFA_PROTO, Linux
    /// 6.0+) marks who added the address; 0 leaves it unset.
    public static func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool, protocol: UInt8 = 0) -> NetlinkMessageBuilder {
        let flags = RouteMessage.request | RouteMessage.ack | RouteMessage.create | (replace ? RouteMessage.replace : RouteMessage.exclusive)
        var message = NetlinkMessageBuilder(type: RouteMessage.newAddress, flags: flags)
        appendAddressBody(&message, prefix, index: index)
        if prefix.family == .ipv6 { message.appendAttribute(RouteMessage.ifaFlags, uint32: UInt32(IFA_F_NODAD)) }
        if `protocol` != 0 { message.appendAttribute(RouteMessage.ifaProto, uint8: `protocol`) }
        return message
    }

    /// `ip addr del PREFIX dev IFINDEX`.
    public static func deleteAddress(_ prefix: IPPrefix, index: Int32) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.delAddress, flags: RouteMessage.request | RouteMessage.ack)
        appendAddressBody(&message, prefix, index: index)
        return message
    }

    /// `ip addr show` (dump, both families); with `index`, `ip addr show dev IFINDEX`: on a socket with
    /// strict checking the kernel dumps only that link's addresses.
    public static func dumpAddresses(index: Int32 = 0) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.getAddress, flags: RouteMessage.request | RouteMessage.dump)
        message.appendHeader(RouteMessage.ifaddrmsg(family: 0, prefixLength: 0, index: UInt32(bitPattern: index)))
        return message
    }

    /// `ip link set dev IFINDEX group GROUP`.
    public static func setGroup(index: Int32, group: UInt32) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.newLink, flags: RouteMessage.request | RouteMessage.ack)
        message.appendHeader(RouteMessage.ifinfomsg(index: index))
        message.appendAttribute(RouteMessage.iflaGroup, uint32: group)
        return message
    }

    /// `ip link del group GROUP`: every link of the group in one request, unregistered together (one
    /// RCU grace period for all of them instead of one each).
    public static func deleteGroup(_ group: UInt32) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.delLink, flags: RouteMessage.request | RouteMessage.ack)
        message.appendHeader(RouteMessage.ifinfomsg(index: 0))
        message.appendAttribute(RouteMessage.iflaGroup, uint32: group)
        return message
    }

    private static func appendAddressBody(_ message: inout NetlinkMessageBuilder, _ prefix: IPPrefix, index: Int32) {
        message.appendHeader(RouteMessage.ifaddrmsg(
            family: prefix.family.kernelValue, prefixLength: UInt8(prefix.length), index: UInt32(bitPattern: index)))
        message.appendAttribute(RouteMessage.ifaLocal, prefix.address.bytes)
        message.appendAttribute(RouteMessage.ifaAddress, prefix.address.bytes)
    }

    /// `ip route add DEST [via GW] dev IFINDEX [metric M] proto P` (`replace`: `ip route replace`).
    /// Without a gateway the route is on-link (scope link), as `ip` makes it.
    public static func addRoute(_ route: RouteRequest, replace: Bool) -> NetlinkMessageBuilder {
        let flags = RouteMessage.request | RouteMessage.ack | RouteMessage.create | (replace ? RouteMessage.replace : RouteMessage.exclusive)
        var message = NetlinkMessageBuilder(type: RouteMessage.newRoute, flags: flags)
        appendRouteBody(&message, route)
        return message
    }

    /// `ip route del DEST [via GW] dev IFINDEX [metric M]`.
    public static func deleteRoute(_ route: RouteRequest) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.delRoute, flags: RouteMessage.request | RouteMessage.ack)
        appendRouteBody(&message, route)
        return message
    }

    /// `ip route get ADDRESS`: the kernel's own choice of route for one destination, policy rules, the
    /// local table and longest prefix included.
    public static func lookupRoute(to address: IPAddress) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.getRoute, flags: RouteMessage.request | RouteMessage.ack)  // the answer, then the ACK that ends it
        // Strict checking wants table, protocol, scope and type zero in a lookup.
        message.appendHeader(RouteMessage.rtmsg(family: address.family.kernelValue, destinationLength: UInt8(address.bytes.count * 8),
                                                protocol: 0, scope: 0, type: 0, table: 0))
        message.appendAttribute(RouteMessage.rtaDst, address.bytes)
        return message
    }

    /// `ip route show table main` for one family (dump); with `protocol` and `index`,
    /// `ip route show table main proto P dev IFINDEX`: on a socket with strict checking the kernel sends
    /// only those routes.
    public static func dumpRoutes(family: AddressFamily, protocol: UInt8 = 0, index: Int32? = nil) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: RouteMessage.getRoute, flags: RouteMessage.request | RouteMessage.dump)
        message.appendHeader(RouteMessage.rtmsg(family: family.kernelValue, destinationLength: 0, protocol: `protocol`, scope: 0, type: 0))
        if let index { message.appendAttribute(RouteMessage.rtaOif, uint32: UInt32(bitPattern: index)) }
        return message
    }

    private static func appendRouteBody(_ message: inout NetlinkMessageBuilder, _ route: RouteRequest) {
        let scope = route.gateway == nil ? UInt8(RT_SCOPE_LINK.rawValue) : UInt8(RT_SCOPE_UNIVERSE.rawValue)
        message.appendHeader(RouteMessage.rtmsg(
            family: route.destination.family.kernelValue, destinationLength: UInt8(route.destination.length),
            protocol: route.protocol, scope: scope, type: UInt8(RTN_UNICAST)))
        if route.destination.length > 0 { message.appendAttribute(RouteMessage.rtaDst, route.destination.address.bytes) }
        if let gateway = route.gateway { message.appendAttribute(RouteMessage.rtaGateway, gateway.bytes) }
        message.appendAttribute(RouteMessage.rtaOif, uint32: UInt32(bitPattern: route.interfaceIndex))
        if let metric = route.metric { message.appendAttribute(RouteMessage.rtaPriority, uint32: metric) }
    }
}

/// Decoders of the kernel's replies; pure.
public enum RouteReplies {
    public static func link(_ message: NetlinkMessage) -> LinkInfo? {
        let payload = message.payload[...]
        guard message.type == RouteMessage.newLink, payload.count >= 16 else { return nil }
        let attributes = NetlinkAttributes(payload[(payload.startIndex + 16)...])
        let linkInfo = attributes.nested(RouteMessage.iflaLinkinfo)
        let kind = linkInfo?.string(RouteMessage.iflaInfoKind)
        var tun: TunLinkInfo?
        if kind == "tun", let data = linkInfo?.nested(RouteMessage.iflaInfoData) {
            tun = TunLinkInfo(
                isTap: data.uint8(RouteMessage.iflaTunType) == UInt8(TUND_IFF_TAP),
                multiQueue: data.uint8(RouteMessage.iflaTunMultiQueue) == 1,
                persistent: data.uint8(RouteMessage.iflaTunPersist) == 1,
                owner: data.uint32(RouteMessage.iflaTunOwner),
                group: data.uint32(RouteMessage.iflaTunGroup))
        }
        var link = LinkInfo(
            index: payload.readInteger(Int32.self, at: payload.startIndex + 4),
            name: attributes.string(RouteMessage.iflaIfname) ?? "",
            flags: payload.readInteger(UInt32.self, at: payload.startIndex + 8),
            mtu: Int(attributes.uint32(RouteMessage.iflaMTU) ?? 0),
            operState: attributes.uint8(RouteMessage.iflaOperstate) ?? 0,
            mac: attributes[RouteMessage.iflaAddress].flatMap { MACAddress(bytes: Array($0)) },
            alias: attributes.string(RouteMessage.iflaIfalias),
            kind: kind,
            tun: tun,
            statistics: attributes[RouteMessage.iflaStats64].flatMap { LinkStatistics($0) })
        link.group = attributes.uint32(RouteMessage.iflaGroup) ?? 0
        return link
    }

    public static func address(_ message: NetlinkMessage) -> AddressInfo? {
        let payload = message.payload[...]
        guard message.type == RouteMessage.newAddress, payload.count >= 8 else { return nil }
        let attributes = NetlinkAttributes(payload[(payload.startIndex + 8)...])
        guard let raw = attributes[RouteMessage.ifaLocal] ?? attributes[RouteMessage.ifaAddress],
              let address = IPAddress(bytes: Array(raw)),
              let prefix = IPPrefix(address: address, length: Int(payload[payload.startIndex + 1]))
        else { return nil }
        return AddressInfo(interfaceIndex: Int32(bitPattern: payload.readInteger(UInt32.self, at: payload.startIndex + 4)),
                           prefix: prefix, protocol: attributes.uint8(RouteMessage.ifaProto) ?? 0)
    }

    /// The output interface of the answer to `lookupRoute`, whatever table it came from.
    public static func lookedUpInterface(_ message: NetlinkMessage) -> Int32? {
        let payload = message.payload[...]
        guard message.type == RouteMessage.newRoute, payload.count >= 12 else { return nil }
        return NetlinkAttributes(payload[(payload.startIndex + 12)...]).uint32(RouteMessage.rtaOif).map { Int32(bitPattern: $0) }
    }

    /// Routes of the main table only; other tables (local, policy tables) are not tund's business.
    public static func route(_ message: NetlinkMessage) -> RouteInfo? {
        let payload = message.payload[...]
        guard message.type == RouteMessage.newRoute, payload.count >= 12 else { return nil }
        let family = payload[payload.startIndex]
        let attributes = NetlinkAttributes(payload[(payload.startIndex + 12)...])
        let table = attributes.uint32(RouteMessage.rtaTable) ?? UInt32(payload[payload.startIndex + 4])
        guard table == RT_TABLE_MAIN.rawValue else { return nil }
        let zero = IPAddress(bytes: [UInt8](repeating: 0, count: family == UInt8(AF_INET6) ? 16 : 4))
        guard let destinationAddress = attributes[RouteMessage.rtaDst].flatMap({ IPAddress(bytes: Array($0)) }) ?? zero,
              let destination = IPPrefix(address: destinationAddress, length: Int(payload[payload.startIndex + 1]))
        else { return nil }
        return RouteInfo(
            destination: destination,
            gateway: attributes[RouteMessage.rtaGateway].flatMap { IPAddress(bytes: Array($0)) },
            outputInterface: attributes.uint32(RouteMessage.rtaOif).map { Int32(bitPattern: $0) },
            metric: attributes.uint32(RouteMessage.rtaPriority),
            protocol: payload[payload.startIndex + 5])
    }
}
