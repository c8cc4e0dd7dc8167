import TundJSON

extension CNIPlugin {
    /// ADD: an address from IPAM, then the device from tund with it; if tund refuses, the lease is
    /// released again so a failed ADD leaves nothing behind.
    func add() throws(CNIError) -> JSONValue {
        let tund = try TundDevices(config: config)
        let allocated = try ipam?.add() ?? IPAMResult()
        let device: JSONValue
        do {
            device = try tund.create(DeviceBody.create(name: deviceName, environment: environment, config: config, ipam: allocated))
        } catch {
            // The error that matters to the runtime is tund's; a failed release is only noted with it.
            do {
                try ipam?.delete()
            } catch let release {
                throw CNIError(code: error.code, msg: error.msg, details: error.details + "; releasing the address failed too: \(release.msg)")
            }
            throw error
        }
        return CNIResult.add(cniVersion: config.cniVersion, environment: environment, mac: device["state"]?["mac"]?.stringValue, ipam: allocated)
    }
}
