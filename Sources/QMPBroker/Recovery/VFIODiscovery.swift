import QMPWire

/// Finds the VM's `vfio-pci` devices through QOM, as a management tool would: list
/// `/machine/peripheral` (devices with an id) and `/machine/peripheral-anon`, keep the
/// children of type `child<vfio-pci>`, and read each one's `host` (or `sysfsdev`).
/// Runs at attach and after `device_add` / `DEVICE_DELETED`; every step is one QMP
/// command through the upstream link, so nothing blocks the VM's queue.
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
    /// Walks QOM for vfio-pci devices and watches those not yet known (policy `forward`).
    func discover() {
        for container in VFIODiscovery.containers {
            commands.execute("qom-list", arguments: .object(["path": .string(container)]), for: .discovery) {
                [weak self] reply in
                guard let self, case .reply(let line) = reply, let listing = line.json?["return"] else { return }
                for path in VFIODiscovery.vfioChildren(of: container, in: listing) { readHost(of: path) }
            }
        }
    }

    private func readHost(of path: String) {
        let id = VFIODiscovery.deviceID(forPath: path)
        guard devices[id] == nil else { return }
        property("host", of: path, for: .discovery) { [weak self] host in
            self?.property("sysfsdev", of: path, for: .discovery) { sysfsdev in
                guard let self, self.devices[id] == nil else { return }
                guard let address = VFIODiscovery.hostAddress(host: host, sysfsdev: sysfsdev) else {
                    self.logger.warning("vfio-pci device without a host address", metadata: ["path": "\(path)"])
                    return
                }
                do throws(QMPError) {
                    try self.addDevice(id: id, host: address, policy: .default, injectAt: nil, origin: "discovered")
                } catch {
                    self.logger.warning("discovered device not watched", metadata: ["device": "\(id)", "reason": "\(error.desc)"])
                }
            }
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
