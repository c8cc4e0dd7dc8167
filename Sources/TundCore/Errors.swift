@_exported import Errno

/// A kernel call that failed, as the adapters report it: which operation, its errno, and the kernel's
/// own explanation when netlink gave one.
public struct KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno
    public let kernelMessage: String?

    public init(operation: String, errno: Errno, kernelMessage: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.kernelMessage = kernelMessage
    }

    /// Symbolic errno, e.g. `EEXIST`, for messages and the API's `errno` field.
    public var errnoName: String { errno.name }

    public var description: String {
        "\(operation) failed with \(errnoName)" + (kernelMessage.map { ": \($0)" } ?? "")
    }
}

/// Everything a device operation can fail with, in the domain's terms. The API maps each case to an
/// HTTP status and a stable code once (TundAPI/ErrorMapping.swift).
public enum TundError: Error, Equatable, Sendable {
    /// A field of the request is wrong: which field, and why.
    case invalidField(field: String, reason: String)
    /// The request is not what the endpoint takes (bad JSON, wrong shape).
    case invalidRequest(String)
    case deviceExists(name: String)
    case deviceNotFound(name: String)
    /// A link of that name exists in the kernel and tund does not own it.
    case nameInUse(name: String)
    /// The kernel refused a valid request (e.g. gateway unreachable, route exists).
    case kernelRejected(KernelError)
    /// tund lacks CAP_NET_ADMIN or access to /dev/net/tun.
    case permissionDenied(KernelError)
    /// The kernel failed in a way that is not the client's fault.
    case kernelFailed(KernelError)
    case storageFailed(String)
    /// Restore has not finished; mutations would race with it.
    case notReady
    /// `If-Match` named a generation the device has moved past.
    case preconditionFailed(name: String, current: Int64)
    /// The device has no such address.
    case addressNotFound(String)
    /// The device has no route with that id.
    case routeNotFound(String)
    /// An `Idempotency-Key` reused for a different request, or for a device deleted since.
    case idempotencyKeyReused(String)
    /// The configured maximum number of devices exists already.
    case deviceLimitReached(limit: Int)
    /// A declared set changes something only a new device can have (type, queues, ...).
    case notLiveChangeable(field: String, reason: String)
    /// `If-Match` named a collection tag the set of devices has moved past.
    case collectionChanged(current: String)
    /// The namespace a request names cannot be opened (none at that path, or not a network namespace).
    case namespaceNotFound(netns: String, reason: String)
    /// The wireguard worker already has a peer with that public key.
    case peerExists
    /// The wireguard worker has no peer with that public key.
    case peerNotFound
    /// A peers operation on a device whose worker is not in mode wireguard: a conflict with its state.
    case notWireGuard(name: String)
    /// The device's namespace is gone: it can be read and deleted, not changed.
    case namespaceMissing(name: String, netns: String)

    /// Maps a kernel failure to the domain: errnos that mean "the request does not fit the system"
    /// become rejections, privilege errors stand apart, the rest are failures.
    public static func kernel(_ error: KernelError) -> TundError {
        switch error.errno {
        case .EPERM, .EACCES: .permissionDenied(error)
        case .EEXIST, .EBUSY, .EINVAL, .ENETUNREACH, .EHOSTUNREACH, .EADDRNOTAVAIL, .EADDRINUSE, .ENETDOWN, .ERANGE,
             .EAFNOSUPPORT, .EOPNOTSUPP, .ESRCH, .ENODEV, .ENOENT:
            .kernelRejected(error)
        default: .kernelFailed(error)
        }
    }
}

extension TundError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .invalidField(let field, let reason): "\(field): \(reason)"
        case .invalidRequest(let message): message
        case .deviceExists(let name): "device \(name) already exists"
        case .deviceNotFound(let name): "device \(name) does not exist"
        case .nameInUse(let name): "a network device named \(name) exists and is not managed by tund"
        case .kernelRejected(let error): "the kernel refused: \(error)"
        case .permissionDenied(let error): "permission denied (tund needs CAP_NET_ADMIN and access to /dev/net/tun): \(error)"
        case .kernelFailed(let error): "kernel error: \(error)"
        case .storageFailed(let message): "database error: \(message)"
        case .notReady: "tund is restoring its devices; try again shortly"
        case .preconditionFailed(let name, let current): "device \(name) has changed: its generation is now \(current)"
        case .addressNotFound(let message), .routeNotFound(let message): message
        case .idempotencyKeyReused(let message): message
        case .deviceLimitReached(let limit): "tund manages its maximum of \(limit) devices (--max-devices); delete one first"
        case .notLiveChangeable(let field, let reason): "\(field): \(reason)"
        case .collectionChanged(let current): "the set of devices has changed since it was read: its tag is now \(current)"
        case .peerExists: "the device has a peer with that public key already; PATCH /devices/{name}/peers/{public_key} changes it"
        case .peerNotFound: "the device has no peer with that public key"
        case .notWireGuard(let name): "device \(name) has no wireguard worker: peers belong to worker mode wireguard"
        case .namespaceNotFound(let netns, let reason): "netns: cannot use the network namespace \(netns): \(reason)"
        case .namespaceMissing(let name, let netns): "device \(name) lives in the network namespace \(netns), which is gone; it can only be deleted"
        }
    }
}
