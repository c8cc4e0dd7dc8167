import Errno
import Logging
import NetAddress
import Testing
import TundCore
import TundHTTP
import TundJSON
@testable import TundAPI

@Suite struct DeviceRequestTests {
    func decode(_ json: String) throws -> DeviceSpec {
        try DeviceRequest.decode(try JSONValue.parse(Array(json.utf8)))
    }

    func error(_ json: String) -> TundError? {
        do {
            _ = try decode(json)
            return nil
        } catch let error as TundError {
            return error
        } catch {
            return .invalidRequest("parse: \(error)")
        }
    }

    @Test func decodesTheFoundationExample() throws {
        let spec = try decode("""
            {"name":"tun0","type":"tun","mtu":1400,"addresses":["10.10.0.1/24","fd00:10::1/64"],
             "routes":[{"destination":"10.20.0.0/16","gateway":"10.10.0.2"}]}
            """)
        #expect(spec.name == "tun0" && spec.kind == .tun && spec.mtu == 1400 && spec.up && spec.queues == 1)
        #expect(spec.addresses.map(\.description) == ["10.10.0.1/24", "fd00:10::1/64"])
        #expect(spec.routes == [RouteSpec(destination: try IPPrefix.parse("10.20.0.0/16").get(), gateway: IPAddress("10.10.0.2"))])
        #expect(spec.workerMode == .count)
    }

    @Test func appliesDefaults() throws {
        let spec = try decode(#"{"type":"tap"}"#)
        #expect(spec.name == nil && spec.mtu == 1500 && spec.up && spec.owner == nil && spec.mac == nil)
    }

    @Test func aWireGuardDeviceDefaultsToAnMTUOfWholeChaChaBlocks() throws {
        let wireguard = #""worker":{"mode":"wireguard","listen_port":51820}"#
        #expect(try decode("{\"type\":\"tun\",\(wireguard)}").mtu == 1408)
        #expect(try decode("{\"type\":\"tun\",\"mtu\":1420,\(wireguard)}").mtu == 1420)
        #expect(try decode(#"{"type":"tun","worker":{"mode":"count"}}"#).mtu == 1500)
    }

    @Test func nullMeansAbsent() throws {
        let spec = try decode(#"{"type":"tun","name":null,"owner":null,"group":null,"mac":null,"worker":null}"#)
        #expect(spec.name == nil && spec.owner == nil)
    }

    @Test func namesTheBadField() {
        #expect(error(#"{"type":"tun","mtu":"1400"}"#) == .invalidField(field: "mtu", reason: "must be an integer from 68 to 65535, got a string"))
        #expect(error(#"{"type":"tun","mtu":1400.5}"#) == .invalidField(field: "mtu", reason: "must be an integer from 68 to 65535, got 1400.5"))
        #expect(error(#"{"type":"tun","up":"yes"}"#) == .invalidField(field: "up", reason: "must be true or false, got a string"))
        #expect(error(#"{"type":"tun","routes":[{"destination":"10.0.0.0/8","via":"x"}]}"#)?.field == "routes[0].via")
        #expect(error(#"{"type":"tun","routes":[{}]}"#)?.field == "routes[0].destination")
        #expect(error(#"{"type":"tun","routes":"10.0.0.0/8"}"#)?.field == "routes")
        #expect(error(#"{"type":"tun","addresses":[42]}"#)?.field == "addresses[0]")
        #expect(error(#"{"type":"tun","worker":{"mode":"count","burst":1}}"#)?.field == "worker.burst")
        #expect(error(#"{"type":"tun","queues":99999999999999999999}"#)?.field == "queues")
        #expect(error(#"{"name":"tun0"}"#)?.field == "type")
        #expect(error(#"[]"#) == .invalidRequest("the body must be a JSON object, got an array"))
    }

    @Test func invalidJSONIsAParseError() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"name":"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([]) }
    }
}

extension TundError {
    var field: String? {
        if case .invalidField(let field, _) = self { return field }
        return nil
    }
}

@Suite struct JSONValueTests {
    @Test func serializesInOrderWithEscapes() {
        let value = JSONValue.object([("b", .integer(1)), ("a", .string("x\"y\\z\n\u{1}")), ("c", .array([.null, .bool(true)]))])
        #expect(String(decoding: value.serialized(), as: UTF8.self) == #"{"b":1,"a":"x\"y\\z\n\u0001","c":[null,true]}"#)
    }

    @Test func theWriterWritesWhatTheTreeSerializes() {
        let tree = JSONValue.object([
            ("name", .string("t\"0")), ("n", .integer(-12)), ("big", .count(UInt64.max)),
            ("list", .array([.object([("q", .integer(0)), ("on", .bool(false))]), .object([])])), ("none", .null), ("e", .array([])),
        ])
        var json = JSONWriter()
        json.beginObject()
        json.key(JSONKey("name")); json.value("t\"0")
        json.key(JSONKey("n")); json.value(-12)
        json.key(JSONKey("big")); json.value(UInt64.max)
        json.key(JSONKey("list")); json.beginArray()
        json.beginObject(); json.key(JSONKey("q")); json.value(0); json.key(JSONKey("on")); json.value(false); json.endObject()
        json.beginObject(); json.endObject()
        json.endArray()
        json.key(JSONKey("none")); json.value(nil as String?)
        json.key(JSONKey("e")); json.beginArray(); json.endArray()
        json.endObject()
        #expect(json.bytes == tree.serialized())
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#, #"{"a":1,}"#, #"[1,]"#, #"[1 2]"#, #"{"a":NaN}"#, #"{"a":01}"#, #"{"a":1e400}"#, #"{"a":.5}"#,
        #"{"a":"\ud800"}"#, #"{"a":"\x41"}"#, "{\"a\":\"\u{1}\"}", #"{}x"#, #"{'a':1}"#, #"{"a":1}/*c*/"#,
        String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
    ])
    func refusesWhatLenientParsersAccept(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func refusesNonUTF8Bodies() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":""#.utf8) + [0xc0, 0xaf] + Array(#""}"#.utf8)) }
    }

    @Test func readsNumbersEscapesAndOrder() throws {
        let value = try JSONValue.parse(Array(#"{"z":-0,"i":9223372036854775807,"f":1.5e3,"s":"\u00e9\ud83d\ude00\n","b":[true,false,null]}"#.utf8))
        #expect(value.objectValue?.map(\.0) == ["z", "i", "f", "s", "b"])
        #expect(value["i"] == .integer(Int64.max) && value["f"] == .number(1500) && value["z"] == .integer(0))
        #expect(value["s"] == .string("é😀\n"))
        #expect(try JSONValue.parse(Array("\u{FEFF}{}".utf8)) == .object([]))
    }

    @Test func roundTripsThroughTheParser() throws {
        let text = #"{"a":[1,2.5,"s",false,null],"b":{"c":-3}}"#
        let parsed = try JSONValue.parse(Array(text.utf8))
        #expect(parsed["b"]?["c"] == .integer(-3))
        #expect(try JSONValue.parse(parsed.serialized()) == parsed)
    }
}

@Suite struct APIErrorTests {
    @Test(arguments: [
        (TundError.invalidRequest("x"), 400, "invalid_request"),
        (TundError.invalidField(field: "mtu", reason: "x"), 422, "invalid_field"),
        (TundError.deviceExists(name: "a"), 409, "device_exists"),
        (TundError.nameInUse(name: "a"), 409, "name_in_use"),
        (TundError.deviceNotFound(name: "a"), 404, "device_not_found"),
        (TundError.kernelRejected(KernelError(operation: "o", errno: .ENETUNREACH)), 422, "kernel_rejected"),
        (TundError.kernelRejected(KernelError(operation: "o", errno: .EEXIST)), 409, "kernel_rejected"),
        (TundError.permissionDenied(KernelError(operation: "o", errno: .EPERM)), 500, "permission_denied"),
        (TundError.kernelFailed(KernelError(operation: "o", errno: .ENOMEM)), 500, "kernel_error"),
        (TundError.storageFailed("x"), 500, "storage_error"),
        (TundError.notReady, 503, "not_ready"),
    ])
    func mapsEachDomainErrorOnce(_ error: TundError, _ status: Int, _ code: String) throws {
        let mapped = APIError(error)
        #expect(mapped.status == status && mapped.code == code)
        let body = try JSONValue.parse(mapped.response.body)
        #expect(body["error"]?["code"] == .string(code))
        #expect(body["error"]?["message"] != nil)
    }

    @Test func kernelErrnoIsMappedToTheDomain() {
        #expect(TundError.kernel(KernelError(operation: "o", errno: .EPERM)) == .permissionDenied(KernelError(operation: "o", errno: .EPERM)))
        #expect(TundError.kernel(KernelError(operation: "o", errno: .EEXIST)) == .kernelRejected(KernelError(operation: "o", errno: .EEXIST)))
        #expect(TundError.kernel(KernelError(operation: "o", errno: .ENOMEM)) == .kernelFailed(KernelError(operation: "o", errno: .ENOMEM)))
    }
}
