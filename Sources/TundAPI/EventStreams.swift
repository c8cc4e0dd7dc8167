import BackgroundThread
import TundJSON
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TundCore
import TundHTTP

/// `GET /events`: Server-Sent Events from the core's event log, one stream per client.
///
/// Each event is `id: <sequence>`, `event: <kind>`, `data: <JSON>`. A client that reconnects with
/// `Last-Event-ID` (or `?last_event_id=`) gets what it missed, or a `resync` event when the ring no longer
/// holds it. A comment line every `heartbeatSeconds` keeps idle connections open through proxies and lets
/// the server notice clients that left. Streams suspend their connection while idle, so they never hold
/// one of the HTTP threads the rest of the API needs.
final class EventStreams: Sendable {
    private let log: EventLog
    private let streams = Mutex<[ObjectIdentifier: HTTPStream]>([:])
    /// Started with the first stream; nil again once closed.
    private let heartbeat = Mutex<(thread: BackgroundThread?, closed: Bool)>((nil, false))
    let heartbeatSeconds: Int32

    init(log: EventLog, heartbeatSeconds: Int32 = 15) {
        self.log = log
        self.heartbeatSeconds = heartbeatSeconds
    }

    func open(_ request: HTTPRequest) -> HTTPResponse {
        let lastSeen = (request.headers["last-event-id"] ?? request.query["last_event_id"]).flatMap { UInt64($0.trimmingSpaces()) }
        let stream = HTTPStream()
        stream.send(Array(": tund event stream\nretry: 1000\n\n".utf8))
        let subscription = log.subscribe(after: lastSeen) { event in stream.send(Self.encode(event)) }
        streams.withLock { $0[ObjectIdentifier(stream)] = stream }
        stream.onClose { [self] in
            log.unsubscribe(subscription)
            streams.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(stream)) }
        }
        startHeartbeat()
        return HTTPResponse(status: 200, headers: [
            ("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"),
        ], stream: stream)
    }

    static func encode(_ event: DeviceEvent) -> [UInt8] {
        let data = JSONValue.object([
            ("sequence", .integer(Int64(event.sequence))),
            ("type", .string(event.kind.rawValue)),
            ("device", .optional(event.device)),
            ("at", .string(event.at)),
            ("detail", .object(event.detail.map { ($0.0, .string($0.1)) })),
        ]).serialized()
        return Array("id: \(event.sequence)\nevent: \(event.kind.rawValue)\ndata: ".utf8) + data + Array("\n\n".utf8)
    }

    var openCount: Int { streams.withLock { $0.count } }

    /// Ends every stream (before the HTTP server stops) and the heartbeat.
    func closeAll() {
        heartbeat.withLock { heartbeat in
            defer { heartbeat = (nil, true) }
            return heartbeat.thread
        }?.stop()
        for stream in streams.withLock({ Array($0.values) }) { stream.finish() }
        // Give libmicrohttpd a moment to send each stream's last chunk before the server stops (bounded:
        // a client that stopped reading does not hold the shutdown).
        for _ in 0..<100 where openCount > 0 { usleep(10_000) }
    }

    /// A comment line on every stream every `heartbeatSeconds`; a stream that cannot take it has lost its client.
    private func startHeartbeat() {
        heartbeat.withLock { heartbeat in
            guard heartbeat.thread == nil, !heartbeat.closed else { return }
            // Without the thread, streams still work; only idle clients that left are noticed later.
            heartbeat.thread = try? BackgroundThread(name: "tund:heartbeat") { [self] thread in
                while !thread.isStopping {
                    if thread.waitFor([], timeoutMilliseconds: heartbeatSeconds * 1000) == nil {
                        for stream in streams.withLock({ Array($0.values) }) { stream.send(Array(":\n\n".utf8)) }
                    }
                }
            }
        }
    }
}
