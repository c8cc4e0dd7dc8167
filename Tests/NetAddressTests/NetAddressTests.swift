import NetAddress
import Testing

@Suite struct IPAddressTests {
    @Test func parsesAndPrintsCanonicalText() {
        #expect(IPAddress("10.10.0.1")?.description == "10.10.0.1")
        #expect(IPAddress("fd00:10:0:0:0:0:0:1")?.description == "fd00:10::1")
        #expect(IPAddress("FD00::A")?.description == "fd00::a")
        #expect(IPAddress("10.10.0.1")?.bytes == [10, 10, 0, 1])
    }

    @Test(arguments: ["", "10.0.0", "10.0.0.256", "1.2.3.4.5", "fd00:::1", "10.0.0.1/24", " 10.0.0.1", "0x0a.0.0.1"])
    func rejectsWhatIsNotAnAddress(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func namesAddressesThatCannotBeAssigned() {
        #expect(IPAddress("0.0.0.0")?.unusableAsInterfaceAddressReason != nil)
        #expect(IPAddress("127.0.0.2")?.unusableAsInterfaceAddressReason != nil)
        #expect(IPAddress("224.0.0.1")?.unusableAsInterfaceAddressReason != nil)
        #expect(IPAddress("::1")?.unusableAsInterfaceAddressReason != nil)
        #expect(IPAddress("ff02::1")?.unusableAsInterfaceAddressReason != nil)
        #expect(IPAddress("::ffff:10.0.0.1")?.unusableAsInterfaceAddressReason == "an IPv4-mapped IPv6 address")
        #expect(IPAddress("10.0.0.1")?.unusableAsInterfaceAddressReason == nil)
        #expect(IPAddress("fe80::1")?.unusableAsInterfaceAddressReason == nil)
    }
}

@Suite struct IPPrefixTests {
    @Test func parsesWithAndWithoutLength() throws {
        let prefix = try IPPrefix.parse("10.10.0.1/24").get()
        #expect(prefix.length == 24 && prefix.address == IPAddress("10.10.0.1"))
        #expect(try IPPrefix.parse("10.10.0.1").get().length == 32)
        #expect(try IPPrefix.parse("fd00::1").get().length == 128)
        #expect(try IPPrefix.parse("0.0.0.0/0").get().description == "0.0.0.0/0")
    }

    @Test func rejectsBadLengths() {
        #expect(IPPrefix.parse("10.0.0.1/33") == .failure(.badLength(maximum: 32)))
        #expect(IPPrefix.parse("fd00::1/129") == .failure(.badLength(maximum: 128)))
        #expect(IPPrefix.parse("10.0.0.1/") == .failure(.badLength(maximum: 32)))
        #expect(IPPrefix.parse("10.0.0.1/+8") == .failure(.badLength(maximum: 32)))
        #expect(IPPrefix.parse("10.0.0.1/08") == .failure(.badLength(maximum: 32)))
        #expect(IPPrefix.parse("10.0.0.1/24/1") == .failure(.badLength(maximum: 32)))
        #expect(IPPrefix.parse("nope/24") == .failure(.badAddress))
    }

    @Test func clearsHostBits() throws {
        #expect(try IPPrefix.parse("10.10.7.1/20").get().network.description == "10.10.0.0/20")
        #expect(try IPPrefix.parse("fd00:10::1/64").get().network.description == "fd00:10::/64")
        #expect(try IPPrefix.parse("10.20.0.0/16").get().isNetwork)
        #expect(try !IPPrefix.parse("10.20.0.1/16").get().isNetwork)
        #expect(try IPPrefix.parse("10.20.0.0/16").get().contains(IPAddress("10.20.255.1")!))
        #expect(try !IPPrefix.parse("10.20.0.0/16").get().contains(IPAddress("10.21.0.1")!))
    }
}

@Suite struct MACAddressTests {
    @Test func parsesAndPrints() {
        #expect(MACAddress("02:00:00:00:00:42")?.bytes == [2, 0, 0, 0, 0, 0x42])
        #expect(MACAddress("02:AB:cd:00:00:42")?.description == "02:ab:cd:00:00:42")
        #expect(MACAddress("01:00:5e:00:00:01")?.isMulticast == true)
    }

    @Test(arguments: ["", "02:00:00:00:00", "02:00:00:00:00:00:00", "0200.0000.0042", "02:00:00:00:00:4g", "2:0:0:0:0:42"])
    func rejectsMalformed(_ text: String) {
        #expect(MACAddress(text) == nil)
    }
}
