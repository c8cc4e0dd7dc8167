#if canImport(Glibc)
import Glibc
#endif
import Errno
import BackgroundThread
import CBatchIO
import NetAddress
import Synchronization

/// One device's packet worker: a thread per queue working on the queue's descriptor.
///
/// Each thread sleeps in `poll` on its queue (and, for a tunnel, the UDP socket) and on a stop pipe; when
/// woken it handles every packet that is ready, up to `batchLimit` (non-blocking reads; `recvmmsg` and
/// `sendmmsg` on the tunnel socket), publishes the batch's counts, and sleeps again. `stop` writes to the
/// pipe and joins the threads, so a blocked read never holds a DELETE. Buffers are allocated once per
/// thread; the loop allocates nothing and takes no lock per packet.
public final class PacketWorker: Sendable {
    public let mode: WorkerMode
    private let loops: [QueueLoop]
    /// The running threads and the tunnel's UDP socket (shared by them; -1 in other modes, and once
    /// stopped). `stop` joins the threads and closes the socket under this lock, so the port is free for
    /// a successor (a new remote on the same local) as soon as `stop` returns.
    private let running: Mutex<(threads: [BackgroundThread], tunnelSocket: Int32)>
    private let health: WorkerHealth

    /// Starts one thread per descriptor. The descriptors stay owned by the caller and must outlive `stop`.
    /// A tunnel binds `tunnel.local` first (EADDRINUSE and the like fail here).
    /// `name` (the device's) names the threads `tund:<name>/<queue>` for `top -H` and `perf`.
    /// `vnetHeader`: the descriptors carry a virtio header on every packet (the device has offloads).
    /// `onFailure` runs once, on the worker's own thread, when the worker stops by itself (a tunnel that
    /// reads its own datagrams back from its device: a routing loop).
    public init(mode: WorkerMode, kind: DeviceKind, descriptors: [Int32], tunnel: TunnelSpec? = nil,
                capture: CaptureHub = CaptureHub(), name: String = "", vnetHeader: Bool = false,
                onFailure: @escaping @Sendable (String) -> Void = { _ in }) throws(KernelError) {
        self.mode = mode
        // One signal for all the queue threads, never drained: once raised, every one of them wakes and ends.
        let stop: WakeSignal
        do { stop = try WakeSignal() } catch { throw KernelError(operation: "pipe (worker stop signal)", errno: error) }
        var socketFD: Int32 = -1
        var peer: SocketAddressStorage?
        if mode == .tunnel, let tunnel {
            socketFD = try openTunnelSocket(tunnel.local, gro: vnetHeader)
            peer = SocketAddressStorage(tunnel.remote)
        }
        let health = WorkerHealth(stop: stop, report: onFailure)
        self.health = health
        let ownDatagrams = tunnel.map(OwnDatagram.init)
        loops = descriptors.enumerated().map {
            QueueLoop(queue: $0.offset, descriptor: $0.element, stopSignal: stop.descriptor, kind: kind, mode: mode,
                      tunnelSocket: socketFD, peer: peer, capture: capture, vnetHeader: vnetHeader,
                      health: health, ownDatagram: mode == .tunnel ? ownDatagrams : nil)
        }
        var started: [BackgroundThread] = []
        for loop in loops {
            do {
                // Otherwise the thread would keep the name of the HTTP thread that started it ("MHD-worker").
                started.append(try BackgroundThread(name: "\(name)/\(loop.queue)", wake: stop) { _ in loop.run() })
            } catch {
                running = Mutex((started, socketFD))
                self.stop()
                throw KernelError(operation: "starting a worker thread", errno: error)
            }
        }
        running = Mutex((started, socketFD))
    }

    /// Wakes every queue thread, waits for it to finish and closes the tunnel's socket. Idempotent.
    public func stop() {
        running.withLock { running in
            for thread in running.threads { thread.stop() }
            running.threads = []
            if running.tunnelSocket >= 0 { close(running.tunnelSocket) }
            running.tunnelSocket = -1
        }
    }

    /// False once stopped, or once it stopped by itself (see `onFailure`).
    public var isRunning: Bool { running.withLock { !$0.threads.isEmpty } && !health.failed.load(ordering: .acquiring) }

    public func counters() -> WorkerCounters {
        WorkerCounters(mode: mode, running: isRunning, queues: loops.map { $0.counters.snapshot(queue: $0.queue) })
    }

    deinit {
        stop()
    }
}

/// A UDP socket bound to `local`, non-blocking, with large buffers: the tunnel's underlay. `gro`: ask the
/// kernel to hand over runs of datagrams from one source as one buffer (UDP_GRO), when it can.
private func openTunnelSocket(_ local: SocketAddress, gro: Bool) throws(KernelError) -> Int32 {
    func failure(_ operation: String, _ code: Int32) -> KernelError {
        KernelError(operation: "\(operation) \(local)", errno: Errno(code))
    }
    let family = local.address.family == .ipv4 ? AF_INET : AF_INET6
    let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { throw failure("socket(UDP)", errno) }
    var size: Int32 = 4 << 20
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
    if gro {
        var on: Int32 = 1
        _ = setsockopt(fd, 17, 104, &on, 4)  // SOL_UDP, UDP_GRO: refused by old kernels, which is fine
    }
    var address = SocketAddressStorage(local)
    let bound = address.withSockaddr { bind(fd, $0, $1) }
    guard bound == 0 else {
        let code = errno
        close(fd)
        throw failure("bind(UDP)", code)
    }
    return fd
}

/// A `sockaddr_in` or `sockaddr_in6` in one fixed-size value, comparable byte for byte with what
/// `recvmmsg` fills in.
struct SocketAddressStorage: Sendable {
    var storage = sockaddr_storage()
    let length: socklen_t

    init(_ address: SocketAddress) {
        switch address.address {
        case .v4(let value):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = address.port.bigEndian
            raw.sin_addr = in_addr(s_addr: value.bigEndian)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            Self.copy(raw, into: &storage)
        case .v6(let bytes):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: bytes) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            Self.copy(raw, into: &storage)
        }
    }

    /// The source's bytes are read only inside its own `withUnsafeBytes`: a pointer that left that
    /// closure would be undefined behaviour, and the optimizer made one into a garbage sockaddr.
    private static func copy<Raw>(_ raw: Raw, into storage: inout sockaddr_storage) {
        withUnsafeBytes(of: raw) { source in
            withUnsafeMutableBytes(of: &storage) { destination in destination.copyMemory(from: source) }
        }
    }

    mutating func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let length = self.length
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    /// True when `other` (as the kernel filled it in) is this address and port.
    func matches(_ other: UnsafeRawPointer, length otherLength: socklen_t) -> Bool {
        guard otherLength == length else { return false }
        return withUnsafeBytes(of: storage) { mine in
            let family = mine.load(as: sa_family_t.self)
            // Port and address only: sin_zero and sin6_flowinfo/scope may differ.
            if family == sa_family_t(AF_INET) { return memcmp(mine.baseAddress! + 2, other + 2, 6) == 0 }
            return memcmp(mine.baseAddress! + 2, other + 2, 2) == 0 && memcmp(mine.baseAddress! + 8, other + 8, 16) == 0
        }
    }
}

/// A worker's failure, shared by its queue threads: the first to fail wakes the others (they all stop)
/// and reports once.
final class WorkerHealth: Sendable {
    let failed = Atomic<Bool>(false)
    private let stop: WakeSignal
    private let report: @Sendable (String) -> Void

    init(stop: WakeSignal, report: @escaping @Sendable (String) -> Void) {
        self.stop = stop
        self.report = report
    }

    func fail(_ reason: String) {
        guard failed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        stop.raise()
        report(reason)
    }
}

/// Recognises the tunnel's own datagrams (from its local port to its remote) among the packets its device
/// hands over: the kernel routed the underlay into the tunnel, and every packet sent would come back
/// to be sent again. Looked at only in tunnel mode, on the header bytes already in cache.
struct OwnDatagram: Sendable {
    let remote: [UInt8]
    let remotePort: UInt16
    let localPort: UInt16
    let remoteDescription: String

    init(_ tunnel: TunnelSpec) {
        remoteDescription = tunnel.remote.description
        remote = tunnel.remote.address.bytes
        remotePort = tunnel.remote.port
        localPort = tunnel.local.port
    }

    func matches(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard let first = packet.first else { return false }
        let udp: Int
        let destination: Int
        switch first >> 4 {
        case 4 where remote.count == 4:
            udp = Int(first & 0x0f) * 4
            guard udp >= 20, packet.count >= udp + 8, packet[9] == 17 else { return false }
            destination = 16
        case 6 where remote.count == 16:
            udp = 40
            guard packet.count >= udp + 8, packet[6] == 17 else { return false }
            destination = 24
        default:
            return false
        }
        for (offset, byte) in remote.enumerated() where packet[destination + offset] != byte { return false }
        let source = UInt16(packet[udp]) << 8 | UInt16(packet[udp + 1])
        let target = UInt16(packet[udp + 2]) << 8 | UInt16(packet[udp + 3])
        return source == localPort && target == remotePort
    }
}

/// The state of one queue's thread.
final class QueueLoop: @unchecked Sendable {
    let queue: Int
    let descriptor: Int32
    let stopSignal: Int32
    let kind: DeviceKind
    let mode: WorkerMode
    let tunnelSocket: Int32
    let peer: SocketAddressStorage?
    let capture: CaptureHub
    /// Every read starts with, and every write needs, a `VirtioNetHeader`.
    let vnetHeader: Bool
    let counters = QueueCounters()
    let health: WorkerHealth
    let ownDatagram: OwnDatagram?
    /// Packets handled per wakeup and per direction before the stop signal is looked at again.
    static let batchLimit = 64
    /// Large enough for any frame: 65535 bytes of MTU plus Ethernet and VLAN headers.
    static let bufferSize = 65536 + 64

    init(queue: Int, descriptor: Int32, stopSignal: Int32, kind: DeviceKind, mode: WorkerMode, tunnelSocket: Int32,
         peer: SocketAddressStorage?, capture: CaptureHub, vnetHeader: Bool,
         health: WorkerHealth, ownDatagram: OwnDatagram?) {
        self.health = health
        self.ownDatagram = ownDatagram
        self.vnetHeader = vnetHeader
        self.queue = queue
        self.descriptor = descriptor
        self.stopSignal = stopSignal
        self.kind = kind
        self.mode = mode
        self.tunnelSocket = tunnelSocket
        self.peer = peer
        self.capture = capture
    }

    func run() {
        // One buffer per batch slot, reused for the life of the thread; pages are touched only when used.
        let slots = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize * Self.batchLimit, alignment: 64)
        defer { slots.deallocate() }
        let batch = MessageBatch(slots: slots, slotSize: Self.bufferSize, count: Self.batchLimit, peer: peer)
        defer { batch.deallocate() }
        let sendQueue = SendQueue(capacity: SendQueue.defaultCapacity, peer: peer, gso: vnetHeader)
        defer { sendQueue.deallocate() }
        let merged = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize + VirtioNetHeader.size, alignment: 64)
        defer { merged.deallocate() }
        let packets = PacketList(capacity: Self.batchLimit * SendQueue.maximumSegments)
        defer { packets.deallocate() }
        var fds = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: stopSignal, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: tunnelSocket, events: Int16(POLLIN), revents: 0)]
        let watched: nfds_t = tunnelSocket >= 0 ? 3 : 2
        var tally = BatchTally()
        var failing = false
        while true {
            // After a read error that is not EAGAIN (device gone, EBADFD), wait on the stop signal with a
            // timeout instead of spinning on a descriptor that stays readable-with-error.
            let ready = failing ? poll(&fds[1], 1, 100) : poll(&fds, watched, -1)
            if ready < 0 && errno != EINTR { tally.readErrors &+= 1 }
            if fds[1].revents != 0 { return }
            failing = false
            if fds[0].revents != 0 { failing = !readDevice(batch, sendQueue, &tally) }
            if watched == 3 && fds[2].revents != 0 { receiveFromPeer(batch, packets, merged, &tally) }
            counters.publish(&tally, at: Timestamp.realtimeNanoseconds())
        }
    }

    /// Reads what the device has ready and does the mode's work with it. False after a hard read error.
    private func readDevice(_ batch: MessageBatch, _ sendQueue: SendQueue, _ tally: inout BatchTally) -> Bool {
        // One relaxed load per wakeup: capture costs nothing while no one captures.
        let capturing = capture.active.load(ordering: .relaxed) > 0
        let prefix = vnetHeader ? VirtioNetHeader.size : 0
        var filled = 0
        var healthy = true
        while filled < Self.batchLimit {
            let slot = batch.slot(filled)
            let count = read(descriptor, slot.baseAddress, slot.count)
            if count <= prefix {
                if count < 0 && errno != EAGAIN && errno != EINTR {
                    tally.readErrors &+= 1
                    healthy = false
                }
                if count < 0 || count == 0 { break }
                tally.dropped &+= 1  // a read shorter than the virtio header
                continue
            }
            let packet = UnsafeMutableRawBufferPointer(rebasing: slot[prefix..<count])
            let kind = PacketClassifier.classify(UnsafeRawBufferPointer(packet), kind: self.kind)
            tally.count(kind, bytes: packet.count)
            if capturing { capture.deliver(UnsafeRawBufferPointer(packet), at: Timestamp.realtimeNanoseconds()) }
            if kind.malformed { continue }
            switch mode {
            case .count:
                continue
            case .echo:
                // With a virtio header, the packet goes back with it (a super-packet stays one).
                writeDevice(UnsafeRawBufferPointer(rebasing: slot[0..<count]), &tally)
            case .responder:
                if let answer = Responder.answer(packet, length: packet.count, kind: self.kind) {
                    if prefix > 0 { slot.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: prefix) }
                    writeDevice(UnsafeRawBufferPointer(rebasing: slot[0..<(prefix + answer)]), &tally)
                } else {
                    tally.ignored &+= 1
                }
            case .tunnel:
                if let ownDatagram, ownDatagram.matches(UnsafeRawBufferPointer(packet)) {
                    health.fail("routing loop: the tunnel's own datagram to \(ownDatagram.remoteDescription) came back through its device; stopped instead of spinning (route the remote through another interface, then PATCH the worker to restart it)")
                    tally.dropped &+= 1
                    return false
                }
                if prefix > 0 {
                    let header = VirtioNetHeader(slot.baseAddress!)
                    var accepted = segmentIntoQueue(packet, header, sendQueue)
                    if !accepted && sendQueue.used > 0 {
                        // Too many segments for the room left (a small MSS): send what is queued, try again.
                        sendQueue.flush(tunnelSocket, &tally)
                        accepted = segmentIntoQueue(packet, header, sendQueue)
                    }
                    if !accepted { tally.dropped &+= 1 }
                } else {
                    sendQueue.append(nil, OutgoingPiece(base: packet.baseAddress!, count: packet.count))
                }
                filled += 1
                // The queue points into the read buffers: send before they are reused or the queue fills.
                if sendQueue.freeSlots < SendQueue.reserve || filled == Self.batchLimit { sendQueue.flush(tunnelSocket, &tally) }
            }
        }
        sendQueue.flush(tunnelSocket, &tally)
        return healthy
    }

    /// Queues a packet read with a virtio header as the datagrams it becomes; false when it is malformed
    /// or needs more segments than the queue has room for.
    private func segmentIntoQueue(_ packet: UnsafeMutableRawBufferPointer, _ header: VirtioNetHeader, _ sendQueue: SendQueue) -> Bool {
        var first = true
        return Offload.segment(packet.baseAddress!, length: packet.count, header: header,
                               arena: sendQueue.nextHeaderSlot, arenaSlots: sendQueue.freeSlots) { header, payload in
            sendQueue.append(header, payload, group: !first)
            first = false
        }
    }

    @inline(__always)
    private func writeDevice(_ packet: UnsafeRawBufferPointer, _ tally: inout BatchTally) {
        let payload = packet.count - (vnetHeader ? VirtioNetHeader.size : 0)
        if write(descriptor, packet.baseAddress, packet.count) == packet.count {
            tally.packetsWritten &+= 1
            tally.bytesWritten &+= UInt64(payload)
        } else {
            tally.writeErrors &+= 1
        }
    }

    /// `recvmmsg` of what the peer sent; each datagram from the peer is written into the device. With
    /// offloads, a message may hold a run of datagrams the kernel merged (UDP GRO, cut apart here by its
    /// segment size), and consecutive segments of one TCP flow are merged into a super-packet before they
    /// are written (GRO towards the device), so the kernel takes a whole window in one write.
    private func receiveFromPeer(_ batch: MessageBatch, _ packets: PacketList, _ merged: UnsafeMutableRawPointer, _ tally: inout BatchTally) {
        let prefix = vnetHeader ? VirtioNetHeader.size : 0
        for _ in 0..<4 {
            batch.prepareReceive(reserving: prefix, control: vnetHeader)
            let received = tund_recvmmsg(tunnelSocket, batch.headers, UInt32(Self.batchLimit), Int32(MSG_DONTWAIT))
            if received <= 0 {
                if received < 0 && errno != EAGAIN && errno != EINTR { tally.peerReceiveErrors &+= 1 }
                return
            }
            packets.count = 0
            for index in 0..<Int(received) {
                let length = Int(batch.headers[index].msg_len)
                guard let peer, peer.matches(batch.addresses + index, length: batch.headers[index].msg_hdr.msg_namelen) else {
                    tally.unexpectedSource &+= 1
                    continue
                }
                let segmentSize = batch.groSegmentSize(index) ?? length
                let start = batch.slot(index).baseAddress! + prefix
                var offset = 0
                while offset < length, packets.count < packets.capacity {
                    let size = min(segmentSize, length - offset)
                    packets.append(start + offset, size)
                    tally.peerPacketsReceived &+= 1
                    tally.peerBytesReceived &+= UInt64(size)
                    offset += max(size, 1)
                }
            }
            if vnetHeader {
                writeMerged(packets, merged, &tally)
            } else {
                for index in 0..<packets.count {
                    writeDevice(UnsafeRawBufferPointer(start: packets.pointers[index], count: packets.lengths[index]), &tally)
                }
            }
            if received < Self.batchLimit { return }
        }
    }

    /// Writes `packets` into a device with a virtio header, merging runs of one TCP flow into super-packets.
    private func writeMerged(_ packets: PacketList, _ merged: UnsafeMutableRawPointer, _ tally: inout BatchTally) {
        let prefix = VirtioNetHeader.size
        var position = 0
        while position < packets.count {
            let packet = packets.pointers[position]
            let length = packets.lengths[position]
            guard let first = Offload.TCPSegment(packet, length: length) else {
                writeWithEmptyHeader(packet, length, &tally)
                position += 1
                continue
            }
            var total = length
            var next = first.sequence &+ UInt32(first.payloadLength)
            var last = position
            var push = first.flags & 0x08 != 0
            var segments = 1
            var previousLength = first.payloadLength
            // Merge while the next segment continues the flow, the earlier ones were full-sized, and it fits.
            while !push, last + 1 < packets.count, previousLength == first.payloadLength {
                let candidate = packets.pointers[last + 1]
                let candidateLength = packets.lengths[last + 1]
                guard let segment = Offload.TCPSegment(candidate, length: candidateLength), segment.sequence == next,
                      segment.payloadLength <= first.payloadLength, total + segment.payloadLength <= 65535,
                      segment.continues(first, packet, candidate) else { break }
                if segments == 1 { (merged + prefix).copyMemory(from: packet, byteCount: length) }
                (merged + prefix + total).copyMemory(from: candidate + segment.headerLength, byteCount: segment.payloadLength)
                total += segment.payloadLength
                next = next &+ UInt32(segment.payloadLength)
                push = segment.flags & 0x08 != 0
                previousLength = segment.payloadLength
                segments += 1
                last += 1
            }
            if segments == 1 {
                writeWithEmptyHeader(packet, length, &tally)
            } else {
                Offload.finishMerged(merged, length: total, first: first, segmentSize: first.payloadLength, push: push)
                writeDevice(UnsafeRawBufferPointer(start: merged, count: prefix + total), &tally)
            }
            position = last + 1
        }
    }

    /// One packet with an all-zero virtio header (no offload asked), in one `writev`.
    private func writeWithEmptyHeader(_ packet: UnsafeMutableRawPointer, _ length: Int, _ tally: inout BatchTally) {
        var empty: (UInt64, UInt16) = (0, 0)
        let written = withUnsafeMutableBytes(of: &empty) { header in
            var pieces = [iovec(iov_base: header.baseAddress, iov_len: VirtioNetHeader.size), iovec(iov_base: packet, iov_len: length)]
            return writev(descriptor, &pieces, 2)
        }
        if written == VirtioNetHeader.size + length {
            tally.packetsWritten &+= 1
            tally.bytesWritten &+= UInt64(length)
        } else {
            tally.writeErrors &+= 1
        }
    }

}

/// The `mmsghdr`/`iovec`/address arrays for `sendmmsg` and `recvmmsg` over a thread's buffer slots,
/// built once.
struct MessageBatch {
    let slots: UnsafeMutableRawBufferPointer
    let slotSize: Int
    let count: Int
    let headers: UnsafeMutablePointer<tund_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    /// Where `recvmmsg` writes each datagram's source.
    let addresses: UnsafeMutablePointer<sockaddr_storage>
    /// Room for each message's UDP_GRO control message (`CMSG_SPACE(sizeof(int))`).
    let controls: UnsafeMutableRawPointer
    static let controlSpace = 24

    init(slots: UnsafeMutableRawBufferPointer, slotSize: Int, count: Int, peer: SocketAddressStorage?) {
        self.slots = slots
        self.slotSize = slotSize
        self.count = count
        headers = .allocate(capacity: count)
        vectors = .allocate(capacity: count)
        addresses = .allocate(capacity: count)
        controls = .allocate(byteCount: count * Self.controlSpace, alignment: 8)
        headers.initialize(repeating: tund_mmsghdr(), count: count)
        addresses.initialize(repeating: sockaddr_storage(), count: count)
        for index in 0..<count {
            vectors[index] = iovec(iov_base: slots.baseAddress! + index * slotSize, iov_len: slotSize)
        }
    }

    func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: slots[(index * slotSize)..<((index + 1) * slotSize)])
    }

    /// Points every header at its slot (after `reserving` bytes kept free for a virtio header) and at its
    /// own address buffer.
    func prepareReceive(reserving: Int = 0, control: Bool = false) {
        for index in 0..<count {
            vectors[index].iov_base = slots.baseAddress! + index * slotSize + reserving
            vectors[index].iov_len = slotSize - reserving
            headers[index].msg_hdr = msghdr(msg_name: UnsafeMutableRawPointer(addresses + index),
                                            msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                                            msg_iov: vectors + index, msg_iovlen: 1,
                                            msg_control: control ? controls + index * Self.controlSpace : nil,
                                            msg_controllen: control ? Self.controlSpace : 0, msg_flags: 0)
            headers[index].msg_len = 0
        }
    }

    /// The segment size of a message the kernel merged (a UDP_GRO control message), or nil.
    func groSegmentSize(_ index: Int) -> Int? {
        guard headers[index].msg_hdr.msg_controllen >= 20 else { return nil }
        let control = controls + index * Self.controlSpace
        guard control.load(fromByteOffset: 8, as: Int32.self) == 17, control.load(fromByteOffset: 12, as: Int32.self) == 104 else { return nil }
        let size = Int(control.load(fromByteOffset: 16, as: Int32.self))
        return size > 0 ? size : nil
    }

    func deallocate() {
        headers.deallocate()
        vectors.deallocate()
        addresses.deallocate()
        controls.deallocate()
    }
}

/// The packets of one receive batch, by pointer and length, in fixed storage.
final class PacketList {
    let capacity: Int
    let pointers: UnsafeMutablePointer<UnsafeMutableRawPointer>
    let lengths: UnsafeMutablePointer<Int>
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        pointers = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
    }

    func append(_ pointer: UnsafeMutableRawPointer, _ length: Int) {
        pointers[count] = pointer
        lengths[count] = length
        count += 1
    }

    func deallocate() {
        pointers.deallocate()
        lengths.deallocate()
    }
}

/// Datagrams waiting for one `sendmmsg` to the peer. Each datagram is up to two pieces (a rebuilt header
/// in `headerArena`, then payload where it was read). With UDP GSO on, the segments of one super-packet
/// (all the same size but the last) travel as one message with a UDP_SEGMENT control message, and the
/// kernel cuts them apart: one trip through the UDP stack for up to 64 datagrams. Built once per thread.
final class SendQueue {
    static let defaultCapacity = 512
    /// Room kept for the segments of one more super-packet (an MSS of 1000+ gives under 64).
    static let reserve = 64
    /// What one GSO message may carry (the kernel's UDP_MAX_SEGMENTS and the 64 KiB of an skb).
    static let maximumSegments = 64, maximumGroupBytes = 60 * 1024
    /// `CMSG_SPACE(sizeof(uint16_t))` and `CMSG_LEN(sizeof(uint16_t))` on 64-bit Linux.
    static let controlSpace = 24, controlLength = 18

    let capacity: Int
    let headers: UnsafeMutablePointer<tund_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    let headerArena: UnsafeMutableRawPointer
    let controls: UnsafeMutableRawPointer
    /// Datagrams in each message (1 without GSO).
    let segmentCounts: UnsafeMutablePointer<Int>
    let peerAddress: UnsafeMutablePointer<sockaddr_storage>
    let peerLength: socklen_t
    /// Group segments into GSO messages; switched off for good when the kernel refuses UDP_SEGMENT.
    var gso: Bool
    private(set) var used = 0
    private var vectorsUsed = 0
    private var segmentsUsed = 0
    /// The message still open for more segments of the same super-packet, with its segment size.
    private var openGroup: (message: Int, datagramSize: Int, bytes: Int)?

    init(capacity: Int, peer: SocketAddressStorage?, gso: Bool) {
        self.capacity = capacity
        self.gso = gso
        headers = .allocate(capacity: capacity)
        headers.initialize(repeating: tund_mmsghdr(), count: capacity)
        vectors = .allocate(capacity: capacity * 2)
        vectors.initialize(repeating: iovec(), count: capacity * 2)
        headerArena = .allocate(byteCount: capacity * Offload.maximumHeader, alignment: 64)
        controls = .allocate(byteCount: capacity * Self.controlSpace, alignment: 8)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * Self.controlSpace)
        segmentCounts = .allocate(capacity: capacity)
        segmentCounts.initialize(repeating: 0, count: capacity)
        peerAddress = .allocate(capacity: 1)
        peerAddress.initialize(to: peer?.storage ?? sockaddr_storage())
        peerLength = peer?.length ?? 0
    }

    /// Header slots left in the arena (the next `Offload.segment` writes from the first free one).
    var freeSlots: Int { capacity - segmentsUsed }

    /// Where the next datagram's rebuilt header goes.
    var nextHeaderSlot: UnsafeMutableRawPointer { headerArena + segmentsUsed * Offload.maximumHeader }

    /// Queues one datagram. `group`: it belongs to the same super-packet as the datagram queued before it,
    /// so with GSO it may join that datagram's message.
    func append(_ header: OutgoingPiece?, _ payload: OutgoingPiece, group: Bool = false) {
        precondition(segmentsUsed < capacity)
        let size = (header?.count ?? 0) + payload.count
        if let header { vectors[vectorsUsed] = iovec(iov_base: header.base, iov_len: header.count); vectorsUsed += 1 }
        vectors[vectorsUsed] = iovec(iov_base: payload.base, iov_len: payload.count)
        vectorsUsed += 1
        segmentsUsed += 1
        let pieces = header == nil ? 1 : 2
        // Join the open message: same super-packet, not past its limits, and no datagram larger than the
        // first (only the last may be shorter, and once one is, the group is closed).
        if gso, group, let open = openGroup, size <= open.datagramSize, segmentCounts[open.message] < Self.maximumSegments,
           open.bytes + size <= Self.maximumGroupBytes {
            headers[open.message].msg_hdr.msg_iovlen += pieces
            segmentCounts[open.message] += 1
            let control = controls + open.message * Self.controlSpace
            headers[open.message].msg_hdr.msg_control = control
            headers[open.message].msg_hdr.msg_controllen = Self.controlSpace
            control.storeBytes(of: Self.controlLength, as: Int.self)                  // cmsg_len
            control.storeBytes(of: Int32(17), toByteOffset: 8, as: Int32.self)          // SOL_UDP
            control.storeBytes(of: Int32(103), toByteOffset: 12, as: Int32.self)        // UDP_SEGMENT
            control.storeBytes(of: UInt16(open.datagramSize), toByteOffset: 16, as: UInt16.self)
            openGroup = size == open.datagramSize ? (open.message, open.datagramSize, open.bytes + size) : nil
            return
        }
        headers[used].msg_hdr = msghdr(msg_name: UnsafeMutableRawPointer(peerAddress), msg_namelen: peerLength,
                                       msg_iov: vectors + vectorsUsed - pieces, msg_iovlen: pieces,
                                       msg_control: nil, msg_controllen: 0, msg_flags: 0)
        headers[used].msg_len = 0
        segmentCounts[used] = 1
        openGroup = gso ? (used, size, size) : nil
        used += 1
    }

    /// `sendmmsg` of everything queued, retrying what the socket did not take at once; then empty.
    func flush(_ socket: Int32, _ tally: inout BatchTally) {
        var sent = 0
        while sent < used {
            let result = tund_sendmmsg(socket, headers + sent, UInt32(used - sent), 0)
            if result < 0 {
                if errno == EINTR { continue }
                // EIO or EINVAL for a GSO message: this path cannot segment UDP (no checksum offload on the
                // way out, or an old kernel). Send datagram by datagram from now on.
                if gso && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP) && segmentCounts[sent] > 1 { gso = false }
                // EAGAIN (buffer full), ENETUNREACH, EPERM...: these packets are lost, as on a real link.
                for index in sent..<used { tally.peerSendErrors &+= UInt64(segmentCounts[index]) }
                break
            }
            for index in sent..<(sent + Int(result)) {
                tally.peerPacketsSent &+= UInt64(segmentCounts[index])
                tally.peerBytesSent &+= UInt64(headers[index].msg_len)
            }
            sent += Int(result)
        }
        used = 0
        vectorsUsed = 0
        segmentsUsed = 0
        openGroup = nil
    }

    func deallocate() {
        headers.deallocate()
        vectors.deallocate()
        headerArena.deallocate()
        controls.deallocate()
        segmentCounts.deallocate()
        peerAddress.deallocate()
    }
}

/// pthread entry point; a free function so no actor isolation leaks into a foreign thread.
