import QMPSessions

/// Where a watched device sits in the guest, learnt from QOM as management would: its
/// QEMU type and the port above it (`parent_bus`). QEMU 7.2 cannot take an injected
/// error at every device (SPEC 9: e1000e drops it; a vfio-pci device's AER capability is
/// the host's, passed through, not emulated), so errors for those go to the port above.
extension VFIORecovery {
    /// QEMU device types whose injected errors never reach the guest in QEMU 7.2.
    static let typesThatCannotReport: Set<String> = ["vfio-pci", "e1000e"]

    /// Reads the device's type and parent bus; `done` runs once both are known (or not).
    func learnPlacement(of device: WatchedDevice, done: @escaping () -> Void = {}) {
        let path = Self.qomPath(of: device.id)
        property("type", of: path) { [weak self, weak device] type in
            self?.property("parent_bus", of: path) { bus in
                guard let self, let device, self.devices[device.id] === device else { return }
                device.qemuType = type
                if type == nil {
                    self.logger.warning("watched device is absent from QEMU (no such QOM object): nothing to forward to, no link reset to see",
                                        metadata: self.deviceMetadata(device))
                }
                if device.injectAtConfigured {
                    self.property("type", of: Self.qomPath(of: device.injectTarget)) { [weak self] targetType in
                        guard let self, targetType == nil else { return }
                        self.logger.warning("inject-at names no QEMU device: injections there will be refused",
                                            metadata: self.deviceMetadata(device).merging(["inject-at": "\(device.injectTarget)"],
                                                                                         uniquingKeysWith: { $1 }))
                    }
                }
                device.portAbove = bus.flatMap(Self.portOwning(bus:))
                if !device.injectAtConfigured, let type, Self.typesThatCannotReport.contains(type),
                   let port = device.portAbove {
                    device.injectTarget = port
                }
                self.settleTriggerMode(of: device)
                done()
            }
        }
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

    /// One QOM property as a string, nil if QEMU has none.
    func property(_ name: String, of path: String, for purpose: BrokerPurpose = .learnPlacement,
                  _ completion: @escaping (String?) -> Void) {
        commands.execute("qom-get", arguments: .object(["path": .string(path), "property": .string(name)]),
                            for: purpose) { reply in
            guard case .reply(let line) = reply else { return completion(nil) }
            completion(line.json?["return"]?.string)
        }
    }
}
