import ArgumentParser

@main
struct Tundctl: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tundctl", abstract: "Command-line client for tund's HTTP API.")
}
