extension CNIPlugin {
    /// DEL: idempotent, as the spec asks -- the device and the lease may each be gone already (a DEL
    /// repeated, an ADD that failed half-way, a namespace removed with its interfaces). The device goes
    /// first: its address is released only once nothing holds it.
    func delete() throws(CNIError) {
        try TundDevices(config: config).delete(deviceName)
        do {
            try ipam?.delete()
        } catch where Self.isNotFound(error) {
        }
    }

    /// An IPAM plugin saying there was nothing to release: code 3 ("container unknown or does not
    /// exist"), or a plain error saying "not found", which some plugins print for an unknown lease.
    static func isNotFound(_ error: CNIError) -> Bool {
        error.code == 3 || error.msg.lowercased().contains("not found")
    }
}
