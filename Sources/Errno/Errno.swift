#if canImport(Glibc)
import Glibc
#endif

/// An errno as a value: compared as a number, named once (`EEXIST`) for logs and the API. The adapters
/// (TunKit) and the core share it, so no code compares errno names as strings.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's errno now.
    public static var current: Errno { Errno(Glibc.errno) }

    public static let EPERM = Errno(Glibc.EPERM)
    public static let ENOENT = Errno(Glibc.ENOENT)
    public static let ESRCH = Errno(Glibc.ESRCH)
    public static let EINTR = Errno(Glibc.EINTR)
    public static let EIO = Errno(Glibc.EIO)
    public static let EBADF = Errno(Glibc.EBADF)
    public static let EAGAIN = Errno(Glibc.EAGAIN)
    public static let ENOMEM = Errno(Glibc.ENOMEM)
    public static let EACCES = Errno(Glibc.EACCES)
    public static let EBUSY = Errno(Glibc.EBUSY)
    public static let EEXIST = Errno(Glibc.EEXIST)
    public static let ENODEV = Errno(Glibc.ENODEV)
    public static let EINVAL = Errno(Glibc.EINVAL)
    public static let ENFILE = Errno(Glibc.ENFILE)
    public static let EMFILE = Errno(Glibc.EMFILE)
    public static let ENOSPC = Errno(Glibc.ENOSPC)
    public static let ERANGE = Errno(Glibc.ERANGE)
    public static let ENOSYS = Errno(Glibc.ENOSYS)
    public static let EPROTO = Errno(Glibc.EPROTO)
    public static let EMSGSIZE = Errno(Glibc.EMSGSIZE)
    public static let EPROTONOSUPPORT = Errno(Glibc.EPROTONOSUPPORT)
    public static let EOPNOTSUPP = Errno(Glibc.EOPNOTSUPP)
    public static let EAFNOSUPPORT = Errno(Glibc.EAFNOSUPPORT)
    public static let EADDRINUSE = Errno(Glibc.EADDRINUSE)
    public static let EADDRNOTAVAIL = Errno(Glibc.EADDRNOTAVAIL)
    public static let ENETDOWN = Errno(Glibc.ENETDOWN)
    public static let ENETUNREACH = Errno(Glibc.ENETUNREACH)
    public static let ENOBUFS = Errno(Glibc.ENOBUFS)
    public static let ETIMEDOUT = Errno(Glibc.ETIMEDOUT)
    public static let EHOSTUNREACH = Errno(Glibc.EHOSTUNREACH)
    public static let EROFS = Errno(Glibc.EROFS)
    /// On Linux the same number as EOPNOTSUPP.
    public static let ENOTSUP = EOPNOTSUPP

    /// The symbol, `EEXIST`; `errno N` for one tund does not expect.
    public var name: String {
        switch self {
        case .EPERM: "EPERM"
        case .ENOENT: "ENOENT"
        case .ESRCH: "ESRCH"
        case .EINTR: "EINTR"
        case .EIO: "EIO"
        case .EBADF: "EBADF"
        case .EAGAIN: "EAGAIN"
        case .ENOMEM: "ENOMEM"
        case .EACCES: "EACCES"
        case .EBUSY: "EBUSY"
        case .EEXIST: "EEXIST"
        case .ENODEV: "ENODEV"
        case .EINVAL: "EINVAL"
        case .ENFILE: "ENFILE"
        case .EMFILE: "EMFILE"
        case .ENOSPC: "ENOSPC"
        case .ERANGE: "ERANGE"
        case .ENOSYS: "ENOSYS"
        case .EPROTO: "EPROTO"
        case .EMSGSIZE: "EMSGSIZE"
        case .EPROTONOSUPPORT: "EPROTONOSUPPORT"
        case .EOPNOTSUPP: "EOPNOTSUPP"
        case .EAFNOSUPPORT: "EAFNOSUPPORT"
        case .EADDRINUSE: "EADDRINUSE"
        case .EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case .ENETDOWN: "ENETDOWN"
        case .ENETUNREACH: "ENETUNREACH"
        case .ENOBUFS: "ENOBUFS"
        case .ETIMEDOUT: "ETIMEDOUT"
        case .EHOSTUNREACH: "EHOSTUNREACH"
        case .EROFS: "EROFS"
        default: "errno \(rawValue)"
        }
    }

    public var description: String { name }
}
