/// The token both clients send as `Authorization: Bearer <token>`: surrounding whitespace (a file's
/// final newline) is dropped, and what is left must fit in a header as one word.
public enum BearerToken {
    /// Why a token cannot be used. The messages never contain the token.
    public enum Failure: Error, Equatable {
        case empty
        case notPrintable

        public var message: String {
            switch self {
            case .empty: return "the token is empty"
            case .notPrintable: return "the token must be printable ASCII without spaces"
            }
        }
    }

    /// Token files are small; a larger one is the wrong file.
    public static let fileLimit = 64 * 1024

    /// `text` trimmed, if it is a usable token.
    public static func validated(_ text: String) throws(Failure) -> String {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .empty }
        guard trimmed.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { throw .notPrintable }
        return trimmed
    }
}
