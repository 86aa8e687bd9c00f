/// A kernel uevent as a `NETLINK_KOBJECT_UEVENT` socket receives it.
///
/// The kernel (lib/kobject_uevent.c) sends `ACTION@DEVPATH\0` followed by
/// `KEY=VALUE\0` pairs: `ACTION`, `DEVPATH`, `SUBSYSTEM`, the caller's keys, the
/// subsystem's keys, then `SEQNUM`. For AER recovery, `pci_uevent_ers()`
/// (drivers/pci/pci-driver.c) sends `change` with `ERROR_EVENT` and `DEVICE_ONLINE`, and
/// the PCI bus adds `PCI_SLOT_NAME` and friends.
package struct UEvent: Sendable, Hashable {
    /// `add`, `remove`, `change`, `move`, `online`, `offline`, `bind`, `unbind`.
    package let action: String
    /// Below `/sys`: `/devices/pci0000:00/0000:00:1c.0/0000:01:00.0`.
    package let devpath: String
    package let environment: [String: String]

    package init(action: String, devpath: String, environment: [String: String]) {
        self.action = action
        self.devpath = devpath
        self.environment = environment
    }

    package var subsystem: String? { environment["SUBSYSTEM"] }

    /// The kernel's event sequence number.
    package var sequenceNumber: UInt64? { environment["SEQNUM"].flatMap { UInt64($0) } }

    /// `ERROR_EVENT`: where the host's AER recovery of this device stands.
    package var errorEvent: PCIRecoveryEvent? { environment["ERROR_EVENT"].flatMap(PCIRecoveryEvent.init) }

    /// `DEVICE_ONLINE`: `1` after a successful recovery, `0` at its start and after a failure.
    package var deviceOnline: Bool? {
        switch environment["DEVICE_ONLINE"] {
        case "1": true
        case "0": false
        default: nil
        }
    }

    /// `PCI_SLOT_NAME` (`0000:01:00.0`): the device this uevent is about, for PCI uevents.
    package var pciSlotName: String? { environment["PCI_SLOT_NAME"] }

    /// `PCI_SLOT_NAME` parsed.
    package var pciAddress: HostAddress? { pciSlotName.flatMap(HostAddress.init) }
}

/// `ERROR_EVENT` of a PCI uevent, as `pci_uevent_ers()` sends it.
///
/// `beginRecovery` and `successfulRecovery` are sent for each device below the port
/// that recovers; `failedRecovery` is sent for the port (bridge) itself
/// (drivers/pci/pcie/err.c, `pcie_do_recovery`), so a watched device learns of a
/// failure through the port above it.
package enum PCIRecoveryEvent: String, Sendable, Hashable, CaseIterable {
    /// With `DEVICE_ONLINE=0`.
    case beginRecovery = "BEGIN_RECOVERY"
    /// With `DEVICE_ONLINE=1`.
    case successfulRecovery = "SUCCESSFUL_RECOVERY"
    /// With `DEVICE_ONLINE=0`.
    case failedRecovery = "FAILED_RECOVERY"
}

extension UEvent {
    /// What a datagram on a uevent socket turned out to be.
    package enum Datagram: Sendable, Hashable {
        case event(UEvent)
        /// udev's re-broadcast (`libudev\0` magic and a binary header): not the kernel's.
        case libudev
        case malformed(reason: String)
    }

    static let libudevMagic: [UInt8] = Array("libudev".utf8) + [0]

    /// Parses one datagram exactly as received.
    package static func parse(_ datagram: some Collection<UInt8>) -> Datagram {
        let bytes = Array(datagram)
        if bytes.starts(with: libudevMagic) { return .libudev }

        guard !bytes.isEmpty else { return .malformed(reason: "empty datagram") }
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: false)
        // The header is the first field itself, never a later one.
        let header = fields[0]
        let headerText = String(decoding: header, as: UTF8.self)
        guard let at = headerText.firstIndex(of: "@") else {
            return .malformed(reason: "no ACTION@DEVPATH header")
        }
        let action = String(headerText[..<at])
        let devpath = String(headerText[headerText.index(after: at)...])
        guard !action.isEmpty, devpath.hasPrefix("/") else {
            return .malformed(reason: "bad ACTION@DEVPATH header")
        }

        var environment: [String: String] = [:]
        // The datagram ends with a NUL, which leaves one empty field; skip empty ones.
        for field in fields.dropFirst() where !field.isEmpty {
            let text = String(decoding: field, as: UTF8.self)
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                return .malformed(reason: "environment entry without KEY=")
            }
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        // The kernel repeats the header in ACTION= and DEVPATH=; disagreement means garbage.
        guard environment["ACTION"].map({ $0 == action }) ?? true,
              environment["DEVPATH"].map({ $0 == devpath }) ?? true else {
            return .malformed(reason: "header and ACTION/DEVPATH disagree")
        }
        return .event(UEvent(action: action, devpath: devpath, environment: environment))
    }
}
