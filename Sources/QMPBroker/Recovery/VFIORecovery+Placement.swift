import QMPSessions

/// Where a watched device sits in the guest, learnt from QOM as management would: its
/// QEMU type and the port above it (`parent_bus`). QEMU 7.2 cannot take an injected
/// error at every device (SPEC 9: e1000e drops it; a vfio-pci device's AER capability is
/// the host's, passed through, not emulated), so errors for those go to the port above.
extension VFIORecovery {
    /// QEMU device types whose injected errors never reach the guest in QEMU 7.2.
    static let typesThatCannotReport: Set<String> = ["vfio-pci", "e1000e"]

    /// The device's QEMU type and parent bus, learnt (`VMBroker.learnPlacement`): a device
    /// that cannot report gets its errors at the port above, unless `inject-at` says where.
    func placed(_ device: WatchedDevice, type: String?, parentBus bus: String?) {
        device.qemuType = type
        if type == nil {
            logger.warning("watched device is absent from QEMU (no such QOM object): nothing to forward to, no link reset to see",
                           metadata: deviceMetadata(device))
        }
        device.portAbove = bus.flatMap(Self.portOwning(bus:))
        if !device.injectAtConfigured, let type, Self.typesThatCannotReport.contains(type), let port = device.portAbove {
            device.injectTarget = port
        }
        settleTriggerMode(of: device)
    }

    func injectTargetMissing(_ device: WatchedDevice) {
        logger.warning("inject-at names no QEMU device: injections there will be refused",
                       metadata: deviceMetadata(device).merging(["inject-at": "\(device.injectTarget)"], uniquingKeysWith: { $1 }))
    }

    /// `/machine/peripheral/ID` for a device with an id; anonymous devices are watched
    /// under their QOM path already.
    static func qomPath(of id: String) -> String {
        id.hasPrefix("/") ? id : "/machine/peripheral/\(id)"
    }

    /// The device id of the port that owns a bus (`/machine/peripheral/rp1/rp1` → `rp1`);
    /// nil for a root bus (`/machine/q35/pcie.0`), which has no port to report at.
    static func portOwning(bus: String) -> String? {
        var components = bus.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count > 2 else { return nil }
        components.removeLast()
        let owner = components.joined(separator: "/")
        // HMP finds injection targets by id: an anonymous port cannot be one.
        guard owner.hasPrefix("/machine/peripheral/") else { return nil }
        return VFIODiscovery.deviceID(forPath: owner)
    }
}
