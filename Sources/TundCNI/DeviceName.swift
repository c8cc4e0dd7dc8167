/// The tund device name for one container's interface: `cni-<first 12 characters of the container
/// ID>-<interface>`. Derived, not stored, so DEL and CHECK find the device ADD made from the same
/// parameters alone. tund accepts 1-63 characters of [A-Za-z0-9._-]; anything else becomes `-`.
public enum DeviceName {
    public static let maximumLength = 63

    public static func forContainer(_ containerID: String, ifname: String) -> String {
        let raw = "cni-\(containerID.prefix(12))-\(ifname)"
        let sanitised = String(raw.map { isAllowed($0) ? $0 : "-" })
        return String(sanitised.prefix(maximumLength))
    }

    private static func isAllowed(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return false }
        switch ascii {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
