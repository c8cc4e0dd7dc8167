#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import Testing
import TundFakes
@testable import TundDataPlane

/// A device in memory: what the kernel would hand over, and what the worker wrote back.
final class FakePacketDevice: PacketDevice {
    var inbound: [[UInt8]] = []
    var written: [[UInt8]] = []
    var gone = false
    /// Refuses USO super-packets, as a kernel older than 6.2 does.
    var refusesUDPSegmentation = false

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        if gone { return -1 }
        guard !inbound.isEmpty else { return 0 }
        let packet = inbound.removeFirst()
        buffer.copyBytes(from: packet)
        return packet.count
    }

    func write(_ packet: UnsafeRawBufferPointer) -> Bool {
        written.append(Array(packet))
        return true
    }

    func write(gathering pieces: UnsafeBufferPointer<iovec>) -> Bool {
        if refusesUDPSegmentation, VirtioNetHeader(pieces[0].iov_base!).gsoType == VirtioNetHeader.gsoUDPL4 { return false }
        written.append(pieces.flatMap { Array(UnsafeRawBufferPointer(start: $0.iov_base, count: $0.iov_len)) })
        return true
    }
}

/// Each mode driven through the same processor the epoll loop uses, over a device in memory: no kernel,
/// no root, no thread.
@Suite struct ModeTests {
    let scratch = Scratch()
    let device = FakePacketDevice()

    func processor(_ mode: any PacketMode, kind: DeviceKind = .tun, failures: FailureLog = FailureLog()) -> QueueProcessor {
        QueueProcessor(queue: 0, device: device, kind: kind, vnetHeader: false, mode: mode, counters: QueueCounters(),
                       tap: nil, receiver: nil, health: WorkerHealth(report: { failures.add($0) }))
    }

    @Test func countCountsAndWritesNothing() {
        let worker = processor(CountMode())
        device.inbound = [PacketSamples.ipv4(protocol: 1, payload: 8), PacketSamples.ipv4(protocol: 17, payload: 8), [0x45, 0, 0]]
        #expect(worker.deviceReady(scratch) == .carryOn)
        let counts = worker.counters.snapshot(queue: 0)
        #expect(counts[.packetsRead] == 3 && counts[.icmp] == 1 && counts[.udp] == 1 && counts.dropped == 1)
        #expect(device.written.isEmpty && counts.lastPacketAtNanoseconds > 0)
    }

    @Test func echoWritesEveryPacketBack() {
        let worker = processor(EchoMode())
        let packets = [PacketSamples.ipv4(protocol: 6, payload: 20), PacketSamples.ipv6(next: 17)]
        device.inbound = packets
        #expect(worker.deviceReady(scratch) == .carryOn)
        #expect(device.written == packets && worker.counters.snapshot(queue: 0)[.packetsWritten] == 2)
    }

    @Test func responderAnswersPingAndIgnoresTheRest() throws {
        let worker = processor(ResponderMode(kind: .tun))
        device.inbound = [ResponderTests.echoRequestV4(), PacketSamples.ipv4(protocol: 17, payload: 8)]
        #expect(worker.deviceReady(scratch) == .carryOn)
        let reply = try #require(device.written.first)
        #expect(device.written.count == 1 && reply[20] == 0)  // ICMP echo reply
        let counts = worker.counters.snapshot(queue: 0)
        #expect(counts[.droppedIgnored] == 1 && counts[.packetsWritten] == 1)
    }

    @Test func aWakeupHandlesABoundedBatch() {
        let worker = processor(CountMode())
        device.inbound = Array(repeating: PacketSamples.ipv4(protocol: 17, payload: 8), count: 100)
        _ = worker.deviceReady(scratch)
        #expect(worker.counters.snapshot(queue: 0)[.packetsRead] == UInt64(Scratch.batchLimit))
        _ = worker.deviceReady(scratch)
        #expect(worker.counters.snapshot(queue: 0)[.packetsRead] == 100)
    }

    @Test func aDeviceThatIsGoneLeavesTheLoop() {
        let worker = processor(CountMode())
        device.gone = true
        #expect(worker.deviceReady(scratch) == .remove)
        #expect(worker.counters.snapshot(queue: 0)[.readErrors] == 1)
    }

    @Test func aTunnelThatReadsItsOwnDatagramStops() throws {
        let local = try #require(SocketAddress("10.151.0.1:7100")), remote = try #require(SocketAddress("10.152.0.2:7101"))
        let failures = FailureLog()
        let worker = processor(TunnelMode(socket: -1, local: local, remote: remote, peer: SocketAddressStorage(remote), gso: false),
                               failures: failures)
        var own = PacketSamples.ipv4(protocol: 17, payload: 40)
        own[16...19] = [10, 152, 0, 2]
        own[20...23] = [0x1b, 0xbc, 0x1b, 0xbd]  // 7100 -> 7101
        device.inbound = [own]
        #expect(worker.deviceReady(scratch) == .remove)
        #expect(worker.health.failed.load(ordering: .relaxed) && failures.reasons.first?.hasPrefix("routing loop") == true)
        #expect(worker.deviceReady(scratch) == .remove)  // and it stays out
    }

    @Test func aTunnelSendsEveryPacketToItsPeer() throws {
        // The peer: a UDP socket on 127.0.0.1 (loopback only); the tunnel's own end: a port the kernel just
        // handed out (bound, then closed).
        let (receiver, peerPort) = try loopbackSocket()
        defer { close(receiver) }
        var bound = timeval(tv_sec: 5, tv_usec: 0)  // a recv that finds nothing ends (the test fails), never hangs
        _ = setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &bound, socklen_t(MemoryLayout<timeval>.size))
        let (probe, localPort) = try loopbackSocket()
        close(probe)
        let remote = try #require(SocketAddress("127.0.0.1:\(peerPort)"))
        let local = try #require(SocketAddress("127.0.0.1:\(localPort)"))
        let tunnel = try openTunnelSocket(local, gro: false)
        defer { close(tunnel) }
        let worker = processor(TunnelMode(socket: tunnel, local: local, remote: remote, peer: SocketAddressStorage(remote), gso: false))
        let packets = [PacketSamples.ipv4(protocol: 1, payload: 30), PacketSamples.ipv4(protocol: 6, payload: 60)]
        device.inbound = packets
        #expect(worker.deviceReady(scratch) == .carryOn)
        var received: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        for _ in 0..<2 {
            let count = recv(receiver, &buffer, buffer.count, 0)
            if count > 0 { received.append(Array(buffer[0..<count])) }
        }
        #expect(received == packets && worker.counters.snapshot(queue: 0)[.peerPacketsSent] == 2)
    }
}

/// A UDP socket bound to 127.0.0.1 and a port the kernel chose.
func loopbackSocket() throws -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr = in_addr(s_addr: UInt32(0x7f00_0001).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    try #require(fd >= 0 && bound)
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// Failure reasons a worker reported (from whatever thread).
final class FailureLog: @unchecked Sendable {
    private(set) var reasons: [String] = []
    func add(_ reason: String) { reasons.append(reason) }
}
