#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import TundAPI
import TundCore
import TundHTTP
import TundStore
import TunKit
import TundDataPlane
import TundWorkers
import TundVersion

@main
struct Tund: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tund",
        abstract: "HTTP/JSON control plane for Linux TUN/TAP devices.",
        discussion: """
            Devices are stored in SQLite and restored on start; /readyz answers 200 once they are.
            Needs CAP_NET_ADMIN and read/write access to /dev/net/tun.
            """,
        version: TundVersion.current)

    @Option(help: "Where to serve the API: HOST:PORT, [IPv6]:PORT, or unix:/path/to/socket. Addresses other than loopback need a token.")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "SQLite database holding the devices (created if missing). Default: $STATE_DIRECTORY/tund.db under systemd, else /var/lib/tund/tund.db.")
    var database: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Largest request body accepted, in bytes (a PUT /devices of 10,000 devices is about 1.3 MB).")
    var maxBodyBytes: Int = 4 << 20

    @Option(help: "Threads serving HTTP connections.")
    var httpThreads: Int = 2

    @Option(help: "Data-plane threads serving every device's queues (epoll loops). Default: one per CPU.")
    var dataPlaneThreads: Int?

    @Option(help: "Share one WireGuard batch's sealing and opening among the data-plane threads: on, off, or auto (on with 4 CPUs or more).")
    var spreadCrypto: SpreadCrypto = .auto

    enum SpreadCrypto: String, ExpressibleByArgument, CaseIterable {
        case auto, on, off

        var isOn: Bool { self == .auto ? DataPlane.spreadsCryptoByDefault : self == .on }
    }

    @Option(help: "File holding the bearer token every endpoint but the /healthz and /readyz probes then requires (or set TUND_TOKEN).")
    var tokenFile: String?

    @Option(help: "PEM certificate chain: serve HTTPS (with --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "Permissions of the Unix socket (octal), which are its access control.")
    var socketMode: String = "0660"

    @Option(help: "Most devices tund will manage; creates beyond it answer 409.")
    var maxDevices: Int = 16384

    @Option(help: "Most simultaneous HTTP connections; requests on more get 503 too_many_connections.")
    var maxConnections: Int = 256

    @Option(help: "Seconds a connection may sit idle (or trickle a body) before it is closed.")
    var connectionTimeout: Int = 30

    func validate() throws {
        guard ListenAddress(listen) != nil else { throw ValidationError("--listen must be HOST:PORT with a numeric IP address, got \(listen)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
        guard (1...(1 << 24)).contains(maxBodyBytes) else { throw ValidationError("--max-body-bytes must be between 1 and 16777216") }
        guard (1...64).contains(httpThreads) else { throw ValidationError("--http-threads must be between 1 and 64") }
        guard (1...256).contains(dataPlaneThreads ?? 1) else { throw ValidationError("--data-plane-threads must be between 1 and 256") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard let mode = UInt32(socketMode, radix: 8), mode <= 0o777 else { throw ValidationError("--socket-mode must be octal, like 0660") }
        guard (1...1_000_000).contains(maxDevices) else { throw ValidationError("--max-devices must be between 1 and 1000000") }
        guard (1...65536).contains(maxConnections) else { throw ValidationError("--max-connections must be between 1 and 65536") }
        guard (1...3600).contains(connectionTimeout) else { throw ValidationError("--connection-timeout must be between 1 and 3600 seconds") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { LogfmtHandler(label: $0, level: level) }
        LogWriter.shared.start()
        let logger = Logger(label: "tund")
        let address = ListenAddress(listen)!
        let databasePath = database ?? Self.defaultDatabasePath()

        // Signals are taken synchronously by this thread (sigwait), so block them before any thread starts:
        // every thread inherits the mask, and no handler runs on a worker or HTTP thread.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)

        let token = readToken(logger)
        if address.unixPath == nil && !address.isLoopback && token == nil {
            fail(logger, "refusing to listen on \(address) without a token: anyone who can reach it could reconfigure this host's network; set --token-file or TUND_TOKEN, or listen on 127.0.0.1 or a Unix socket")
        }
        if address.unixPath == nil && !address.isLoopback && tlsCert == nil {
            logger.warning("serving a non-loopback address without TLS: the bearer token crosses the network in clear text", metadata: ["address": "\(address)"])
        }
        var tlsCertificatePEM: String?, tlsKeyPEM: String?
        if let tlsCert, let tlsKey {
            guard let certificate = try? Preflight.readFile(tlsCert), let key = try? Preflight.readFile(tlsKey) else {
                fail(logger, "cannot read --tls-cert \(tlsCert) or --tls-key \(tlsKey)")
            }
            tlsCertificatePEM = certificate
            tlsKeyPEM = key
        }
        if Preflight.missingNetAdmin() { fail(logger, "tund needs CAP_NET_ADMIN to configure network devices: run it as root or grant the capability (AmbientCapabilities=CAP_NET_ADMIN)") }
        if let problem = Preflight.tunDeviceProblem() { fail(logger, problem) }
        let descriptors = Preflight.raiseDescriptorLimit()
        if descriptors < UInt64(maxDevices) + 256 {
            logger.warning("the open-descriptor limit is below --max-devices: devices past it will fail to open (EMFILE); raise LimitNOFILE",
                           metadata: ["limit": "\(descriptors)", "max_devices": "\(maxDevices)"])
        }
        // Everything tund creates is its own alone: the database, its WAL and journal hold the devices'
        // configuration, WireGuard keys among it. (The Unix socket sets its own mode, --socket-mode.)
        umask(0o077)
        if let problem = Preflight.prepareDirectory(forDatabase: databasePath) { fail(logger, problem) }

        let store: DeviceDatabase
        do {
            store = try DeviceDatabase(path: databasePath)
        } catch {
            fail(logger, "cannot open the database \(databasePath): \(error)")
        }
        let netlink: RouteNetlink
        do {
            netlink = try RouteNetlink()
        } catch {
            fail(logger, "cannot open a netlink socket: \(error)")
        }
        let plane: DataPlane
        do {
            plane = try DataPlane(threads: dataPlaneThreads ?? DataPlane.defaultThreadCount, spreadCrypto: spreadCrypto.isOn)
        } catch {
            fail(logger, "cannot start the data plane: \(error)")
        }
        let manager = DeviceManager(links: KernelLinkControl(netlink: netlink), store: SQLiteDeviceStore(database: store),
                                    workers: DataPlaneWorkers(plane: plane),
                                    logger: logger, maxDevices: maxDevices)
        let fleet = DeviceFleet(home: manager, opener: KernelNamespaceOpener())
        let api = TundAPI(fleet: fleet, logger: logger, token: token, requestLog: LogfmtRequestLog(level: level))
        var httpConfiguration = HTTPServer.Configuration(tooLarge: TundAPI.payloadTooLarge, badRequest: TundAPI.badRequest,
                                                         tooManyConnections: TundAPI.tooManyConnections)
        httpConfiguration.maxBodyBytes = maxBodyBytes
        httpConfiguration.threads = httpThreads
        httpConfiguration.connectionLimit = maxConnections
        httpConfiguration.connectionTimeoutSeconds = connectionTimeout
        httpConfiguration.tlsCertificatePEM = tlsCertificatePEM
        httpConfiguration.tlsKeyPEM = tlsKeyPEM
        httpConfiguration.unixSocketMode = UInt32(socketMode, radix: 8)!
        httpConfiguration.rejected = TundAPI.rejected
        // Without a token, a browser on this host is a client too: only requests that name this server
        // (DNS rebinding) from no foreign web origin are served. A Unix socket is out of a browser's reach.
        if token == nil, address.unixPath == nil {
            httpConfiguration.hostPolicy = .loopback(listeningOn: address.isIPv6 ? "[\(address.host)]" : address.host, port: Int(address.port))
        }
        let server: HTTPServer
        do {
            server = try HTTPServer(address: address, configuration: httpConfiguration) { api.respond(to: $0) }
        } catch {
            fail(logger, "\(error)")
        }
        logger.info("listening", metadata: [
            "address": "\(address)", "database": "\(databasePath)", "instance": "\(store.instanceID)",
            "auth": "\(token == nil ? "none" : "bearer token")", "tls": "\(tlsCertificatePEM == nil ? "off" : "on")",
            "data_plane_threads": "\(plane.threadCount)", "spread_crypto": "\(plane.spreadsCrypto ? "on" : "off")",
        ])

        do {
            let report = try fleet.restore()
            logger.info("restore finished; ready", metadata: [
                "reattached": "\(report.reattached.count)", "recreated": "\(report.recreated.count)",
                "orphans_removed": "\(report.orphansRemoved.count)", "failed": "\(report.failed.count)",
            ])
        } catch {
            server.stop()
            fail(logger, "restore failed: \(error)")
        }
        // Drift: from here on, changes others make to tund's devices are seen and repaired (or reported).
        let watcher: DriftWatcher
        do {
            watcher = DriftWatcher(manager: manager, notices: try KernelNoticeSource(ignoringChangesBy: netlink.portID))
            try watcher.start()
        } catch {
            server.stop()
            fail(logger, "cannot listen for kernel notices: \(error)")
        }

        var received: Int32 = 0
        sigwait(&signals, &received)
        logger.info("shutting down", metadata: ["signal": "\(received == SIGTERM ? "SIGTERM" : "SIGINT")"])
        watcher.stop()
        api.closeEventStreams()
        server.stop()
        fleet.shutdown()
        plane.shutdown()
        logger.info("stopped; devices stay up and are re-attached on the next start")
        LogWriter.shared.stop()
    }

    /// The bearer token from --token-file, else TUND_TOKEN; nil when neither is set. The token itself is
    /// never logged.
    func readToken(_ logger: Logger) -> String? {
        var token: String?
        if let tokenFile {
            guard let text = try? Preflight.readFile(tokenFile) else { fail(logger, "cannot read --token-file \(tokenFile)") }
            var status = stat()
            if stat(tokenFile, &status) == 0, status.st_mode & 0o077 != 0 {
                logger.warning("the token file can be read by other users; chmod 600 it", metadata: ["file": "\(tokenFile)"])
            }
            token = text
        } else if let environment = getenv("TUND_TOKEN") {
            token = String(cString: environment)
        }
        guard var token else { return nil }
        while let last = token.last, last == "\n" || last == "\r" || last == " " { token.removeLast() }
        guard token.utf8.count >= 16, token.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            fail(logger, "the token must be at least 16 printable ASCII characters without spaces")
        }
        return token
    }

    static func defaultDatabasePath() -> String {
        if let state = getenv("STATE_DIRECTORY").map({ String(cString: $0) }), !state.isEmpty {
            // systemd may pass several directories separated by ':'; the first is ours.
            return "\(state.split(separator: ":")[0])/tund.db"
        }
        return "/var/lib/tund/tund.db"
    }
}

/// Logs a start-up error and exits with status 1.
func fail(_ logger: Logger, _ message: String) -> Never {
    logger.critical("\(message)")
    exit(1)
}
