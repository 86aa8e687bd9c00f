import QMPWire
import VFIOWatch

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

    /// The id and host address of a vfio-pci device a `device_add` asks for; nil for any
    /// other device, or one without an id (anonymous devices are found by the QOM walk).
    static func addedVFIODevice(_ arguments: JSON?) -> (id: String, host: String)? {
        guard let arguments, arguments["driver"]?.string == vfioPCIType,
              let id = arguments["id"]?.string, !id.isEmpty,
              let host = hostAddress(host: arguments["host"]?.string, sysfsdev: arguments["sysfsdev"]?.string)
        else { return nil }
        return (id, host)
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
            return
        }
        // QOM already said vfio-pci: no need to wait for the placement to take it over.
        if let device = devices[id] { takeOverRealized(device) }
    }

    /// QEMU answered a `device_add` of a vfio-pci device: it realized the device and armed
    /// its own ERR handler, which stops the VM on any uncorrectable error. The trigger is
    /// taken over now, before the client hears the answer and before the QOM walk; the
    /// placement is learnt afterwards.
    func vfioDeviceAdded(id: String, host: String) {
        if let device = devices[id] {
            // Configured (or already found) and now plugged: QEMU has it as a vfio-pci.
            guard device.host.description == host || HostAddress(host) == device.host else {
                logger.warning("device_add names another host address than the watched device's",
                               metadata: deviceMetadata(device).merging(["added-host": "\(host)"], uniquingKeysWith: { $1 }))
                return
            }
            takeOverRealized(device)
            ask(.learnPlacement(device: id))
            return
        }
        do throws(QMPError) {
            try addDevice(id: id, host: host, policy: .default, injectAt: nil, origin: "discovered")
        } catch {
            logger.warning("added vfio-pci device not watched", metadata: ["device": "\(id)", "reason": "\(error.desc)"])
            return
        }
        if let device = devices[id] { takeOverRealized(device) }
    }

    /// A device known to be a realized vfio-pci in QEMU: its trigger is taken over unless
    /// configured otherwise.
    private func takeOverRealized(_ device: WatchedDevice) {
        guard !device.triggerModeConfigured || device.triggerMode == .takeover else { return }
        if !device.triggerModeConfigured { device.triggerMode = .takeover }
        guard device.trigger == nil else { return }
        takeTriggerOverSayingSo(device)
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
