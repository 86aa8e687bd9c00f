import QMPWire

extension PCITopology {
    /// Builds the tree from a `query-pci` answer: the whole reply (`{"return": [...]}`) or
    /// just its `return` array (`PciInfo` per root bus; `PciDeviceInfo` with `bus`, `slot`,
    /// `function`, `class_info.class`, `qdev_id` (`""` when the device has no id) and, for a
    /// bridge, `pci_bridge.bus.{secondary,subordinate}` and `pci_bridge.devices`, present only
    /// while the secondary bus number is not 0).
    package init(queryPCI reply: JSON) throws(DecodeError) {
        let buses = reply["return"] ?? reply
        guard buses.kind == .array else { throw DecodeError(description: "query-pci: expected an array of buses") }
        var builder = Builder()
        for bus in buses.elements {
            guard let devices = bus["devices"], devices.kind == .array else {
                throw DecodeError(description: "query-pci: bus without a devices array")
            }
            try builder.add(devices, parent: nil)
        }
        self.init(functions: builder.functions, parents: builder.parents, subtreeEnds: builder.subtreeEnds)
    }

    /// Depth-first collection, so each bridge's descendants are contiguous after it.
    private struct Builder {
        var functions: [Function] = []
        var parents: [Int?] = []
        var subtreeEnds: [Int] = []

        mutating func add(_ devices: JSON, parent: Int?) throws(DecodeError) {
            for device in devices.elements {
                let index = functions.count
                functions.append(try Self.function(device))
                parents.append(parent)
                subtreeEnds.append(index + 1)
                if let children = device["pci_bridge"]?["devices"], children.kind == .array {
                    try add(children, parent: index)
                }
                subtreeEnds[index] = functions.count
            }
        }

        static func function(_ device: JSON) throws(DecodeError) -> Function {
            guard let bus = byte(device["bus"]), let slot = byte(device["slot"]), slot < 32,
                  let function = byte(device["function"]), function < 8 else {
                throw DecodeError(description: "query-pci: device without a valid bus/slot/function: \(device)")
            }
            let id = device["qdev_id"]?.string ?? ""
            var bridge: BusRange?
            if let bridgeInfo = device["pci_bridge"] {
                guard let secondary = byte(bridgeInfo["bus"]?["secondary"]),
                      let subordinate = byte(bridgeInfo["bus"]?["subordinate"]) else {
                    throw DecodeError(description: "query-pci: bridge without bus numbers: \(device)")
                }
                bridge = BusRange(secondary: secondary, subordinate: subordinate)
            }
            let classCode = device["class_info"]?["class"]?.integer ?? 0
            return Function(address: GuestPCIAddress(bus: bus, slot: slot, function: function),
                            qdevID: id.isEmpty ? nil : id, classCode: UInt16(truncatingIfNeeded: classCode),
                            bridge: bridge)
        }

        static func byte(_ value: JSON?) -> UInt8? {
            guard let integer = value?.integer, (0...255).contains(integer) else { return nil }
            return UInt8(integer)
        }
    }
}
