#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Notices clients that leave a streamed response (events, capture) while the stream has nothing to
/// send. Such a connection is suspended, out of libmicrohttpd's loop, so nobody would see the client go
/// until the stream next writes: an abandoned capture would hold its connection slot until its timeout.
/// One thread polls the streams' sockets for the peer's hang-up (POLLRDHUP; POLLIN is not asked for, so
/// a client that sends more does not wake it) and ends each stream whose client left.
final class HangupWatcher: Sendable {
    private let watched = Mutex<[Int32: HTTPStream]>([:])
    /// Writing its end makes the thread take the new set of sockets, or stop.
    private let wake: (read: Int32, write: Int32)
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)
    static let peerHangup = Int16(0x2000)  // POLLRDHUP (Linux)

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                _ = fcntl(end, F_SETFL, O_NONBLOCK)
            }
        } else {
            ends = [-1, -1]  // no watching then: streams end when they next write, as before
        }
        wake = (ends[0], ends[1])
    }

    /// Watches `fd` for `stream` until the stream closes.
    func watch(_ fd: Int32, _ stream: HTTPStream) {
        guard fd >= 0, wake.read >= 0 else { return }
        watched.withLock { $0[fd] = stream }
        stream.onClose { [self] in
            watched.withLock { if $0[fd] === stream { $0[fd] = nil } }
        }
        startIfNeeded()
        poke()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        poke()
        if let running = thread.withLock({ thread in defer { thread = nil }; return thread }) { pthread_join(running, nil) }
    }

    private func poke() {
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)
    }

    private func startIfNeeded() {
        thread.withLock { thread in
            guard thread == nil, !stopping.load(ordering: .acquiring) else { return }
            var created = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            if pthread_create(&created, nil, runHangupWatcher, context) == 0 {
                thread = created
            } else {
                Unmanaged<HangupWatcher>.fromOpaque(context).release()
            }
        }
    }

    fileprivate func run() {
        var drain = [UInt8](repeating: 0, count: 64)
        while !stopping.load(ordering: .acquiring) {
            let streams = watched.withLock { $0 }
            var fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
                + streams.keys.map { pollfd(fd: $0, events: Self.peerHangup, revents: 0) }
            guard poll(&fds, nfds_t(fds.count), -1) > 0 else { continue }
            if fds[0].revents != 0 { while read(wake.read, &drain, drain.count) > 0 {} }
            for entry in fds.dropFirst() where entry.revents != 0 {
                watched.withLock { $0[entry.fd] = nil }
                streams[entry.fd]?.clientLeft()
            }
        }
    }

    deinit {
        if wake.read >= 0 {
            close(wake.read)
            close(wake.write)
        }
    }
}

private func runHangupWatcher(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<HangupWatcher>.fromOpaque(context!).takeRetainedValue().run()
    return nil
}
