// swift-tools-version: 6.0
import PackageDescription

// Dependencies point down: tund -> TundAPI -> TundHTTP; tund -> TundCore -> NetAddress;
// TunKit and TundStore are OS/storage adapters that know nothing of Core, HTTP or each other.
// The clients point down too: tundctl -> TundClient -> TundJSON; tund-cni -> TundCNI -> TundClient.
// The packet path's modules skip Swift's run-time exclusivity checks in release builds: every access to a
// class's stored property there went through swift_beginAccess, about 3.5% of a WireGuard tunnel's CPU.
// Debug builds, which the unit tests (with AddressSanitizer) use, keep the checks.
let packetPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "tund",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tund", targets: ["tund"]),
        .executable(name: "tundctl", targets: ["tundctl"]),
        .executable(name: "tund-cni", targets: ["tund-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C shims: only what Swift cannot reach (variadic calls, function-like macros).
        .target(name: "CLinux"),
        .target(name: "CMicroHTTPD", linkerSettings: [.linkedLibrary("microhttpd")]),
        .target(name: "CSQLite", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(name: "CBatchIO"),
        // OpenSSL 3's libcrypto (Debian libssl-dev): the primitives under WireGuard.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "NetAddress"),
        .target(name: "TundVersion"),
        .target(name: "Errno"),
        // Every background thread of the daemon: start, wake, join.
        .target(name: "BackgroundThread", dependencies: ["CBatchIO", "Errno"]),
        .target(name: "TunKit", dependencies: ["CLinux", "NetAddress", "Errno", "BackgroundThread"]),
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["EmbedMigrationsTool"]),
        .target(name: "TundStore", dependencies: ["CSQLite"], plugins: ["EmbedMigrations"]),
        // Counter values shared by the data plane that counts, the core that sums, the API that shows.
        .target(name: "PacketCounters", dependencies: ["NetAddress"]),
        // The packet path: a pool of epoll threads serving every device's queues, one file per mode.
        .target(name: "TundDataPlane", dependencies: ["NetAddress", "CBatchIO", "Errno", "BackgroundThread", "PacketCounters",
                                                      "WireGuardCrypto", "WireGuardNoise", "WireGuardPeers", "CryptoCrew"],
                swiftSettings: packetPath),
        .target(name: "TundCore", dependencies: ["NetAddress", "Errno", "BackgroundThread", "PacketCounters", .product(name: "Logging", package: "swift-log")]),
        // The core's PacketWorkers port over the data plane.
        .target(name: "TundWorkers", dependencies: ["TundCore", "TundDataPlane"]),
        // WireGuard's primitives over libcrypto: ChaCha20-Poly1305, XChaCha20-Poly1305, X25519, BLAKE2s, HMAC, KDF, TAI64N.
        .target(name: "WireGuardCrypto", dependencies: ["COpenSSL"], swiftSettings: packetPath),
        // WireGuard's handshake (Noise_IKpsk2), its four messages, MAC1/MAC2 and cookies: bytes in, bytes out, no sockets.
        .target(name: "WireGuardNoise", dependencies: ["WireGuardCrypto"]),
        // A batch's sealing and opening shared by the data-plane threads.
        .target(name: "CryptoCrew", dependencies: ["WireGuardCrypto", "BackgroundThread", "Errno"], swiftSettings: packetPath),
        // The receive side's sliding window of counters (RFC 6479), as the kernel's.
        .target(name: "WireGuardReplay", swiftSettings: packetPath),
        // A peer's state without sockets or threads: allowed IPs, timers, keypair slots, indices, statistics.
        .target(name: "WireGuardPeers", dependencies: ["WireGuardNoise", "WireGuardCrypto", "WireGuardReplay", "NetAddress"], swiftSettings: packetPath),
        .target(name: "PercentEncoding"),
        .target(name: "TundHTTP", dependencies: ["CMicroHTTPD", "BackgroundThread", "PercentEncoding"]),
        .target(name: "TundJSON"),
        .target(name: "TundAPI", dependencies: ["TundCore", "TundHTTP", "PercentEncoding", "TundJSON", "NetAddress", "TundVersion", "Errno", "BackgroundThread", "WireGuardCrypto", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "tund",
            dependencies: [
                "TundAPI", "TundCore", "TundHTTP", "TundJSON", "TundStore", "TunKit", "NetAddress", "TundVersion", "Errno", "TundDataPlane", "TundWorkers", "BackgroundThread",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // What every client of the HTTP API shares: the server address, HTTP over TCP and Unix sockets, the token.
        .target(name: "TundClient", dependencies: ["TundJSON"]),
        // The command-line client: talks to the daemon over the HTTP API only.
        .executableTarget(
            name: "tundctl",
            dependencies: ["TundClient", "TundJSON", "TundVersion", "PercentEncoding", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The CNI plugin: a container runtime's ADD/DEL/CHECK become device requests to tund (logic in TundCNI, testable).
        .target(name: "TundCNI", dependencies: ["TundClient", "TundJSON", "NetAddress"]),
        .executableTarget(name: "tund-cni", dependencies: ["TundCNI", "TundClient", "TundJSON"]),
        // Benchmarks/crypto-crew.sh: what sharing a batch's sealing and opening buys on this machine.
        .executableTarget(name: "crypto-crew-bench", dependencies: ["BackgroundThread", "CryptoCrew", "WireGuardCrypto"], path: "Benchmarks/CryptoCrewBench"),

        .testTarget(name: "NetAddressTests", dependencies: ["NetAddress"]),
        // The one rule for privileged tests: root, in a private network namespace.
        .target(name: "PrivateNamespaceGuard", path: "Tests/PrivateNamespaceGuard"),
        .testTarget(name: "TunKitTests", dependencies: ["TunKit", "NetAddress", "CLinux", "PrivateNamespaceGuard"]),
        .testTarget(name: "TundStoreTests", dependencies: ["TundStore"]),
        // In-memory kernel, store and notices for tests of the core and of the API in process.
        .target(name: "TundFakes", dependencies: ["TundCore", "NetAddress", "Errno", "TundDataPlane", "TundWorkers", .product(name: "Logging", package: "swift-log")], path: "Tests/TundFakes"),
        .testTarget(name: "TundCoreTests", dependencies: ["TundCore", "NetAddress", "Errno", "TundFakes"]),
        .testTarget(name: "TundDataPlaneTests", dependencies: ["TundDataPlane", "NetAddress", "PacketCounters", "TundFakes"]),
        // The wireguard worker against Debian's wireguard-go, in namespaces (root, scripts/test.sh).
        .testTarget(name: "WireGuardPlaneTests", dependencies: ["TundDataPlane", "TunKit", "NetAddress", "WireGuardCrypto", "PrivateNamespaceGuard"]),
        .testTarget(name: "CryptoCrewTests", dependencies: ["CryptoCrew", "WireGuardCrypto"]),
        .testTarget(name: "WireGuardTests", dependencies: ["WireGuardCrypto", "WireGuardNoise", "WireGuardReplay", "WireGuardPeers", "NetAddress"]),
        .testTarget(name: "TundHTTPTests", dependencies: ["TundHTTP", "PercentEncoding"]),
        .testTarget(name: "TundCNITests", dependencies: ["TundCNI", "TundJSON", "NetAddress"]),
        .testTarget(name: "TundAPITests", dependencies: ["TundAPI", "TundCore", "TundHTTP", "TundJSON", "NetAddress", "Errno", "TundFakes"]),
    ]
)
