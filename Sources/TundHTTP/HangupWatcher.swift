#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import Synchronization

/// Notices clients that leave a streamed response (events, capture) while the stream has nothing to
/// send. Such a connection is suspended, out of libmicrohttpd's loop, so nobody would see the client go
/// until the stream next writes: an abandoned capture would hold its connection slot until its timeout.
/// One thread polls the streams' sockets for the peer's hang-up (POLLRDHUP; POLLIN is not asked for, so
/// a client that sends more does not wake it) and ends each stream whose client left.
final class HangupWatcher: Sendable {
    private struct State {
        var watched: [Int32: HTTPStream] = [:]
        var thread: BackgroundThread?
        var stopped = false
    }

    private let state = Mutex(State())
    static let peerHangup = Int16(0x2000)  // POLLRDHUP (Linux)

    /// Watches `fd` for `stream` until the stream closes. Without a thread (none could start) streams
    /// still end, when they next write.
    func watch(_ fd: Int32, _ stream: HTTPStream) {
        guard fd >= 0 else { return }
        let thread = state.withLock { state -> BackgroundThread? in
            guard !state.stopped else { return nil }
            state.watched[fd] = stream
            if state.thread == nil {
                state.thread = try? BackgroundThread(name: "tund:hangups") { [self] thread in run(thread) }
            }
            return state.thread
        }
        stream.onClose { [self] in
            state.withLock { if $0.watched[fd] === stream { $0.watched[fd] = nil } }
        }
        thread?.wakeUp()
    }

    func stop() {
        state.withLock { state in
            defer { state.thread = nil; state.stopped = true }
            return state.thread
        }?.stop()
    }

    private func run(_ thread: BackgroundThread) {
        while !thread.isStopping {
            let streams = state.withLock { $0.watched }
            let descriptors = Array(streams.keys)
            guard let (events, woken) = thread.waitFor(descriptors.map { ($0, Self.peerHangup) }) else { continue }
            if woken { thread.wake.drain() }
            for (fd, revents) in zip(descriptors, events) where revents != 0 {
                state.withLock { if $0.watched[fd] === streams[fd] { $0.watched[fd] = nil } }
                streams[fd]?.clientLeft()
            }
        }
    }
}
