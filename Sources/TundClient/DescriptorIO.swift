#if canImport(Glibc)
import Glibc
#endif

/// Whole reads and writes on a file descriptor, retrying after signals and short transfers. The clients
/// write with write(2) rather than the C streams, which are global state Swift 6 will not share.
public enum DescriptorIO {
    /// Everything until end of file, at most `limit` bytes.
    public static func readAll(_ descriptor: Int32, limit: Int) throws(FileContents.Failure) -> [UInt8] {
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(errno: errno)
            }
            if count == 0 { return contents }
            contents += chunk[..<count]
            guard contents.count <= limit else { throw .tooLarge(limit: limit) }
        }
    }

    /// Writes every byte to `descriptor`: 0, or the errno of the write that failed.
    public static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }
}
