/// An address with a prefix length, as in `10.10.0.1/24`: an interface address when host bits are
/// set, a route destination when they are not.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    public init?(address: IPAddress, length: Int) {
        guard (0...address.family.bitCount).contains(length) else { return nil }
        self.address = address
        self.length = length
    }

    /// Why `text` is not `ADDRESS/LENGTH`, or nil with `self` set. A bare address gets the full length
    /// (/32 or /128), as `ip addr add` does.
    public static func parse(_ text: String) -> Result<IPPrefix, PrefixParseError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return .failure(.badAddress) }
        guard parts.count == 2 else { return .success(IPPrefix(address: address, length: address.family.bitCount)!) }
        // Only plain decimal digits: Int("+24") and Int("024") parse, `ip` does not print them.
        let lengthText = parts[1]
        guard !lengthText.isEmpty, lengthText.count <= 3, lengthText.allSatisfy({ $0.isASCII && $0.isNumber }),
              lengthText == "0" || lengthText.first != "0", let length = Int(lengthText)
        else { return .failure(.badLength(maximum: address.family.bitCount)) }
        guard let prefix = IPPrefix(address: address, length: length) else {
            return .failure(.badLength(maximum: address.family.bitCount))
        }
        return .success(prefix)
    }

    public var family: AddressFamily { address.family }

    /// The prefix with host bits cleared: `10.10.0.1/24` -> `10.10.0.0/24`.
    public var network: IPPrefix {
        var bytes = address.bytes
        for index in bytes.indices {
            let bitsKept = max(0, min(8, length - index * 8))
            bytes[index] &= bitsKept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsKept))
        }
        return IPPrefix(address: IPAddress(bytes: bytes)!, length: length)!
    }

    /// True when no host bits are set, as a route destination requires.
    public var isNetwork: Bool { network.address == address }

    /// True when `other` lies inside this prefix.
    public func contains(_ other: IPAddress) -> Bool {
        other.family == family && IPPrefix(address: other, length: length)!.network == network
    }

    public var description: String { "\(address)/\(length)" }
}

public enum PrefixParseError: Error, Equatable, Sendable {
    case badAddress
    case badLength(maximum: Int)
}
