/// Pure encoding and decoding of netlink messages: no sockets, no privileges, byte-exact tests.
///
/// Layout (include/uapi/linux/netlink.h): a 16-byte `nlmsghdr` {len u32, type u16, flags u16, seq u32,
/// pid u32}, a family header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`), then attributes {len u16, type u16,
/// value}, each padded to 4 bytes. Integers are in host byte order; addresses in network order.

/// Rounds up to the 4-byte boundary netlink aligns messages and attributes to (NLMSG_ALIGN / RTA_ALIGN).
@inline(__always)
func netlinkAlign(_ length: Int) -> Int { (length + 3) & ~3 }

/// Builds one netlink request: header, family header, attributes (nested ones too).
public struct NetlinkMessageBuilder {
    public private(set) var bytes: [UInt8]
    private var openNests: [Int] = []

    public init(type: UInt16, flags: UInt16) {
        bytes = []
        bytes.reserveCapacity(256)
        appendInteger(UInt32(0))      // length, patched by `finish`
        appendInteger(type)
        appendInteger(flags)
        appendInteger(UInt32(0))      // sequence, patched by `finish`
        appendInteger(UInt32(0))      // port id: 0, the kernel fills it in
    }

    /// Appends raw fixed-size bytes (a family header), padded to alignment.
    public mutating func appendHeader(_ header: [UInt8]) {
        bytes += header
        pad()
    }

    public mutating func appendAttribute(_ type: UInt16, _ value: [UInt8]) {
        appendInteger(UInt16(4 + value.count))
        appendInteger(type)
        bytes += value
        pad()
    }

    public mutating func appendAttribute(_ type: UInt16, uint32 value: UInt32) {
        appendAttribute(type, withUnsafeBytes(of: value) { Array($0) })
    }

    public mutating func appendAttribute(_ type: UInt16, uint8 value: UInt8) {
        appendAttribute(type, [value])
    }

    /// A NUL-terminated string attribute (IFLA_IFNAME, IFLA_IFALIAS takes it too).
    public mutating func appendAttribute(_ type: UInt16, string: String) {
        appendAttribute(type, Array(string.utf8) + [0])
    }

    /// Opens a nested attribute (NLA_F_NESTED is set); close it with `endNested`.
    public mutating func beginNested(_ type: UInt16) {
        openNests.append(bytes.count)
        appendInteger(UInt16(0))
        appendInteger(type | 0x8000)
    }

    public mutating func endNested() {
        let start = openNests.removeLast()
        store(UInt16(bytes.count - start), at: start)
    }

    /// The finished message with its length and sequence number filled in.
    public func finish(sequence: UInt32) -> [UInt8] {
        precondition(openNests.isEmpty, "unclosed nested attribute")
        var message = self
        message.store(UInt32(bytes.count), at: 0)
        message.store(sequence, at: 8)
        return message.bytes
    }

    private mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes += $0 }
    }

    private mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value) { raw in
            for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
        }
    }

    private mutating func pad() {
        bytes += repeatElement(0, count: netlinkAlign(bytes.count) - bytes.count)
    }
}

/// One message read back from the kernel.
public struct NetlinkMessage: Sendable, Equatable {
    public let type: UInt16
    public let flags: UInt16
    public let sequence: UInt32
    public let portID: UInt32
    /// Everything after the 16-byte header.
    public let payload: [UInt8]

    /// Splits a datagram into messages. Truncated or malformed lengths end the parse with an error.
    public static func parse(_ datagram: ArraySlice<UInt8>) throws(NetlinkDecodeError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = datagram.startIndex
        while datagram.endIndex - offset >= 16 {
            let length = Int(datagram.readInteger(UInt32.self, at: offset))
            guard length >= 16, offset + length <= datagram.endIndex else { throw .truncated }
            messages.append(NetlinkMessage(
                type: datagram.readInteger(UInt16.self, at: offset + 4),
                flags: datagram.readInteger(UInt16.self, at: offset + 6),
                sequence: datagram.readInteger(UInt32.self, at: offset + 8),
                portID: datagram.readInteger(UInt32.self, at: offset + 12),
                payload: Array(datagram[(offset + 16)..<(offset + length)])
            ))
            offset += netlinkAlign(length)
        }
        return messages
    }
}

public enum NetlinkDecodeError: Error, Equatable, Sendable {
    case truncated
}

/// Attributes of one message (or of one nested attribute), by type. NLA_F_NESTED and
/// NLA_F_NET_BYTEORDER are masked off the type; a later duplicate wins.
public struct NetlinkAttributes: Sendable {
    private var values: [UInt16: ArraySlice<UInt8>] = [:]

    /// Parses attributes from `bytes[offset...]`; a malformed attribute ends the parse.
    public init(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(bytes.readInteger(UInt16.self, at: offset))
            let type = bytes.readInteger(UInt16.self, at: offset + 2) & 0x3fff
            guard length >= 4, offset + length <= bytes.endIndex else { break }
            values[type] = bytes[(offset + 4)..<(offset + length)]
            offset += netlinkAlign(length)
        }
    }

    public subscript(type: UInt16) -> ArraySlice<UInt8>? { values[type] }

    public func uint32(_ type: UInt16) -> UInt32? {
        guard let value = values[type], value.count >= 4 else { return nil }
        return value.readInteger(UInt32.self, at: value.startIndex)
    }

    public func uint8(_ type: UInt16) -> UInt8? { values[type]?.first }

    /// A NUL-terminated string attribute, without its terminator.
    public func string(_ type: UInt16) -> String? {
        guard let value = values[type] else { return nil }
        return String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    }

    public func nested(_ type: UInt16) -> NetlinkAttributes? {
        values[type].map { NetlinkAttributes($0) }
    }
}

extension ArraySlice<UInt8> {
    /// Reads a host-order integer at an absolute index, with no alignment requirement.
    @inline(__always)
    func readInteger<T: FixedWidthInteger>(_: T.Type, at index: Int) -> T {
        precondition(index >= startIndex && index + MemoryLayout<T>.size <= endIndex)
        return withUnsafeBytes { raw in raw.loadUnaligned(fromByteOffset: index - startIndex, as: T.self) }
    }
}
