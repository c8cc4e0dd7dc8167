import Testing
import TundCNI

@Suite struct DeviceNameTests {
    @Test func isTheContainerIDPrefixAndTheInterface() {
        #expect(DeviceName.forContainer("0123456789abcdef0123", ifname: "eth0") == "cni-0123456789ab-eth0")
        #expect(DeviceName.forContainer("abc", ifname: "tap0") == "cni-abc-tap0")
    }

    @Test func sanitisesWhatTundWouldRefuse() {
        #expect(DeviceName.forContainer("a/b c:d", ifname: "é@0") == "cni-a-b-c-d---0")
    }

    @Test func neverExceeds63Characters() {
        let name = DeviceName.forContainer(String(repeating: "f", count: 64), ifname: String(repeating: "i", count: 80))
        #expect(name.count == 63)
        #expect(name.hasPrefix("cni-ffffffffffff-iii"))
    }
}
