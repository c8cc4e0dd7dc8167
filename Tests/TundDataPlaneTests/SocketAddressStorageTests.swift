#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import Testing
@testable import TundDataPlane

/// The tunnel's sockaddr, byte for byte: its bytes were once copied through a pointer that had left its
/// `withUnsafeBytes` scope, which the release build turned into garbage (an IPv6 bind failed with EAFNOSUPPORT).
@Suite struct SocketAddressStorageTests {
    func bytes(_ storage: SocketAddressStorage) -> [UInt8] {
        withUnsafeBytes(of: storage.storage) { Array($0.prefix(Int(storage.length))) }
    }

    @Test func ipv4() throws {
        let storage = SocketAddressStorage(try #require(SocketAddress("10.201.0.1:7000")))
        let expected: [UInt8] = [UInt8(AF_INET), 0, 0x1b, 0x58, 10, 201, 0, 1] + [UInt8](repeating: 0, count: 8)
        #expect(storage.length == socklen_t(MemoryLayout<sockaddr_in>.size) && bytes(storage) == expected)
    }

    @Test func ipv6() throws {
        let storage = SocketAddressStorage(try #require(SocketAddress("[fd00:201::1]:7000")))
        let address: [UInt8] = [0xfd, 0, 0x02, 0x01] + [UInt8](repeating: 0, count: 11) + [1]
        let expected: [UInt8] = [UInt8(AF_INET6), 0, 0x1b, 0x58, 0, 0, 0, 0] + address + [0, 0, 0, 0]
        #expect(storage.length == socklen_t(MemoryLayout<sockaddr_in6>.size) && bytes(storage) == expected)
    }
}
