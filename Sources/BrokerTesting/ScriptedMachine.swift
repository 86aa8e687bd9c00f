/// The devices a `ScriptedVMM` pretends to have, so the broker's attach-time questions get
/// QEMU 7.2's answers: `qom-list` of `/machine/peripheral`, `qom-get` of `type`,
/// `parent_bus` and `host`, and `query-pci` (bus numbers as firmware left them).
package struct ScriptedMachine: Sendable, Equatable {
    package struct Device: Sendable, Equatable {
        /// The qdev id: the device is `/machine/peripheral/ID` in QOM.
        package var id: String
        /// The QOM type (`vfio-pci`, `pcie-root-port`, ...).
        package var type: String
        /// QOM `parent_bus`: `/machine/q35/pcie.0` on the root bus, `/machine/peripheral/PORT/PORT` below a port.
        package var parentBus: String
        package var bus: UInt8
        package var slot: UInt8
        package var function: UInt8 = 0
        /// A bridge's secondary bus number (0: not programmed, `query-pci` lists nothing below it).
        package var secondaryBus: UInt8?
        /// `qom-get host` of a vfio-pci device.
        package var host: String?

        package init(id: String, type: String, parentBus: String, bus: UInt8, slot: UInt8, function: UInt8 = 0,
                    secondaryBus: UInt8? = nil, host: String? = nil) {
            self.id = id
            self.type = type
            self.parentBus = parentBus
            self.bus = bus
            self.slot = slot
            self.function = function
            self.secondaryBus = secondaryBus
            self.host = host
        }

        var isBridge: Bool { secondaryBus != nil }
    }

    package var devices: [Device]

    package init(devices: [Device] = []) { self.devices = devices }

    /// A q35 machine with one device behind the root port `port` at 00:SLOT.0 (bus 1), as
    /// the integration tests' QEMU has (`00:1c.0`).
    package static func deviceBehindRootPort(_ id: String = "dev0", type: String = "vfio-pci", host: String? = "0000:3b:00.0",
                                            port: String = "rp0", slot: UInt8 = 0x1C) -> ScriptedMachine {
        ScriptedMachine(devices: [
            Device(id: port, type: "pcie-root-port", parentBus: "/machine/q35/pcie.0", bus: 0, slot: slot, secondaryBus: 1),
            Device(id: id, type: type, parentBus: "/machine/peripheral/\(port)/\(port)", bus: 1, slot: 0,
                   host: type == "vfio-pci" ? host : nil),
        ])
    }

    // MARK: answers

    static let peripheral = "/machine/peripheral"

    func qomList(_ path: String) -> ScriptedReply {
        switch path {
        case Self.peripheral:
            let entries = [#"{"name": "type", "type": "string"}"#] + devices.map { #"{"name": "\#($0.id)", "type": "child<\#($0.type)>"}"# }
            return .success("[\(entries.joined(separator: ", "))]")
        case "/machine/peripheral-anon":
            return .success("[]")
        default:
            return device(at: path) == nil ? Self.notFound(path) : .success("[]")
        }
    }

    func qomGet(_ path: String, property: String) -> ScriptedReply {
        guard let device = device(at: path) else { return Self.notFound(path) }
        switch property {
        case "type": return .success(Self.quoted(device.type))
        case "parent_bus": return .success(Self.quoted(device.parentBus))
        case "host" where device.type == "vfio-pci": return .success(Self.quoted(device.host ?? ""))
        case "sysfsdev" where device.type == "vfio-pci": return .success(#""""#)
        default: return .error(class: "GenericError", desc: "Property '\(device.type).\(property)' not found")
        }
    }

    /// HMP `pcie_aer_inject_error [-a] [-c] ID ERROR`: QEMU's text for a device it has, or its refusal.
    func injectError(commandLine: String) -> String {
        let words = commandLine.split(separator: " ").dropFirst().filter { !$0.hasPrefix("-") }
        let id = words.first.map(String.init) ?? ""
        guard let device = devices.first(where: { $0.id == id }) else {
            return "id or pci device path is invalid or device not found. \(id)\r\n"
        }
        let hex = { (value: UInt8) in String(value, radix: 16) }
        return "OK id: \(id) root bus: 0000:00, bus: \(hex(device.bus)) devfn: \(hex(device.slot)).\(hex(device.function))\r\n"
    }

    /// `[PciInfo]` for bus 0: a bridge lists the devices on its secondary bus when that is programmed.
    var queryPCI: String {
        #"[{"bus": 0, "devices": [\#(pciDevices(onBus: 0))]}]"#
    }

    private func pciDevices(onBus bus: UInt8) -> String {
        devices.filter { $0.bus == bus }.map(pciDevice).joined(separator: ", ")
    }

    private func pciDevice(_ device: Device) -> String {
        let classCode = device.isBridge ? 1540 : 255
        var text = #"{"bus": \#(device.bus), "slot": \#(device.slot), "function": \#(device.function), "#
            + #""class_info": {"class": \#(classCode)}, "qdev_id": "\#(device.id)""#
        if let secondary = device.secondaryBus {
            let subordinate = subordinateBus(below: device)
            text += #", "pci_bridge": {"bus": {"number": \#(device.bus), "secondary": \#(secondary), "subordinate": \#(subordinate)}"#
            if secondary != 0 { text += #", "devices": [\#(pciDevices(onBus: secondary))]"# }
            text += "}"
        }
        return text + "}"
    }

    private func subordinateBus(below bridge: Device) -> UInt8 {
        guard let secondary = bridge.secondaryBus, secondary != 0 else { return 0 }
        return devices.filter { $0.bus == secondary && $0.isBridge }.map(subordinateBus(below:)).reduce(secondary, max)
    }

    private func device(at path: String) -> Device? {
        devices.first { "\(Self.peripheral)/\($0.id)" == path }
    }

    private static func notFound(_ path: String) -> ScriptedReply {
        .error(class: "DeviceNotFound", desc: "Device '\(path)' not found")
    }

    private static func quoted(_ text: String) -> String { "\"\(text)\"" }
}
