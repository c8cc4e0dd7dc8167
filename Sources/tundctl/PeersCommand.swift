import ArgumentParser
import TundClient
import TundJSON

/// `peers NAME`: a wireguard device's peers as `wg show` lists them, from the device's stats.
struct PeersCommand: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "Show a wireguard device's peers: endpoint, last handshake, transfer, drops.",
        discussion: """
            One block per peer, like `wg show`: its public key, endpoint (where it was
            last heard from), allowed IPs, the latest handshake and how long ago, the
            bytes received and sent, and the packets dropped by reason. Then the
            drops that named no peer. --json prints the stats answer's "peers".
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String

    func execute(_ api: APIClient) throws {
        let stats = try api.get(APIPaths.stats(name)).json()
        guard let peers = stats["peers"]?.arrayValue else {
            StandardStreams.err("error: \(name) is not in worker mode wireguard\n")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        if global.json {
            return try StandardStreams.out(String(decoding: JSONValue.array(peers).serialized(), as: UTF8.self) + "\n")
        }
        let device = try api.get(APIPaths.device(name)).json()
        let configured = device["worker"]?["peers"]?.arrayValue ?? []
        try StandardStreams.out(PeerText.blocks(device: device, peers: peers, configured: configured, deviceDrops: stats["wireguard_dropped"]))
    }
}

/// Peers as people read them, the way `wg show` lays them out.
enum PeerText {
    static func blocks(device: JSONValue, peers: [JSONValue], configured: [JSONValue], deviceDrops: JSONValue?) -> String {
        var text = "interface: \(device["name"]?.stringValue ?? "-")\n"
        text += "  public key: \(device["worker"]?["public_key"]?.stringValue ?? "-")\n"
        text += "  listening port: \(device["worker"]?["listen_port"]?.integerValue.map(String.init) ?? "-")\n"
        for peer in peers {
            let key = peer["public_key"]?.stringValue ?? "-"
            let settings = configured.first { $0["public_key"]?.stringValue == key }
            text += "\npeer: \(key)\n"
            text += "  endpoint: \(peer["endpoint"]?.stringValue ?? "(none)")\n"
            let allowed = settings?["allowed_ips"]?.arrayValue?.compactMap(\.stringValue) ?? []
            text += "  allowed ips: \(allowed.isEmpty ? "(none)" : allowed.joined(separator: ", "))\n"
            text += "  latest handshake: \(peer["last_handshake_at"]?.stringValue ?? "(none)")\n"
            text += "  transfer: \(bytes(peer["rx_bytes"])) received, \(bytes(peer["tx_bytes"])) sent\n"
            text += "  handshakes: \(count(peer["handshakes_initiated"])) initiated, \(count(peer["handshakes_completed"])) completed\n"
            if let keepalive = settings?["persistent_keepalive"]?.integerValue { text += "  persistent keepalive: every \(keepalive) seconds\n" }
            text += "  dropped: \(drops(peer["dropped"]))\n"
        }
        text += "\ndropped, no peer: \(drops(deviceDrops))\n"
        return text
    }

    private static func count(_ value: JSONValue?) -> String { value?.integerValue.map(String.init) ?? "-" }

    private static func bytes(_ value: JSONValue?) -> String {
        guard let number = value?.integerValue else { return "-" }
        return "\(number) B"
    }

    private static func drops(_ value: JSONValue?) -> String {
        guard case .object(let members)? = value else { return "-" }
        let nonzero = members.filter { $0.1.integerValue.map { $0 > 0 } ?? false }
        return nonzero.isEmpty ? "none" : nonzero.map { "\($0.0) \(count($0.1))" }.joined(separator: ", ")
    }
}
