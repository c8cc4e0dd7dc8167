#if canImport(Glibc)
import Glibc
#endif
import Errno
import NetAddress
import Synchronization
import CryptoCrew

/// The data plane: a fixed pool of threads, each an epoll loop, serving every device's queues. A device
/// costs descriptors, counters and (for a tunnel) a send queue, not a thread: its queues spread over the
/// pool, the least busy threads first.
public final class DataPlane: Sendable {
    private let threads: [PlaneThread]
    /// The threads again, as a crew sharing WireGuard's sealing and opening.
    private let crew: CryptoCrew

    /// One per CPU.
    public static var defaultThreadCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// With 4 CPUs or more. On 2 (measured: Benchmarks/README.md, "crypto-crew.sh") the applications at
    /// either end of a tunnel already keep both busy, and a helper's spinning costs them more than it gains.
    public static var spreadsCryptoByDefault: Bool { defaultThreadCount >= 4 }

    /// `spreadCrypto`: whether a wireguard batch's sealing and opening is shared among the threads
    /// (`CryptoCrew`), or stays on the device's own thread.
    public init(threads count: Int = DataPlane.defaultThreadCount, spreadCrypto: Bool = DataPlane.spreadsCryptoByDefault) throws(PlaneError) {
        crew = CryptoCrew(threads: max(1, count), spreads: spreadCrypto)
        var started: [PlaneThread] = []
        for index in 0..<max(1, count) {
            do {
                started.append(try PlaneThread(index: index, member: crew.members[index]))
            } catch {
                started.forEach { $0.stop() }
                throw PlaneError(operation: "starting data-plane thread \(index)", errno: error)
            }
        }
        threads = started
    }

    public var threadCount: Int { threads.count }
    public var spreadsCrypto: Bool { crew.shares }

    /// Starts a device's worker: binds a tunnel's socket, then puts every queue (and the socket) into the
    /// loops. Fails with nothing left running.
    public func start(_ spec: WorkerSpec) throws(PlaneError) -> PlaneWorker {
        let health = WorkerHealth(report: spec.onFailure)
        let counters = spec.descriptors.map { _ in QueueCounters() }
        var socket: Int32 = -1
        var receiver: (any DatagramReceiver)?
        var modes: [any PacketMode] = []
        var wireGuard: WireGuardEngine?
        switch spec.mode {
        case .count: modes = spec.descriptors.map { _ in CountMode() }
        case .echo: modes = spec.descriptors.map { _ in EchoMode() }
        case .responder: modes = spec.descriptors.map { _ in ResponderMode(kind: spec.kind) }
        case .tunnel(let local, let remote):
            socket = try openTunnelSocket(local, gro: spec.vnetHeader)
            let peer = SocketAddressStorage(remote)
            receiver = TunnelReceiver(socket: socket, peer: peer, vnetHeader: spec.vnetHeader)
            modes = spec.descriptors.map { [socket] _ in TunnelMode(socket: socket, local: local, remote: remote, peer: peer, gso: spec.vnetHeader) }
        case .wireguard(let config):
            // WireGuard carries IP packets: no Ethernet frames. With a virtio header, super-packets are cut
            // into datagrams on the way out and merged again on the way in.
            guard spec.kind == .tun else {
                throw PlaneError(operation: "starting wireguard on \(spec.name) (tun devices only)", errno: Errno(EINVAL))
            }
            let engine = try WireGuardEngine(config, offloads: spec.vnetHeader, crewSlots: crew.shares ? crew.members.count : 0,
                                             onPeerEvent: spec.onPeerEvent)
            wireGuard = engine
            receiver = WireGuardReceiver(engine: engine)
            modes = spec.descriptors.map { _ in WireGuardMode(engine: engine) }
        }
        let processors = spec.descriptors.enumerated().map { queue, descriptor in
            QueueProcessor(queue: queue, device: QueueDescriptor(descriptor), kind: spec.kind, vnetHeader: spec.vnetHeader,
                           mode: modes[queue], counters: counters[queue], tap: spec.tap,
                           receiver: queue == 0 ? receiver : nil, health: health)
        }
        let worker = PlaneWorker(name: spec.name, counters: counters, socket: socket, health: health,
                                 wireGuard: wireGuard.map { WireGuardControl(engine: $0) })
        // The least busy thread takes queue 0 (and the socket, so queue 0's counters have one writer);
        // the next queues go to the threads after it.
        let first = threads.indices.min { threads[$0].load.load(ordering: .relaxed) < threads[$1].load.load(ordering: .relaxed) } ?? 0
        do throws(Errno) {
            for (queue, processor) in processors.enumerated() {
                // A wireguard worker's queues share one thread: its peers, keypairs and counters have
                // one owner, and the lock they sit behind is never contended by the worker itself.
                let thread = threads[wireGuard == nil ? (first + queue) % threads.count : first]
                worker.registered(thread, try thread.add(spec.descriptors[queue], processor, .device))
            }
            if socket >= 0 {
                let thread = threads[first]
                worker.registered(thread, try thread.add(socket, processors[0], .socket))
            }
            if let wireGuard {
                let thread = threads[first]
                worker.registered(thread, try thread.add(wireGuard.socket.descriptor, processors[0], .socket))
                worker.registered(thread, try thread.add(wireGuard.timer, processors[0], .timer))
            }
        } catch {
            worker.stop()
            throw PlaneError(operation: "adding \(spec.name) to the data plane (epoll_ctl)", errno: error)
        }
        return worker
    }

    /// Stops every thread; call after every worker is stopped.
    public func shutdown() {
        threads.forEach { $0.stop() }
    }
}

/// A failed system call of the data plane: which, and its errno.
public struct PlaneError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno

    public init(operation: String, errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation) failed with \(errno.name)" }
}
