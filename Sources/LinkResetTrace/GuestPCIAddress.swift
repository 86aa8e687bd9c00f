/// A guest-visible PCI function as QEMU names it in traces and `query-pci`: `BB:DD.F`
/// (QEMU prints `%02x:%02x.%x`, no domain).
///
/// The bus number is the one the guest (or its firmware) programmed into the bridge
/// above the function, not a fixed property of the device: it is 0 until programmed and
/// changes when the guest renumbers. Only functions on the root bus (`00:..`) have an
/// address that no guest write can change. The host address of an assigned device is a
/// different thing (`HostAddress`, `DDDD:BB:DD.F`).
package struct GuestPCIAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    package let bus: UInt8
    package let slot: UInt8
    package let function: UInt8

    package init(bus: UInt8, slot: UInt8, function: UInt8) {
        precondition(slot < 32 && function < 8, "slot must be < 32 and function < 8")
        self.bus = bus
        self.slot = slot
        self.function = function
    }

    /// Parses `BB:DD.F` exactly as QEMU prints it (one or two hex digits for bus and slot).
    package init?(_ text: some StringProtocol) {
        var text = String(text)
        guard let parsed = text.withUTF8({ buffer -> GuestPCIAddress? in
            guard let base = buffer.baseAddress else { return nil }
            return Self.parse(TraceBytes(base: base, start: 0, end: buffer.count))
        }) else { return nil }
        self = parsed
    }

    /// The hand parser the trace reader uses on raw bytes.
    static func parse(_ bytes: TraceBytes) -> GuestPCIAddress? {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
              let dot = bytes.suffix(from: colon).firstIndex(of: UInt8(ascii: ".")),
              let bus = TraceHex.value(bytes.prefix(upTo: colon), maxDigits: 2),
              let slot = TraceHex.value(bytes.slice(colon + 1, dot), maxDigits: 2), slot < 32,
              let function = TraceHex.value(bytes.suffix(from: dot + 1), maxDigits: 1), function < 8
        else { return nil }
        return GuestPCIAddress(bus: UInt8(bus), slot: UInt8(slot), function: UInt8(function))
    }

    package static func < (lhs: GuestPCIAddress, rhs: GuestPCIAddress) -> Bool {
        (lhs.bus, lhs.slot, lhs.function) < (rhs.bus, rhs.slot, rhs.function)
    }

    package var description: String {
        "\(TraceHex.padded(bus, width: 2)):\(TraceHex.padded(slot, width: 2)).\(String(function, radix: 16))"
    }
}
