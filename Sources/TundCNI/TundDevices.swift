import TundClient
import TundJSON

/// The device requests tund-cni makes, with failures turned into CNI errors: tund unreachable (or not
/// answering in time) is "try again later" (11), an error answer is tundRefused (100) carrying tund's
/// code and message.
struct TundDevices {
    let api: APIClient

    /// Creating a tap can take a moment when tund is busy; a runtime's own timeout is longer.
    static let timeout = 30.0

    init(config: NetworkConfig) throws(CNIError) {
        var token: String?
        if let path = config.tokenFile {
            let bytes: [UInt8]
            do {
                bytes = try FileContents.read(path, limit: BearerToken.fileLimit)
            } catch {
                throw CNIError(code: CNIError.ioFailure, msg: error.message(label: "the token file \(path)"))
            }
            do {
                token = try BearerToken.validated(String(decoding: bytes, as: UTF8.self))
            } catch {
                throw CNIError(code: CNIError.invalidConfig, msg: "the token file \(path): \(error.message)")
            }
        }
        api = APIClient(http: HTTPClient(server: config.server, userAgent: "tund-cni/1"), token: token, timeout: Self.timeout)
    }

    /// `POST /devices`: the device as tund made it.
    func create(_ body: JSONValue) throws(CNIError) -> JSONValue {
        guard let response = try request("POST", "/devices", body, doing: "create the device") else {
            throw CNIError(code: CNIError.tundRefused, msg: "tund refused to create the device: device_not_found")
        }
        return try json(response)
    }

    // Derived names hold only [A-Za-z0-9._-], which need no percent-encoding in a path.

    /// `GET /devices/NAME`; nil when tund has no such device.
    func get(_ name: String) throws(CNIError) -> JSONValue? {
        try request("GET", "/devices/\(name)", nil, doing: "read the device \(name)").map { response throws(CNIError) in try json(response) }
    }

    /// `DELETE /devices/NAME`; a device that is already gone is success.
    func delete(_ name: String) throws(CNIError) {
        _ = try request("DELETE", "/devices/\(name)", nil, doing: "delete the device \(name)")
    }

    /// The answer, or nil when tund says the device does not exist (`device_not_found`).
    private func request(_ method: String, _ path: String, _ body: JSONValue?, doing what: String) throws(CNIError) -> APIResponse? {
        do {
            return try api.send(method, path, json: body)
        } catch let failure as ServerError {
            if failure.code == "device_not_found" { return nil }
            throw CNIError(code: CNIError.tundRefused, msg: "tund refused to \(what): \(failure.summary)",
                           details: "\(failure.code) (HTTP \(failure.status)): \(failure.message)")
        } catch let failure as HTTPClientError {
            throw CNIError(code: CNIError.tryAgainLater, msg: failure.message(server: api.server.description, timeout: Self.timeout, program: "tund-cni"))
        } catch {
            throw CNIError(code: CNIError.ioFailure, msg: "cannot \(what): \(error)")
        }
    }

    private func json(_ response: APIResponse) throws(CNIError) -> JSONValue {
        do {
            return try response.json()
        } catch {
            throw CNIError(code: CNIError.tryAgainLater, msg: error.message(server: api.server.description, timeout: Self.timeout, program: "tund-cni"))
        }
    }
}
