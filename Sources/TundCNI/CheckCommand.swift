extension CNIPlugin {
    /// CHECK: the device tund has must match the previous ADD's result (`prevResult`), then the IPAM
    /// plugin checks its own state.
    func check() throws(CNIError) {
        guard CNIVersion.hasCheck(config.cniVersion) else {
            throw CNIError(code: CNIError.incompatibleVersion, msg: "CHECK needs cniVersion 0.4.0 or later, not \(config.cniVersion)")
        }
        guard let prevResult = config.prevResult else {
            throw CNIError(code: CNIError.invalidConfig, msg: "invalid network configuration: CHECK needs prevResult")
        }
        let previous = try IPAMResult(prevResult, what: "prevResult")
        guard let device = try TundDevices(config: config).get(deviceName) else {
            throw CNIError(code: CNIError.checkFailed, msg: "tund has no device \(deviceName)")
        }
        let problems = DeviceCheck.problems(device: device, environment: environment, previous: previous)
        guard problems.isEmpty else {
            throw CNIError(code: CNIError.checkFailed, msg: "the device \(deviceName) does not match: \(problems.joined(separator: "; "))")
        }
        try ipam?.check()
    }
}
