import LinkResetTrace

/// A configuration the broker refuses at startup rather than run with a protection off.
package struct ConfigurationProblem: Error, CustomStringConvertible, Equatable {
    package let description: String
}

extension VMConfiguration {
    /// Refuses what would later fail silently: an `inject-at` QEMU would not take as a
    /// device id (it is pasted into an HMP command line), a trace log path QEMU's
    /// `logfile` cannot take (guest link resets would go unseen).
    package func validate() throws(ConfigurationProblem) {
        for device in recovery.devices {
            if let target = device.injectAt, !QEMUDeviceID.isWellFormed(target) {
                throw ConfigurationProblem(description: "vm \(name), device \(device.id): inject-at '\(target)' is not "
                    + "a QEMU device id (a letter, then letters, digits, '-', '.' or '_')")
            }
        }
        if let path = traceLogPath, !LinkResetTracing.isUsableLogPath(path) {
            throw ConfigurationProblem(description: "vm \(name): trace log path '\(path)' cannot be given to QEMU's "
                + "logfile (it must be absolute, without '\"', '\\\\', '%' or control characters)")
        }
    }
}
