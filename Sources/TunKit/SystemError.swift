#if canImport(Glibc)
import Glibc
#endif
import Errno

/// A failed system call: which one, and the errno it left.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function (or ioctl request) that failed, e.g. `ioctl(TUNSETIFF)`.
    public let function: String
    public let errno: Int32

    public init(_ function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    /// The symbolic errno, e.g. `EEXIST`, for logs and API messages.
    public var errnoName: String { errnoSymbol(errno) }

    public var description: String { "\(function): \(errnoName) (\(String(cString: strerror(errno))))" }
}

/// `EEXIST` for 17, and so on (the one table is `Errno.name`).
public func errnoSymbol(_ code: Int32) -> String { Errno(code).name }

/// Runs a system call, retrying on EINTR; throws `SystemError` naming `function` on -1.
@discardableResult
@inline(__always)
func syscall<T: FixedWidthInteger>(_ function: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemError(function(), errno: code)
    }
}
