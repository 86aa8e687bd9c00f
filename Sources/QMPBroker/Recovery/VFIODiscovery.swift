import QMPWire

/// Finds the VM's `vfio-pci` devices through QOM, as a management tool would: list
/// `/machine/peripheral` (devices with an id) and `/machine/peripheral-anon`, keep the
/// children of type `child<vfio-pci>`, and read each one's `host` (or `sysfsdev`).
/// Runs at attach and after `device_add` (`VMBroker.discoverDevices`); every step is one
/// QMP command, awaited, so nothing blocks the VM's loop.
struct VFIODiscovery {
    static let containers = ["/machine/peripheral", "/machine/peripheral-anon"]
    static let vfioPCIType = "vfio-pci"
    static let vfioType = "child<\(vfioPCIType)>"

    struct Found: Equatable {
        /// The device id (`/machine/peripheral/ID`), or the QOM path of an anonymous device.
        let id: String
        let host: String
    }

    /// Children of a `qom-list` answer that are vfio-pci devices: their QOM paths.
    static func vfioChildren(of container: String, in listing: JSON) -> [String] {
        listing.elements.compactMap { entry in
            guard entry["type"]?.string == vfioType, let name = entry["name"]?.string else { return nil }
            return "\(container)/\(name)"
        }
    }

    /// The device id QEMU knows a child by: its name under `/machine/peripheral`; anonymous
    /// devices have none, so their QOM path stands in.
    static func deviceID(forPath path: String) -> String {
        let prefix = "/machine/peripheral/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    /// A host address from `qom-get host` ("0000:3b:00.0") or `qom-get sysfsdev`
    /// ("/sys/bus/pci/devices/0000:3b:00.0"); nil when neither is set.
    static func hostAddress(host: String?, sysfsdev: String?) -> String? {
        if let host, !host.isEmpty { return host }
        guard let sysfsdev, !sysfsdev.isEmpty else { return nil }
        return sysfsdev.split(separator: "/").last.map(String.init)
    }
}

extension VFIORecovery {
    /// A vfio-pci device found in QOM (`VMBroker.discoverDevices`): watched with the
    /// default policy, unless QEMU knows no host address for it.
    func discovered(id: String, path: String, host: String?) {
        guard let host else {
            logger.warning("vfio-pci device without a host address", metadata: ["path": "\(path)"])
            return
        }
        do throws(QMPError) {
            try addDevice(id: id, host: host, policy: .default, injectAt: nil, origin: "discovered")
        } catch {
            logger.warning("discovered device not watched", metadata: ["device": "\(id)", "reason": "\(error.desc)"])
        }
    }

    /// `DEVICE_DELETED`: QEMU let the device go, so the broker lets its handle go at once
    /// (a host unbind waits for it); a discovered device is no longer watched at all.
    func deviceDeleted(id: String?, path: String?) {
        let candidates = [id, path].compactMap { $0 }
        for candidate in candidates {
            guard let device = devices[candidate] else { continue }
            releaseTrigger(of: device)
            guard device.origin == "discovered" else { continue }
            try? removeDevice(id: candidate)
            logger.info("stopped watching a deleted device", metadata: ["device": "\(candidate)"])
        }
    }
}
