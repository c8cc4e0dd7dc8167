import Logging

/// Where the request log goes: one line per answered request, after it is answered.
///
/// A protocol, not a `Logger`, because it runs for every request: swift-log's metadata dictionary costs
/// more than the rest of answering a small request, and the executable writes these lines straight into
/// its batch buffer (`LogfmtRequestLog`).
public protocol RequestLog: Sendable {
    /// `method` and `path` as sent (bounded by the caller), `microseconds` from the complete request to
    /// its answer.
    func record(method: Substring, path: Substring, status: Int, microseconds: Int64)
}

/// The request log through a swift-log `Logger`, at info: `msg=request` with `method`, `path`,
/// `status`, `duration_ms`.
public struct LoggerRequestLog: RequestLog {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func record(method: Substring, path: Substring, status: Int, microseconds: Int64) {
        logger.info("request", metadata: [
            "method": "\(method)", "path": "\(path)", "status": "\(status)", "duration_ms": "\(Double(microseconds) / 1000)",
        ])
    }
}
