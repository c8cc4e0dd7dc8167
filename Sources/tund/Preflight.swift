#if canImport(Glibc)
import Glibc
#endif
import TundHTTP

/// Start-up checks that turn a later, obscure failure into one clear sentence.
enum Preflight {
    /// CAP_NET_ADMIN is bit 12 of the effective capability set (/proc/self/status, CapEff).
    static func missingNetAdmin() -> Bool {
        guard let status = try? readFile("/proc/self/status") else { return false }
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            guard let mask = UInt64(line.dropFirst("CapEff:".count).trimmingSpaces(), radix: 16) else { return false }
            return mask & (1 << 12) == 0
        }
        return false
    }

    /// Raises the soft limit on open descriptors to the hard one: every device tund holds costs a descriptor
    /// per queue, and the usual soft limit (1024) would stop it near a thousand devices. Returns the limit.
    static func raiseDescriptorLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Why /dev/net/tun cannot be opened, or nil when it can.
    static func tunDeviceProblem() -> String? {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        if fd >= 0 {
            close(fd)
            return nil
        }
        switch errno {
        case ENOENT: return "/dev/net/tun does not exist: load the tun module (modprobe tun) or, in a container, mount the device"
        case EACCES, EPERM: return "/dev/net/tun cannot be opened (\(String(cString: strerror(errno)))): run as root or give the service user access to the device"
        default: return "/dev/net/tun cannot be opened: \(String(cString: strerror(errno)))"
        }
    }

    /// Creates the database's directory when missing (mode 0700: device configs are the operator's).
    static func prepareDirectory(forDatabase path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let directory = String(path[..<slash])
        guard !directory.isEmpty else { return nil }
        var components: [Substring] = []
        for component in directory.split(separator: "/", omittingEmptySubsequences: false) {
            components.append(component)
            let partial = components.joined(separator: "/")
            if partial.isEmpty { continue }
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                return "cannot create the database directory \(partial): \(String(cString: strerror(errno)))"
            }
        }
        // SQLite creates its WAL and shared-memory files beside the database, so the directory itself must
        // be writable even when the database exists; otherwise SQLite only says "unable to open database file".
        if access(directory, W_OK) != 0 {
            let reason = errno == EROFS ? "it is on a read-only file system" : String(cString: strerror(errno))
            return "the database directory \(directory) is not writable (\(reason)): tund keeps its database and SQLite's WAL files there; make it writable or choose another --database"
        }
        return nil
    }

    static func readFile(_ path: String) throws -> String {
        guard let file = fopen(path, "r") else { throw POSIXErrorCode(rawValue: errno).map { POSIXError($0) } ?? POSIXError(.EIO) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

struct POSIXError: Error {
    let code: POSIXErrorCode
    init(_ code: POSIXErrorCode) { self.code = code }
}
