#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import Synchronization

/// Where log lines go: standard error. Every line is written whole by one write(2), in order, except that
/// lines of the request log are gathered and written in batches, at least every 50 ms or 32 KiB, as
/// nginx's buffered access log does: one write per request cost more than the rest of answering a small
/// request. Any other line first writes what is gathered, so the order of lines is kept. A SIGKILL loses
/// at most the last 50 ms of request lines, never anything else.
final class LogWriter: Sendable {
    static let shared = LogWriter()
    static let flushBytes = 32 * 1024
    static let flushMilliseconds: Int32 = 50

    private let pending = Mutex<[UInt8]>([])
    /// Held while writing to standard error, so batches and lines go out in the order they were made.
    private let output = Mutex<Void>(())
    private let flusher = Mutex<BackgroundThread?>(nil)
    private let gathering = Atomic<Bool>(false)

    /// Starts the thread that writes what is gathered; until then every line is written at once.
    func start() {
        guard let thread = try? BackgroundThread(name: "tund:log", { [self] thread in
            while !thread.isStopping {
                _ = thread.waitFor([], timeoutMilliseconds: Self.flushMilliseconds)
                flush()
            }
        }) else { return }
        flusher.withLock { $0 = thread }
        gathering.store(true, ordering: .releasing)
    }

    /// Writes what is gathered and stops gathering.
    func stop() {
        gathering.store(false, ordering: .releasing)
        flusher.withLock { thread in defer { thread = nil }; return thread }?.stop()
        flush()
    }

    /// A line written now, after anything gathered before it.
    func write(_ line: [UInt8]) {
        output.withLock { _ in
            Self.writeAll(takePending())
            Self.writeAll(line)
        }
    }

    /// A request-log line, written with the next batch: `writeLine` appends it to the batch in place.
    func gather(_ writeLine: (inout [UInt8]) -> Void) {
        guard gathering.load(ordering: .acquiring) else {
            var line: [UInt8] = []
            writeLine(&line)
            return write(line)
        }
        let full = pending.withLock { buffer in
            writeLine(&buffer)
            return buffer.count >= Self.flushBytes
        }
        if full { flush() }
    }

    /// Writes what is gathered. The batch is taken under the short lock and written under `output`
    /// only, so request threads keep gathering while it is written; `output` keeps lines in order.
    func flush() {
        output.withLock { _ in Self.writeAll(takePending()) }
    }

    private func takePending() -> [UInt8] {
        pending.withLock { buffer in
            var batch: [UInt8] = []
            batch.reserveCapacity(buffer.isEmpty ? 0 : Self.flushBytes + 4096)
            swap(&batch, &buffer)
            return batch
        }
    }

    private static func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
