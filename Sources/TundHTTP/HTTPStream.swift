import CMicroHTTPD
import Synchronization

/// A response body written over time (Server-Sent Events): the application sends bytes whenever it
/// likes; libmicrohttpd pulls them on its own thread.
///
/// When the buffer is empty the connection is suspended (taken out of MHD's event loop, so it costs no
/// thread and no polling) and the next `send` resumes it. A client that falls more than `capacity` bytes
/// behind is cut off: `send` returns false and the stream ends, and the client reconnects.
public final class HTTPStream: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var finished = false
        var closed = false
        var connection: ConnectionHandle?
        var suspended = false
        var onClose: [@Sendable () -> Void] = []
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 256 * 1024) {
        self.capacity = capacity
    }

    /// Appends `bytes` to what the client will receive. False when the stream is closed or the client is too
    /// far behind (the stream then ends).
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        state.withLock { state in
            guard !state.closed, !state.finished else { return false }
            if state.buffer.count + bytes.count > capacity {
                state.finished = true
                state.buffer = []
                Self.resume(&state)
                return false
            }
            state.buffer += bytes
            Self.resume(&state)
            return true
        }
    }

    /// Ends the body after what was sent.
    public func finish() {
        state.withLock { state in
            state.finished = true
            Self.resume(&state)
        }
    }

    /// Runs `action` once, when the connection is gone (client left, stream finished, server stopped).
    public func onClose(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            if state.closed { return true }
            state.onClose.append(action)
            return false
        }
        if runNow { action() }
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// The client hung up: end the body, so libmicrohttpd takes the connection back, finds it gone and
    /// closes the stream (running `onClose`).
    func clientLeft() {
        finish()
    }

    // MARK: - Server side

    func attach(_ connection: OpaquePointer) {
        state.withLock { $0.connection = ConnectionHandle(pointer: connection) }
    }

    /// MHD's content reader: copies what is buffered, or suspends the connection until `send`.
    func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        state.withLock { state in
            if !state.buffer.isEmpty {
                let count = min(destination.count, state.buffer.count)
                state.buffer.withUnsafeBytes { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                state.buffer.removeFirst(count)
                return count
            }
            if state.finished || state.closed { return -1 }  // MHD_CONTENT_READER_END_OF_STREAM
            if let connection = state.connection, !state.suspended {
                state.suspended = true
                MHD_suspend_connection(connection.pointer)
            }
            return 0
        }
    }

    /// The response is freed: the connection is over.
    func closed() {
        let actions = state.withLock { state in
            state.closed = true
            state.connection = nil
            defer { state.onClose = [] }
            return state.onClose
        }
        actions.forEach { $0() }
    }

    private static func resume(_ state: inout State) {
        if state.suspended, let connection = state.connection {
            state.suspended = false
            MHD_resume_connection(connection.pointer)
        }
    }
}

/// A libmicrohttpd connection pointer; MHD_resume_connection may be called from any thread.
struct ConnectionHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}
