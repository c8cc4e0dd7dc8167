#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole local file, or standard input, as bytes: what both clients need for token files and for
/// documents given on the command line or on standard input.
public enum FileContents {
    /// Why a file could not be read.
    public enum Failure: Error, Equatable {
        /// open(2) or read(2) failed with this errno.
        case unreadable(errno: Int32)
        /// The file is larger than the limit asked for (bytes).
        case tooLarge(limit: Int)

        /// "cannot read LABEL: REASON" or "LABEL is larger than N KiB/MiB".
        public func message(label: String) -> String {
            switch self {
            case .unreadable(let code): return "cannot read \(label): \(String(cString: strerror(code)))"
            case .tooLarge(let limit):
                let size = limit >= 1024 * 1024 ? "\(limit / (1024 * 1024)) MiB" : "\(limit / 1024) KiB"
                return "\(label) is larger than \(size)"
            }
        }
    }

    /// The contents of `path` (nil: standard input), at most `limit` bytes.
    public static func read(_ path: String?, limit: Int) throws(Failure) -> [UInt8] {
        let descriptor: Int32
        if let path {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw .unreadable(errno: errno) }
        } else {
            descriptor = 0
        }
        defer { if path != nil { close(descriptor) } }
        return try DescriptorIO.readAll(descriptor, limit: limit)
    }
}
