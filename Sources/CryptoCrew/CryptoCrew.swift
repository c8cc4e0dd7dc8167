#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import Dispatch
import Errno
import Synchronization
import WireGuardCrypto

/// Where a job finds its cipher: one context per direction per thread slot, since an OpenSSL context
/// holds per-message state and is not thread-safe (WireGuard's keypair is one).
public protocol CipherSlots: AnyObject {
    /// The cipher for one direction: thread `slot`'s own, or with no slot the one the caller's lock
    /// guards. Nil only if OpenSSL could not make a context.
    func cipher(sealing: Bool, slot: Int?) -> ChaChaPoly?
}

/// One AEAD operation of a batch, in place: seal `count` bytes (padding included; the tag goes after
/// them) or open `count` bytes (the tag included), WireGuard's nonce from `counter`.
public struct CryptoJob {
    public var body: UnsafeMutableRawPointer
    public var count: Int
    public var counter: UInt64
    public var ciphers: any CipherSlots
    public var sealing: Bool
    /// After the job: the sealed size, or the plaintext size; `failed` when the cipher refused (a seal's
    /// bytes are then wiped, an open's too: neither plaintext nor unauthenticated bytes are left), or
    /// `noCipher` when the thread had no cipher context (bytes untouched: run it again with another).
    public var result: Int = CryptoJob.noCipher
    public static let failed = -1, noCipher = -2
    /// Who sent an opened message (a `sockaddr` in the receive batch), for the receiver to use after.
    public var source: UnsafeRawPointer?
    public var sourceLength: socklen_t

    public init(body: UnsafeMutableRawPointer, count: Int, counter: UInt64, ciphers: any CipherSlots, sealing: Bool,
                source: UnsafeRawPointer? = nil, sourceLength: socklen_t = 0) {
        self.body = body
        self.count = count
        self.counter = counter
        self.ciphers = ciphers
        self.sealing = sealing
        self.source = source
        self.sourceLength = sourceLength
    }

    /// Runs with thread `slot`'s cipher contexts, or with none the main ones.
    public mutating func run(slot: Int?) {
        guard let cipher = ciphers.cipher(sealing: sealing, slot: slot) else {
            result = Self.noCipher
            return
        }
        let buffer = UnsafeMutableRawBufferPointer(start: body, count: count + (sealing ? ChaChaPoly.tagCount : 0))
        do {
            result = sealing ? try cipher.seal(inPlace: buffer, plaintextCount: count, counter: counter)
                             : try cipher.open(inPlace: buffer, ciphertextCount: count, counter: counter)
        } catch {
            wipeSeal()
            result = Self.failed
        }
    }

    /// A seal that failed leaves zeros where the plaintext and tag were, never the plaintext.
    private func wipeSeal() {
        if sealing { UnsafeMutableRawBufferPointer(start: body, count: count + ChaChaPoly.tagCount).initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// The job run again with the main cipher (the caller holds the lock that guards it) when its
    /// thread had no context of its own; if that fails too, a seal's bytes are wiped.
    public mutating func retryWithoutSlot() {
        guard result == Self.noCipher else { return }
        run(slot: nil)
        if result == Self.noCipher {
            wipeSeal()
            result = Self.failed
        }
    }
}

/// The AEAD work one data-plane thread gathered from a batch (every seal before a `sendmmsg`, every open
/// of a `recvmmsg`), posted so that idle data-plane threads take chunks of it while the thread that
/// gathered it works through the rest: one WireGuard device is no longer bound to one core's crypto.
///
/// Every other step of the batch (counters, the replay window, timers, routing) stays on the device's
/// own thread, in order, under its lock; only sealing and opening in place, which touch nothing but the
/// job's bytes and a cipher context of the thread running it, are shared. A chunk is claimed with a
/// compare-and-swap on `state`, so a job runs exactly once, whoever gets it.
public final class CryptoBoard: @unchecked Sendable {
    /// The most jobs gathered before they must run (a full send queue; a receive runs them early).
    public static let capacity = 1024
    /// Jobs per chunk: about 11 KB of full-sized packets, long enough to be worth a claim.
    static let chunkJobs = 8
    /// Below this many bytes a batch is sealed or opened on its own thread: waking a helper costs more.
    static let spreadBytes = 24 * 1024

    public let jobs: UnsafeMutablePointer<CryptoJob>
    /// Gathered so far (only the owner writes it, before posting).
    public private(set) var count = 0
    fileprivate var bytes = 0
    /// `chunks << 32 | next`: chunks posted and the next one to claim (next >= chunks: nothing to take).
    let state = Atomic<UInt64>(0)
    /// Chunks done; whoever completes the last one while the owner waits signals `done`.
    let finished = Atomic<Int>(0)
    let done = DispatchSemaphore(value: 0)

    init() {
        jobs = .allocate(capacity: Self.capacity)
    }

    deinit {
        jobs.deallocate()
    }

    public var isFull: Bool { count == Self.capacity }

    /// Adds a job for `ciphers`, which it keeps alive until `clear`.
    public func append(_ body: UnsafeMutableRawPointer, count: Int, counter: UInt64, ciphers: any CipherSlots, sealing: Bool,
                       source: UnsafeRawPointer? = nil, sourceLength: socklen_t = 0) {
        (jobs + self.count).initialize(to: CryptoJob(body: body, count: count, counter: counter, ciphers: ciphers,
                                                     sealing: sealing, source: source, sourceLength: sourceLength))
        self.count += 1
        bytes += count
    }

    /// Forgets every job (after their results were read).
    public func clear() {
        jobs.deinitialize(count: count)
        count = 0
        bytes = 0
    }

    /// Whether a chunk is posted that nobody took yet.
    var hasOpenChunk: Bool {
        let current = state.load(ordering: .relaxed)
        return current & 0xFFFF_FFFF < current >> 32
    }

    /// A chunk index nobody has taken yet, and how many chunks there are; nil when all are taken.
    func claim() -> (chunk: Int, chunks: Int)? {
        var current = state.load(ordering: .acquiring)
        while true {
            let chunks = Int(current >> 32), next = Int(current & 0xFFFF_FFFF)
            guard next < chunks else { return nil }
            let (exchanged, original) = state.compareExchange(expected: current, desired: current + 1,
                                                              successOrdering: .acquiring, failureOrdering: .acquiring)
            if exchanged { return (next, chunks) }
            current = original
        }
    }

    /// Runs chunk `chunk` with the cipher contexts of thread `slot`; true when it was the last to finish.
    func run(chunk: Int, of chunks: Int, slot: Int) -> Bool {
        let start = chunk * Self.chunkJobs
        for index in start..<min(start + Self.chunkJobs, count) { jobs[index].run(slot: slot) }
        return finished.add(1, ordering: .acquiringAndReleasing).newValue == chunks
    }
}

/// One thread as the crew knows it: its board, whether it sleeps in `epoll_wait` (so a post
/// may wake it), and how to wake it.
public final class CrewMember: @unchecked Sendable {
    public let slot: Int
    public let board = CryptoBoard()
    /// Busy with its own work, lingering in `help` (it takes what is posted without a wake), or asleep
    /// (in `epoll_wait`: a post wakes it).
    private let state = Atomic<UInt8>(CrewMember.busy)
    private static let busy: UInt8 = 0, lingering: UInt8 = 1, asleep: UInt8 = 2
    public unowned let crew: CryptoCrew
    /// How to wake its thread; set once, before any work is posted.
    public var wake: (@Sendable () -> Void)?

    init(slot: Int, crew: CryptoCrew) {
        self.slot = slot
        self.crew = crew
    }

    /// Runs every job on the board, spread over the idle members when there is enough of it; returns when
    /// every job has run (the caller reads the results, then clears the board). A job whose thread had no
    /// cipher context runs again here with the main ciphers, which the caller's lock guards.
    public func runBoard() {
        let board = self.board
        guard board.count > 0 else { return }
        defer {
            for index in 0..<board.count where board.jobs[index].result == CryptoJob.noCipher { board.jobs[index].retryWithoutSlot() }
        }
        let chunks = (board.count + CryptoBoard.chunkJobs - 1) / CryptoBoard.chunkJobs
        let helpers = crew.shares && chunks > 1 && board.bytes >= CryptoBoard.spreadBytes
            ? crew.recruit(upTo: chunks - 1, except: slot) : 0
        guard helpers > 0 else {
            for index in 0..<board.count { board.jobs[index].run(slot: slot) }
            return
        }
        board.finished.store(0, ordering: .relaxed)
        board.state.store(UInt64(chunks) << 32, ordering: .releasing)
        var last = false
        while let (chunk, chunks) = board.claim() { last = board.run(chunk: chunk, of: chunks, slot: slot) || last }
        guard !last else { return }
        // A helper still runs its last chunk: a few microseconds. Sleeping on the semaphore at once would
        // cost a wakeup, tens of microseconds, so spin a little first; the helper that finishes last
        // signals either way, and the wait then only takes that signal.
        let start = monotonicNanoseconds()
        while board.finished.load(ordering: .acquiring) < chunks && monotonicNanoseconds() &- start < Self.linger {}
        board.done.wait()
    }

    /// Its thread is about to sleep until woken (`wake`) or its own work comes.
    public func willSleep() { state.store(Self.asleep, ordering: .relaxed) }

    /// Its thread woke up (for whatever reason).
    public func wokeUp() { state.store(Self.busy, ordering: .relaxed) }

    /// Whether a post can count on it: lingering, or asleep and now woken (so that two posts do not both
    /// count on one sleeper).
    func recruit() -> Bool {
        if state.load(ordering: .relaxed) == Self.lingering { return true }
        guard state.compareExchange(expected: Self.asleep, desired: Self.busy, ordering: .relaxed).exchanged else { return false }
        wake?()
        return true
    }

    /// Takes chunks of whatever other members posted, until none is left untaken; then, if it found any,
    /// keeps looking for `linger` nanoseconds more. A sleeping thread takes tens of microseconds to wake
    /// (more in a VM): about as long as a board takes, so a helper that went back to sleep at once would
    /// arrive only for the end of the next one, while one that lingers is there when a steady stream
    /// posts it. Returns after `budget` nanoseconds at most (a chunk may end a little past it), so that a
    /// thread helping a flooded device still serves its own devices, timers and removals in between.
    ///
    /// True when it stopped at the budget with work still coming: the member still counts as lingering,
    /// and its thread should look at its own work without sleeping, then help again.
    @discardableResult
    public func help(linger: UInt64 = CrewMember.linger, budget: UInt64 = CrewMember.budget) -> Bool {
        let deadline = monotonicNanoseconds() &+ budget
        // Back from a budget's end it lingers on; otherwise only if it finds work now.
        let resuming = state.load(ordering: .relaxed) == Self.lingering
        guard helpOnce(until: deadline) || resuming else {
            state.store(Self.busy, ordering: .relaxed)
            return false
        }
        state.store(Self.lingering, ordering: .relaxed)
        var since = monotonicNanoseconds()
        while true {
            let now = monotonicNanoseconds()
            if now >= deadline { return true }
            if now &- since >= linger { break }
            if crew.hasOpenWork, helpOnce(until: deadline) { since = monotonicNanoseconds() }
        }
        state.store(Self.busy, ordering: .relaxed)
        return false
    }

    /// The most one `help` call takes before its thread goes back to its own loop.
    public static let budget: UInt64 = 200_000

    /// How long a helper that found work keeps looking for more.
    public static let linger: UInt64 = 50_000

    /// Takes chunks until none is left untaken or the deadline passed (one at least, if there is one);
    /// whether it took any.
    private func helpOnce(until deadline: UInt64) -> Bool {
        var took = false
        var found = false
        repeat {
            found = false
            for member in crew.members where member !== self {
                let board = member.board
                while let (chunk, chunks) = board.claim() {
                    found = true
                    if board.run(chunk: chunk, of: chunks, slot: slot) { board.done.signal() }
                    if monotonicNanoseconds() >= deadline { return true }
                }
            }
            took = took || found
        } while found && monotonicNanoseconds() < deadline
        return took
    }
}

/// The data-plane threads as a crew for AEAD work (see `CryptoBoard`): one member per thread, each
/// member's slot naming the cipher contexts it uses (a context is not thread-safe, so every keypair keeps
/// one per slot, made when that slot first needs it).
public final class CryptoCrew: @unchecked Sendable {
    public private(set) var members: [CrewMember] = []
    /// Whether a batch's work is shared at all: asked for, and someone to share it with. Otherwise each
    /// thread seals and opens its own, and needs no board.
    public let shares: Bool

    public init(threads: Int, spreads: Bool = true) {
        shares = spreads && threads > 1
        members = (0..<threads).map { CrewMember(slot: $0, crew: self) }
    }

    /// Counts on up to `count` members other than `slot` that are lingering or asleep (those it wakes);
    /// how many.
    func recruit(upTo count: Int, except slot: Int) -> Int {
        var recruited = 0
        for member in members where member.slot != slot && recruited < count {
            if member.recruit() { recruited += 1 }
        }
        return recruited
    }

    /// Whether some member's board has a chunk nobody took yet.
    public var hasOpenWork: Bool {
        members.contains { $0.board.hasOpenChunk }
    }
}

/// Threads that do nothing but help: members 1 and up of a crew whose member 0 is the caller, for a
/// program without data-plane threads (a benchmark, a test). Each sleeps until a post wakes it, as an
/// idle data-plane thread sleeps in `epoll_wait`.
public final class HelperThreads: Sendable {
    private let threads: [BackgroundThread]

    public init(for crew: CryptoCrew) throws(Errno) {
        var started: [BackgroundThread] = []
        for member in crew.members.dropFirst() {
            do {
                let thread = try BackgroundThread(name: "tund:crew/\(member.slot)") { thread in
                    var stillHelping = false
                    while !thread.isStopping {
                        if !stillHelping {
                            member.willSleep()
                            _ = thread.waitFor([])
                            thread.wake.drain()
                            member.wokeUp()
                        }
                        stillHelping = member.help()
                    }
                }
                member.wake = { [weak thread] in thread?.wakeUp() }
                started.append(thread)
            } catch {
                started.forEach { $0.stop() }
                throw error
            }
        }
        threads = started
    }

    /// Stops and joins every thread.
    public func stop() {
        threads.forEach { $0.stop() }
    }
}
