#if canImport(Glibc)
import Glibc
#endif

/// Reading a whole local file, or standard input, as bytes; failures are `LocalError`s (exit status 3).
enum LocalFile {
    /// The contents of `path` (nil: standard input), at most `limit` bytes. `what` names the file in
    /// messages ("the device file").
    static func read(_ path: String?, what: String, limit: Int) throws(LocalError) -> [UInt8] {
        let label = path.map { "\(what) \($0)" } ?? "standard input"
        let descriptor: Int32
        if let path {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw LocalError("cannot read \(label): \(String(cString: strerror(errno)))") }
        } else {
            descriptor = 0
        }
        defer { if path != nil { close(descriptor) } }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw LocalError("cannot read \(label): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            contents += chunk[..<count]
            guard contents.count <= limit else { throw LocalError("\(label) is larger than \(limit / (1024 * 1024)) MiB") }
        }
        return contents
    }
}
