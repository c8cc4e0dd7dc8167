import TundClient

/// Reading a whole local file, or standard input, as bytes; failures are `LocalError`s (exit status 3).
enum LocalFile {
    /// The contents of `path` (nil: standard input), at most `limit` bytes. `what` names the file in
    /// messages ("the device file").
    static func read(_ path: String?, what: String, limit: Int) throws(LocalError) -> [UInt8] {
        do {
            return try FileContents.read(path, limit: limit)
        } catch {
            throw LocalError(error.message(label: path.map { "\(what) \($0)" } ?? "standard input"))
        }
    }
}
