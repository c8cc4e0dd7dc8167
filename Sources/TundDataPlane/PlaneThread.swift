#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import CBatchIO
import Dispatch
import Errno
import Synchronization
import CryptoCrew

/// One data-plane thread: an epoll loop over the queue descriptors (and tunnel sockets) assigned to it.
/// Each ready descriptor gets one bounded batch, then the next ready one has its turn, so a flooded
/// device cannot starve the others on its thread. Adding and removing descriptors never pauses the loop
/// for the others; `remove` returns only once the descriptor is out of the loop.
final class PlaneThread: Sendable {
    enum Role: Sendable { case device, socket, timer }

    private struct Registration: @unchecked Sendable {
        let processor: QueueProcessor
        let role: Role
        let descriptor: Int32
    }

    private let epoll: Int32
    private let registrations = Mutex<[UInt64: Registration]>([:])
    private let nextToken = Atomic<UInt64>(1)
    /// Callers waiting for the loop to finish the round it is in (see `remove`).
    private let barriers = Mutex<[DispatchSemaphore]>([])
    private let thread: Mutex<BackgroundThread?>
    /// Descriptors served: where the next device's queues go.
    let load = Atomic<Int>(0)
    static let wakeToken: UInt64 = 0

    /// Its place in the crypto crew: it takes chunks of other threads' AEAD work when it would sleep.
    private let member: CrewMember

    init(index: Int, member: CrewMember) throws(Errno) {
        self.member = member
        epoll = tund_epoll_create()
        guard epoll >= 0 else { throw Errno.current }
        thread = Mutex(nil)
        do throws(Errno) {
            let started = try BackgroundThread(name: "tund:plane/\(index)") { [self] thread in run(thread) }
            guard tund_epoll_add(epoll, started.wake.descriptor, Self.wakeToken) == 0 else {
                let failure = Errno.current
                started.stop()
                throw failure
            }
            thread.withLock { $0 = started }
            member.wake = { [weak started] in started?.wakeUp() }
        } catch {
            close(epoll)
            throw error
        }
    }

    /// Adds `descriptor` to the loop; returns its token for `remove`.
    func add(_ descriptor: Int32, _ processor: QueueProcessor, _ role: Role) throws(Errno) -> UInt64 {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        registrations.withLock { $0[token] = Registration(processor: processor, role: role, descriptor: descriptor) }
        guard tund_epoll_add(epoll, descriptor, token) == 0 else {
            let failure = Errno.current
            registrations.withLock { _ = $0.removeValue(forKey: token) }
            throw failure
        }
        load.add(1, ordering: .relaxed)
        return token
    }

    /// Takes the descriptor out of the loop and waits until the loop has finished any batch it was
    /// working on for it: when this returns, the thread no longer touches the descriptor or its processor.
    func remove(_ token: UInt64) {
        guard forget(token), let running = thread.withLock({ $0 }) else { return }  // no loop: nothing to wait for
        let done = DispatchSemaphore(value: 0)
        barriers.withLock { $0.append(done) }
        running.wakeUp()
        done.wait()
    }

    /// Out of the epoll set and the table; false when it was not there (already removed).
    private func forget(_ token: UInt64) -> Bool {
        guard let registration = registrations.withLock({ $0.removeValue(forKey: token) }) else { return false }
        _ = tund_epoll_remove(epoll, registration.descriptor)
        load.subtract(1, ordering: .relaxed)
        return true
    }

    func stop() {
        thread.withLock { thread in defer { thread = nil }; return thread }?.stop()
        for waiting in barriers.withLock({ barriers in defer { barriers = [] }; return barriers }) { waiting.signal() }
    }

    private func run(_ thread: BackgroundThread) {
        let crewed = member.crew.shares
        // A thread that shares no crypto has no board: its batches seal and open in place, one by one.
        let scratch = Scratch(member: crewed ? member : nil)
        let tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        defer { tokens.deallocate() }
        // Set when help() stopped at its budget with work still coming: look at our own descriptors
        // without sleeping (and without leaving the crew), then help again.
        var stillHelping = false
        while !thread.isStopping {
            let sleeps = crewed && !stillHelping
            if sleeps { member.willSleep() }
            let ready = tund_epoll_wait(epoll, tokens, 64, stillHelping ? 0 : -1)
            if sleeps { member.wokeUp() }
            if ready < 0 && errno != EINTR { break }
            for index in 0..<max(0, Int(ready)) {
                let token = tokens[index]
                if token == Self.wakeToken {
                    thread.wake.drain()
                    continue
                }
                guard let registration = registrations.withLock({ $0[token] }) else { continue }
                let outcome = switch registration.role {
                case .device: registration.processor.deviceReady(scratch)
                case .socket: registration.processor.socketReady(scratch)
                case .timer: registration.processor.timerReady(scratch)
                }
                if outcome == .remove { _ = forget(token) }
            }
            // What other threads posted (a post's wakeup comes here too), after this round's own batches.
            if crewed && (stillHelping || member.crew.hasOpenWork) { stillHelping = member.help() }
            // Every batch of this round is done: whoever removed a descriptor may go on.
            for waiting in barriers.withLock({ barriers in defer { barriers = [] }; return barriers }) { waiting.signal() }
        }
    }

    deinit {
        stop()
        close(epoll)
    }
}
