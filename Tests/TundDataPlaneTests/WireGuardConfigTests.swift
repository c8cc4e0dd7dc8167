import NetAddress
import Testing
@testable import TundDataPlane

/// The wireguard worker's configuration never prints its secrets, however it is interpolated.
@Suite struct WireGuardConfigTests {
    @Test func printingAConfigShowsNoKeyMaterial() {
        let secret = [UInt8](repeating: 0xAB, count: 32), preshared = [UInt8](repeating: 0xCD, count: 32)
        let peer = WireGuardPeerConfig(publicKey: [UInt8](repeating: 1, count: 32), presharedKey: preshared,
                                       endpoint: SocketAddress("192.0.2.1:51820"), allowedIPs: [])
        let config = WireGuardWorkerConfig(privateKey: secret, listenPort: 51820, peers: [peer])
        for text in ["\(config)", "\(WorkerSpec.Mode.wireguard(config))", "\(peer)", String(reflecting: config)] {
            // Neither the bytes as Swift prints arrays nor the base64 that wg would show.
            #expect(!text.contains("171, 171") && !text.contains("205, 205"), "\(text)")
            #expect(!text.contains("q6ur") && !text.contains("zc3N"), "\(text)")
            #expect(text.contains("51820"))
        }
    }
}

/// Transport padding: up to a multiple of 16, never past the device's MTU (the kernel's
/// `calculate_skb_padding`), so a packet of exactly the MTU leaves at the size the MTU was chosen for.
@Suite struct WireGuardPaddingTests {
    @Test(arguments: [
        (0, 1420, 0), (1, 1420, 16), (16, 1420, 16), (17, 1420, 32), (1400, 1420, 1408),
        (1408, 1420, 1408), (1410, 1420, 1420), (1417, 1420, 1420), (1420, 1420, 1420), (1420, 0, 1424), (1500, 1420, 1500),
    ])
    func paddingStopsAtTheMTU(count: Int, mtu: Int, padded: Int) {
        #expect(WireGuardMode.paddedCount(count, mtu: mtu) == padded)
    }
}
