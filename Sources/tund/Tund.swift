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

@main
struct Tund: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tund",
        abstract: "HTTP/JSON control plane for Linux TUN/TAP devices.",
        discussion: """
            Devices are stored in SQLite and restored on start; /readyz answers 200 once they are.
            Needs CAP_NET_ADMIN and read/write access to /dev/net/tun.
            """)

    @Option(help: "Address and port to serve the API on (HOST:PORT, [IPv6]:PORT).")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "SQLite database holding the devices (created if missing). Default: $STATE_DIRECTORY/tund.db under systemd, else /var/lib/tund/tund.db.")
    var database: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Largest request body accepted, in bytes.")
    var maxBodyBytes: Int = 65536

    @Option(help: "Threads serving HTTP connections.")
    var httpThreads: Int = 2

    func validate() throws {
        guard ListenAddress(listen) != nil else { throw ValidationError("--listen must be HOST:PORT with a numeric IP address, got \(listen)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
        guard (1...(1 << 24)).contains(maxBodyBytes) else { throw ValidationError("--max-body-bytes must be between 1 and 16777216") }
        guard (1...64).contains(httpThreads) else { throw ValidationError("--http-threads must be between 1 and 64") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { LogfmtHandler(label: $0, level: level) }
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

        if !address.isLoopback {
            fail(logger, "refusing to listen on \(address): tund has no authentication yet, so it serves loopback addresses only")
        }
        if Preflight.missingNetAdmin() { fail(logger, "tund needs CAP_NET_ADMIN to configure network devices: run it as root or grant the capability (AmbientCapabilities=CAP_NET_ADMIN)") }
        if let problem = Preflight.tunDeviceProblem() { fail(logger, problem) }
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
        let manager = DeviceManager(links: KernelLinkControl(netlink: netlink), store: SQLiteDeviceStore(database: store), logger: logger)
        let api = TundAPI(manager: manager, logger: logger)
        var httpConfiguration = HTTPServer.Configuration(tooLarge: TundAPI.payloadTooLarge)
        httpConfiguration.maxBodyBytes = maxBodyBytes
        httpConfiguration.threads = httpThreads
        let server: HTTPServer
        do {
            server = try HTTPServer(address: address, configuration: httpConfiguration) { api.respond(to: $0) }
        } catch {
            fail(logger, "\(error)")
        }
        logger.info("listening", metadata: ["address": "\(address)", "database": "\(databasePath)", "instance": "\(store.instanceID)"])

        do {
            let report = try manager.restore()
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
            watcher = DriftWatcher(manager: manager, notices: try KernelNoticeSource())
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
        manager.shutdown()
        logger.info("stopped; devices stay up and are re-attached on the next start")
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
