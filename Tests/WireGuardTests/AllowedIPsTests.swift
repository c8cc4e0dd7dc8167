import NetAddress
import Testing
@testable import WireGuardPeers

private func ip4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> IPAddress { IPAddress(bytes: [a, b, c, d])! }

private func ip6(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> IPAddress {
    var bytes: [UInt8] = []
    for word in [a, b, c, d] {
        for shift: UInt32 in [24, 16, 8, 0] { bytes.append(UInt8(truncatingIfNeeded: word >> shift)) }
    }
    return IPAddress(bytes: bytes)!
}

private func prefix(_ address: IPAddress, _ length: Int) -> IPPrefix { IPPrefix(address: address, length: length)! }

private func p(_ text: String) -> IPPrefix { try! IPPrefix.parse(text).get() }

@Suite struct AllowedIPsTests {
    /// The kernel's selftest table (drivers/net/wireguard/selftest/allowedips.c, wg_allowedips_selftest):
    /// all of its inserts and its 28 positive lookups, in its order, peers a..h as letters.
    static func kernelTable() -> AllowedIPs<String> {
        var t = AllowedIPs<String>()
        let inserts: [(IPAddress, Int, String)] = [
            (ip4(192, 168, 4, 0), 24, "a"),
            (ip4(192, 168, 4, 4), 32, "b"),
            (ip4(192, 168, 0, 0), 16, "c"),
            (ip4(192, 95, 5, 64), 27, "d"),
            (ip4(192, 95, 5, 65), 27, "c"), // replaces d's, host bits masked
            (ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128, "d"),
            (ip6(0x26075300, 0x60006b00, 0, 0), 64, "c"),
            (ip4(0, 0, 0, 0), 0, "e"),
            (ip6(0, 0, 0, 0), 0, "e"),
            (ip6(0, 0, 0, 0), 0, "f"), // replaces e's
            (ip6(0x24046800, 0, 0, 0), 32, "g"),
            (ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 64, "h"),
            (ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 128, "a"),
            (ip6(0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128, "c"),
            (ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98, "b"),
            (ip4(64, 15, 112, 0), 20, "g"),
            (ip4(64, 15, 123, 211), 25, "h"),
            (ip4(10, 0, 0, 0), 25, "a"),
            (ip4(10, 0, 0, 128), 25, "b"),
            (ip4(10, 1, 0, 0), 30, "a"),
            (ip4(10, 1, 0, 4), 30, "b"),
            (ip4(10, 1, 0, 8), 29, "c"),
            (ip4(10, 1, 0, 16), 29, "d"),
        ]
        for (address, length, peer) in inserts { t.insert(prefix(address, length), for: peer) }
        return t
    }

    @Test func theKernelSelftestLookups() {
        let t = Self.kernelTable()
        let cases: [(IPAddress, String)] = [
            (ip4(192, 168, 4, 20), "a"), (ip4(192, 168, 4, 0), "a"), (ip4(192, 168, 4, 4), "b"),
            (ip4(192, 168, 200, 182), "c"), (ip4(192, 95, 5, 68), "c"), (ip4(192, 95, 5, 96), "e"),
            (ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), "d"), (ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee), "c"),
            (ip6(0x26075300, 0x60006b01, 0, 0), "f"), (ip6(0x24046800, 0x40040806, 0, 0x1006), "g"),
            (ip6(0x24046800, 0x40040806, 0x1234, 0x5678), "g"), (ip6(0x240467ff, 0x40040806, 0x1234, 0x5678), "f"),
            (ip6(0x24046801, 0x40040806, 0x1234, 0x5678), "f"), (ip6(0x24046800, 0x40040800, 0x1234, 0x5678), "h"),
            (ip6(0x24046800, 0x40040800, 0, 0), "h"), (ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010), "h"),
            (ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), "a"),
            (ip4(64, 15, 116, 26), "g"), (ip4(64, 15, 127, 3), "g"), (ip4(64, 15, 123, 1), "g"),
            (ip4(64, 15, 123, 128), "h"), (ip4(64, 15, 123, 129), "h"),
            (ip4(10, 0, 0, 52), "a"), (ip4(10, 0, 0, 220), "b"), (ip4(10, 1, 0, 2), "a"),
            (ip4(10, 1, 0, 6), "b"), (ip4(10, 1, 0, 10), "c"), (ip4(10, 1, 0, 20), "d"),
        ]
        for (number, (address, expected)) in cases.enumerated() {
            #expect(t.lookup(address) == expected, "kernel case \(number + 1): \(address)")
        }
        // The same answers from header bytes, the data plane's form.
        for (address, expected) in cases {
            let found = address.bytes.withUnsafeBytes { try? t.lookup(addressBytes: $0) }
            #expect(found == expected)
        }
    }

    @Test func theKernelSelftestRemovals() {
        var t = Self.kernelTable()
        for first: UInt8 in [1, 64, 128, 192, 255] { t.insert(prefix(ip4(first, 0, 0, 0), 32), for: "a") }
        t.removeAll(of: "a")
        for first: UInt8 in [1, 64, 128, 192, 255] { #expect(t.lookup(ip4(first, 0, 0, 0)) != "a") }
        // What a held before is gone too; the shorter prefixes under it now answer.
        #expect(t.lookup(ip4(192, 168, 4, 20)) == "c")
        #expect(t.lookup(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef)) == "h")

        var u = AllowedIPs<String>()
        u.insert(prefix(ip4(192, 168, 0, 0), 16), for: "a")
        u.insert(prefix(ip4(192, 168, 0, 0), 24), for: "a")
        u.removeAll(of: "a")
        #expect(u.lookup(ip4(192, 168, 0, 1)) == nil)
        #expect(u.count == 0)
    }

    /// The kernel's 128 /128 inserts that differ in one bit each (its free_node depth check).
    @Test func theKernelSelftestOneBitApartHosts() {
        var t = AllowedIPs<String>()
        var addresses: [IPAddress] = []
        for i in 0..<128 {
            var bytes = [UInt8](repeating: 0xff, count: 16)
            bytes[i / 8] &= ~(UInt8(0x80) >> UInt8(i % 8))
            addresses.append(IPAddress(bytes: bytes)!)
            t.insert(prefix(addresses.last!, 128), for: "a")
        }
        #expect(t.count == 128)
        for address in addresses { #expect(t.lookup(address) == "a") }
        #expect(t.lookup(IPAddress(bytes: [UInt8](repeating: 0xff, count: 16))!) == nil)
    }

    /// The kernel's listing case: a peer's prefixes come back in network form (host bits cleared).
    @Test func theKernelSelftestListing() {
        var t = AllowedIPs<String>()
        t.insert(prefix(ip4(192, 95, 5, 93), 27), for: "a")
        t.insert(prefix(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128), for: "a")
        t.insert(prefix(ip4(10, 1, 0, 20), 29), for: "a")
        t.insert(prefix(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 83), for: "a")
        t.insert(prefix(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 21), for: "a")
        #expect(t.prefixes(of: "a") == [
            prefix(ip4(10, 1, 0, 16), 29), prefix(ip4(192, 95, 5, 64), 27),
            prefix(ip6(0x26075000, 0, 0, 0), 21), prefix(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128),
            prefix(ip6(0x26075300, 0x6d8a6bf8, 0xdab1e000, 0), 83),
        ])
    }

    @Test func longestPrefixWinsAcrossOverlaps() {
        var t = AllowedIPs<Int>()
        t.insert(p("0.0.0.0/0"), for: 0)
        t.insert(p("10.0.0.0/8"), for: 8)
        t.insert(p("10.1.0.0/16"), for: 16)
        t.insert(p("10.1.2.3/32"), for: 32)
        #expect(t.lookup(IPAddress("10.1.2.3")!) == 32)
        #expect(t.lookup(IPAddress("10.1.2.4")!) == 16)
        #expect(t.lookup(IPAddress("10.2.0.1")!) == 8)
        #expect(t.lookup(IPAddress("11.0.0.1")!) == 0)
        // Families are separate: an IPv4 default route says nothing of IPv6.
        #expect(t.lookup(IPAddress("::1")!) == nil)
        t.insert(p("::/0"), for: 60)
        t.insert(p("fd00::1/128"), for: 128)
        #expect(t.lookup(IPAddress("fd00::1")!) == 128)
        #expect(t.lookup(IPAddress("fd00::2")!) == 60)
    }

    @Test func aPrefixGivenToASecondPeerMovesToIt() {
        var t = AllowedIPs<Int>()
        #expect(t.insert(p("10.0.0.0/24"), for: 1) == nil)
        #expect(t.insert(p("10.0.0.77/24"), for: 2) == 1)
        #expect(t.lookup(IPAddress("10.0.0.5")!) == 2)
        #expect(t.prefixes(of: 1).isEmpty)
        #expect(t.prefixes(of: 2) == [p("10.0.0.0/24")])
        #expect(t.insert(p("10.0.0.0/24"), for: 2) == nil, "re-inserting for the owner moves nothing")
        #expect(t.count == 1)
        // Removing peer 1 now leaves peer 2's prefix alone.
        t.removeAll(of: 1)
        #expect(t.lookup(IPAddress("10.0.0.5")!) == 2)
    }

    @Test func removingOnePrefixOrAPeer() {
        var t = AllowedIPs<Int>()
        t.insert(p("10.0.0.0/8"), for: 1)
        t.insert(p("10.9.0.0/16"), for: 2)
        t.insert(p("fd00::/8"), for: 2)
        #expect(t.remove(p("10.9.0.0/16")) == 2)
        #expect(t.remove(p("10.9.0.0/16")) == nil)
        #expect(t.lookup(IPAddress("10.9.0.1")!) == 1)
        t.removeAll(of: 2)
        #expect(t.lookup(IPAddress("fd00::1")!) == nil)
        #expect(Set(t.peers) == [1])
    }

    @Test func theReceiveCheck() throws {
        var t = AllowedIPs<Int>()
        t.insert(p("10.0.0.0/24"), for: 1)
        t.insert(p("10.0.0.128/25"), for: 2)
        #expect(t.allows(1, source: IPAddress("10.0.0.1")!))
        #expect(!t.allows(1, source: IPAddress("10.0.0.200")!), "the longer prefix is peer 2's")
        #expect(t.allows(2, source: IPAddress("10.0.0.200")!))
        #expect(!t.allows(1, source: IPAddress("192.0.2.1")!))
        let source: [UInt8] = [10, 0, 0, 1]
        #expect(try source.withUnsafeBytes { try t.allows(1, sourceBytes: $0) })
        #expect(throws: AllowedIPsError.badAddressLength(5)) {
            try [UInt8](repeating: 0, count: 5).withUnsafeBytes { try t.lookup(addressBytes: $0) }
        }
    }

    /// Random prefixes against a linear scan for the longest match (the kernel's randomized_test, small).
    @Test func agreesWithALinearScan() {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        // Few distinct leading bytes, so that prefixes overlap often.
        func randomAddress(v6: Bool) -> IPAddress {
            v6 ? IPAddress(bytes: [0xfd, UInt8(next() % 4)] + (0..<14).map { _ in UInt8(truncatingIfNeeded: next()) })!
               : IPAddress(bytes: [10, UInt8(next() % 4), UInt8(truncatingIfNeeded: next()), UInt8(truncatingIfNeeded: next())])!
        }
        var t = AllowedIPs<Int>()
        var reference: [IPPrefix: Int] = [:]
        for round in 0..<600 {
            let peer = Int(next() % 16)
            let v6 = round % 3 == 0
            let address = randomAddress(v6: v6)
            let length = Int(next() % UInt64(v6 ? 129 : 33))
            let entry = prefix(address, length).network
            t.insert(entry, for: peer)
            reference[entry] = peer
            if round % 50 == 49 {
                let gone = Int(next() % 16)
                t.removeAll(of: gone)
                reference = reference.filter { $0.value != gone }
            }
        }
        #expect(t.count == reference.count)
        for _ in 0..<2000 {
            let v6 = next() % 2 == 0
            let address = randomAddress(v6: v6)
            let expected = reference.filter { $0.key.contains(address) }.max { $0.key.length < $1.key.length }?.value
            #expect(t.lookup(address) == expected, "\(address)")
        }
    }
}
