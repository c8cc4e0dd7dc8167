import ArgumentParser
import TundClient
import TundVersion

/// The tundctl command: a client for tund's HTTP API, and nothing else (it never touches the kernel).
@main
struct Tundctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tundctl",
        abstract: "Command-line client for tund's HTTP API.",
        discussion: """
            Every command talks to tund over its HTTP API only. Tables for people
            by default; --json prints JSON, one document per line, for jq.

            ENVIRONMENT
              TUND_SERVER      tund's address when --server is not given:
                               http://HOST:PORT, http://[IPv6]:PORT, HOST:PORT
                               or unix:/PATH (default \(ServerAddress.defaultURL))
              TUND_TOKEN       bearer token when --token is not given
              TUND_TOKEN_FILE  file with the token when --token-file is not given

            \(ExitStatus.helpText)
            """,
        version: TundVersion.current,
        subcommands: [DevicesCommand.self, AddressesCommand.self, RoutesCommand.self, StatsCommand.self, PeersCommand.self, EventsCommand.self, CaptureCommand.self, ApplyCommand.self, DiffCommand.self])
}
