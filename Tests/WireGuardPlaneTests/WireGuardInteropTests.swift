#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NetAddress
import PrivateNamespaceGuard
import Testing
import TunKit
import TundDataPlane
import WireGuardCrypto

/// Whether these tests may run: the privileged tests' rule (`PrivateNamespace`), with wireguard-go and
/// wg installed.
enum InteropEnvironment {
    static let problem: String? = {
        if let problem = PrivateNamespace.problem(for: "wireguard interop tests") { return problem }
        for program in ["wireguard-go", "wg", "ip", "ping"] where Shell.which(program) == nil {
            return "\(program) is not installed (scripts/test.sh installs it)"
        }
        return nil
    }()

    static var available: Bool { problem == nil }
}

@Test func wireGuardInteropRunsInCI() {
    // Skipping is for a developer's unprivileged shell; in CI it is a failure.
    if PrivateNamespace.mustRun() {
        #expect(InteropEnvironment.problem == nil, "\(InteropEnvironment.problem ?? "")")
    } else if let problem = InteropEnvironment.problem {
        print("SKIPPING wireguard interop tests: \(problem)")
    }
}

/// Runs programs with a deadline each.
enum Shell {
    struct Result { let status: Int32; let output: String }

    static func which(_ program: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":")
        where access("\(directory)/\(program)", X_OK) == 0 { return "\(directory)/\(program)" }
        return nil
    }

    /// Runs `arguments` and waits at most `seconds`; a program still running then is killed (status -1).
    @discardableResult
    static func run(_ arguments: [String], seconds: Double = 20) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: which(arguments[0]) ?? arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return Result(status: -1, output: "\(error)") }
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return Result(status: -1, output: "timed out: \(arguments.joined(separator: " "))")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Result(status: process.terminationStatus, output: output)
    }

    /// Runs `arguments` and expects success.
    @discardableResult
    static func must(_ arguments: [String], seconds: Double = 20) throws -> String {
        let result = run(arguments, seconds: seconds)
        guard result.status == 0 else { throw ShellError(command: arguments.joined(separator: " "), result: result) }
        return result.output
    }

    /// Polls `check` every 50 ms until it holds or `seconds` pass.
    static func eventually(seconds: Double, _ check: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if check() { return true }
            usleep(50_000)
        } while Date() < deadline
        return check()
    }
}

struct ShellError: Error, CustomStringConvertible {
    let command: String
    let result: Shell.Result
    var description: String { "\(command) exited \(result.status): \(result.output)" }
}

/// A second network namespace B, joined to this one by a veth pair (10.99.0.1 here, 10.99.0.2 there),
/// running wireguard-go on an interface of its own. Everything it made goes in `tearDown`, in any outcome.
final class WireGuardGoPeer {
    let namespace: String
    let interface: String
    let vethHere: String
    let privateKey: X25519.PrivateKey
    let keyFile: String
    var process: Process?

    init(tag: String) throws {
        namespace = "tundwg-\(tag)"
        interface = "wgb\(tag)"
        vethHere = "vwa\(tag)"
        privateKey = try X25519.PrivateKey.generate()
        keyFile = NSTemporaryDirectory() + "tund-wg-\(tag).key"
    }

    var publicKeyBase64: String { privateKey.publicKey.base64 }

    func setUp(tundPublicKey: [UInt8], tundPort: UInt16) throws {
        let vethThere = "vwb" + vethHere.dropFirst(3)
        try Shell.must(["ip", "netns", "add", namespace])
        try Shell.must(["ip", "link", "add", vethHere, "type", "veth", "peer", "name", vethThere, "netns", namespace])
        try Shell.must(["ip", "addr", "add", "10.99.0.1/24", "dev", vethHere])
        try Shell.must(["ip", "link", "set", vethHere, "up"])
        try Shell.must(["ip", "-n", namespace, "addr", "add", "10.99.0.2/24", "dev", vethThere])
        try Shell.must(["ip", "-n", namespace, "link", "set", vethThere, "up"])
        try Shell.must(["ip", "-n", namespace, "link", "set", "lo", "up"])
        // Only ever `ip netns exec B wireguard-go IFNAME`: it makes an interface named after its argument.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Shell.which("ip") ?? "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace, "wireguard-go", "-f", interface]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        guard Shell.eventually(seconds: 10, { Shell.run(["ip", "-n", namespace, "link", "show", interface]).status == 0 }) else {
            throw ShellError(command: "wireguard-go -f \(interface)", result: .init(status: -1, output: "no interface after 10 s"))
        }
        let secret = try privateKey.rawRepresentation().withUnsafeBytes { Base64Key.encode($0) }
        guard FileManager.default.createFile(atPath: keyFile, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ShellError(command: "writing \(keyFile)", result: .init(status: -1, output: ""))
        }
        try Shell.must(["ip", "netns", "exec", namespace, "wg", "set", interface, "private-key", keyFile, "listen-port", "51820"])
        try addTundPeer(tundPublicKey, port: tundPort)
        try Shell.must(["ip", "-n", namespace, "addr", "add", "10.100.0.2/24", "dev", interface])
        try Shell.must(["ip", "-n", namespace, "link", "set", interface, "up"])
    }

    /// (Re)configures tund as wireguard-go's peer; a fresh peer has no sessions.
    func addTundPeer(_ key: [UInt8], port: UInt16) throws {
        try Shell.must(["ip", "netns", "exec", namespace, "wg", "set", interface, "peer", Base64Key.encode(key),
                        "allowed-ips", "10.100.0.1/32", "endpoint", "10.99.0.1:\(port)"])
    }

    func removeTundPeer(_ key: [UInt8]) throws {
        try Shell.must(["ip", "netns", "exec", namespace, "wg", "set", interface, "peer", Base64Key.encode(key), "remove"])
    }

    /// `wg show IFACE latest-handshakes`: seconds since the epoch, 0 for never.
    func latestHandshake() -> UInt64 {
        let output = Shell.run(["ip", "netns", "exec", namespace, "wg", "show", interface, "latest-handshakes"]).output
        return output.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { UInt64($0) } ?? 0
    }

    /// `wg show IFACE transfer`: (received, sent) bytes.
    func transfer() -> (received: UInt64, sent: UInt64) {
        let fields = Shell.run(["ip", "netns", "exec", namespace, "wg", "show", interface, "transfer"]).output
            .split(whereSeparator: \.isWhitespace)
        guard fields.count >= 3, let received = UInt64(fields[1]), let sent = UInt64(fields[2]) else { return (0, 0) }
        return (received, sent)
    }

    func tearDown() {
        if let process, process.isRunning {
            process.terminate()
            _ = Shell.eventually(seconds: 5) { !process.isRunning }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        Shell.run(["ip", "netns", "del", namespace])
        Shell.run(["ip", "link", "del", vethHere])
        unlink(keyFile)
    }
}

@Suite(.serialized, .enabled(if: InteropEnvironment.available, "needs root in a private network namespace, wireguard-go and wg"))
struct WireGuardInteropTests {
    static let tundPort: UInt16 = 51900

    func workerSpec(device: TunDevice, privateKey: [UInt8], peer: WireGuardPeerConfig) -> WorkerSpec {
        WorkerSpec(name: device.name, kind: .tun,
                   mode: .wireguard(WireGuardWorkerConfig(privateKey: privateKey, listenPort: Self.tundPort, peers: [peer])),
                   descriptors: device.queueDescriptors)
    }

    @Test func talksToWireGuardGoBothWays() throws {
        let tag = String(getpid() % 100_000)
        let other = try WireGuardGoPeer(tag: tag)
        defer { other.tearDown() }
        let ourKey = try X25519.PrivateKey.generate()
        let ourPrivate = try ourKey.rawRepresentation().withUnsafeBytes { Array($0) }
        let theirPublic = other.privateKey.publicKey.bytes
        try other.setUp(tundPublicKey: ourKey.publicKey.bytes, tundPort: Self.tundPort)

        let device = try TunDevice.open(name: "wgt\(tag)", kind: .tun, queues: 1, exclusive: true)
        defer { device.close() }
        try Shell.must(["ip", "addr", "add", "10.100.0.1/24", "dev", device.name])
        try Shell.must(["ip", "link", "set", device.name, "up"])
        let plane = try DataPlane(threads: 2)
        defer { plane.shutdown() }

        // 1. tund initiates: a ping from here goes through tund to wireguard-go.
        let allowed = [try IPPrefix.parse("10.100.0.2/32").get()]
        var worker = try plane.start(workerSpec(device: device, privateKey: ourPrivate, peer: WireGuardPeerConfig(
            publicKey: theirPublic, endpoint: SocketAddress("10.99.0.2:51820"), allowedIPs: allowed)))
        defer { worker.stop() }
        #expect(worker.wireGuard?.publicKey == ourKey.publicKey.bytes)
        let ping = Shell.run(["ping", "-c", "3", "-i", "0.3", "-W", "5", "10.100.0.2"], seconds: 30)
        print("ping from here:\n\(ping.output)")
        #expect(ping.status == 0)
        let handshake = other.latestHandshake()
        let transfer = other.transfer()
        print("wg show latest-handshakes: \(handshake); transfer: \(transfer)")
        #expect(handshake > 0)
        #expect(transfer.received > 0 && transfer.sent > 0)
        let first = try #require(worker.wireGuard?.peers().first)
        print("tund peers(): \(first)")
        #expect(first.handshakesInitiated >= 1 && first.handshakesCompleted >= 1)
        #expect(first.lastHandshakeUnixNanoseconds != nil)
        #expect(first.txPackets >= 3 && first.rxPackets >= 3 && first.txBytes > 0 && first.rxBytes > 0)
        #expect(first.endpoint == SocketAddress("10.99.0.2:51820"))

        // 2. wireguard-go initiates: the worker restarts with no endpoint for the peer, and wireguard-go
        // forgets its sessions with us (the peer removed and added again), so its ping starts a handshake.
        worker.stop()
        worker = try plane.start(workerSpec(device: device, privateKey: ourPrivate, peer: WireGuardPeerConfig(
            publicKey: theirPublic, endpoint: nil, allowedIPs: allowed)))
        try other.removeTundPeer(ourKey.publicKey.bytes)
        try other.addTundPeer(ourKey.publicKey.bytes, port: Self.tundPort)
        let pingBack = Shell.run(["ip", "netns", "exec", other.namespace, "ping", "-c", "3", "-i", "0.3", "-W", "5", "10.100.0.1"], seconds: 30)
        print("ping from B:\n\(pingBack.output)")
        #expect(pingBack.status == 0)
        let after = other.transfer()
        print("wg show transfer after: \(after)")
        #expect(after.received > 0 && after.sent > 0)
        #expect(other.latestHandshake() > 0)
        let second = try #require(worker.wireGuard?.peers().first)
        print("tund peers() after restart: \(second)")
        #expect(second.handshakesInitiated == 0, "wireguard-go initiated this time")
        #expect(second.handshakesCompleted >= 1 && second.rxPackets >= 3 && second.txPackets >= 3)
        #expect(second.endpoint == SocketAddress("10.99.0.2:51820"), "learned from the initiation")
    }

    @Test func aTapDeviceIsRefused() throws {
        let key = try X25519.PrivateKey.generate().rawRepresentation().withUnsafeBytes { Array($0) }
        let device = try TunDevice.open(name: "wgtap\(getpid() % 10_000)", kind: .tap, queues: 1, exclusive: true)
        defer { device.close() }
        let plane = try DataPlane(threads: 1)
        defer { plane.shutdown() }
        #expect(throws: PlaneError.self) {
            try plane.start(WorkerSpec(name: device.name, kind: .tap, mode: .wireguard(WireGuardWorkerConfig(privateKey: key, listenPort: 0)),
                                       descriptors: device.queueDescriptors))
        }
    }
}

/// Two wireguard workers of tund talking to each other over loopback UDP (in the test's private
/// namespace), each on a "device" that is one end of a SOCK_SEQPACKET pair the test holds the other end of.
@Suite(.serialized, .enabled(if: InteropEnvironment.available, "needs root in a private network namespace"))
struct WireGuardWorkerPairTests {
    /// A device the test writes packets into and reads packets out of.
    final class PacketPipe {
        let workerEnd: Int32
        let testEnd: Int32

        init() throws {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw ShellError(command: "socketpair", result: .init(status: errno, output: ""))
            }
            (workerEnd, testEnd) = (pair[0], pair[1])
            _ = fcntl(workerEnd, F_SETFL, fcntl(workerEnd, F_GETFL) | O_NONBLOCK)
        }

        deinit {
            close(workerEnd)
            close(testEnd)
        }

        func send(_ packet: [UInt8]) { _ = packet.withUnsafeBytes { write(testEnd, $0.baseAddress, $0.count) } }

        /// The next packet the worker wrote, waiting at most `seconds`.
        func receive(seconds: Int32 = 5) -> [UInt8]? {
            var ready = pollfd(fd: testEnd, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, seconds * 1000) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 2048)
            let count = buffer.withUnsafeMutableBytes { read(testEnd, $0.baseAddress, $0.count) }
            return count > 0 ? Array(buffer[0..<count]) : nil
        }
    }

    /// A UDP/IPv4 packet from `source` to `destination` carrying `payload`.
    static func packet(from source: [UInt8], to destination: [UInt8], payload: [UInt8]) -> [UInt8] {
        let total = 20 + 8 + payload.count
        var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 17, 0, 0]
        bytes += source + destination
        bytes += [0x30, 0x39, 0x30, 0x3a, UInt8((8 + payload.count) >> 8), UInt8((8 + payload.count) & 0xff), 0, 0]
        return bytes + payload
    }

    static func key() throws -> (private: [UInt8], public: [UInt8]) {
        let key = try X25519.PrivateKey.generate()
        return (try key.rawRepresentation().withUnsafeBytes { Array($0) }, key.publicKey.bytes)
    }

    static func prefix(_ text: String) throws -> IPPrefix { try IPPrefix.parse(text).get() }

    @Test func twoWorkersHandshakeCarryPacketsAndApplyPeerChangesLive() throws {
        let (a, b) = (try Self.key(), try Self.key())
        let (pipeA, pipeB) = (try PacketPipe(), try PacketPipe())
        let plane = try DataPlane(threads: 2)
        defer { plane.shutdown() }
        let workerB = try plane.start(WorkerSpec(name: "wgpairB", kind: .tun, mode: .wireguard(WireGuardWorkerConfig(
            privateKey: b.private, listenPort: 0,
            peers: [WireGuardPeerConfig(publicKey: a.public, allowedIPs: [try Self.prefix("10.1.0.0/16")])])),
            descriptors: [pipeB.workerEnd]))
        defer { workerB.stop() }
        let portB = try #require(workerB.wireGuard?.listenPort)
        let peerOfA = WireGuardPeerConfig(publicKey: b.public, endpoint: SocketAddress(address: .v4(0x7f00_0001), port: portB),
                                          allowedIPs: [try Self.prefix("10.2.0.0/16")])
        let workerA = try plane.start(WorkerSpec(name: "wgpairA", kind: .tun, mode: .wireguard(WireGuardWorkerConfig(
            privateKey: a.private, listenPort: 0, peers: [peerOfA])), descriptors: [pipeA.workerEnd]))
        defer { workerA.stop() }
        let controlA = try #require(workerA.wireGuard)

        // A initiates on its first packet; B learns A's endpoint from the initiation and answers.
        let there = Self.packet(from: [10, 1, 0, 1], to: [10, 2, 0, 1], payload: Array("hello".utf8))
        pipeA.send(there)
        #expect(pipeB.receive() == there)
        let back = Self.packet(from: [10, 2, 0, 1], to: [10, 1, 0, 1], payload: Array("hello back".utf8))
        pipeB.send(back)
        #expect(pipeA.receive() == back)

        // A source outside B's allowed IPs on A is dropped, and counted.
        let spoofed = Self.packet(from: [10, 9, 9, 9], to: [10, 1, 0, 1], payload: [1, 2, 3])
        pipeB.send(spoofed)
        #expect(Shell.eventually(seconds: 5) { controlA.peers().first?.drops["source_not_allowed"] == 1 })

        // A live change keeps the session: no new handshake, and the new allowed prefix is in force.
        var widened = peerOfA
        widened.allowedIPs.append(try Self.prefix("10.9.0.0/16"))
        controlA.setPeers([widened])
        pipeB.send(spoofed)
        #expect(pipeA.receive() == spoofed)
        let status = try #require(controlA.peers().first)
        #expect(status.handshakesInitiated == 1 && status.handshakesCompleted == 1)
        #expect(status.rxPackets >= 2 && status.txPackets >= 1)

        // Narrowed again: the source just accepted (and remembered) is refused from now on.
        controlA.setPeers([peerOfA])
        pipeB.send(spoofed)
        #expect(Shell.eventually(seconds: 5) { controlA.peers().first?.drops["source_not_allowed"] == 2 })

        // A peer removed: nothing routes to it any more.
        controlA.setPeers([])
        #expect(controlA.peers().isEmpty)
        pipeA.send(there)
        #expect(Shell.eventually(seconds: 5) { controlA.deviceDrops()["no_route"] == 1 })
    }
}
