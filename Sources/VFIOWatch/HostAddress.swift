/// A host PCI address in sysfs form, `DDDD:BB:DD.F` (e.g. `0000:3b:00.0`).
package struct HostAddress: Hashable, Sendable, CustomStringConvertible {
    package let domain: UInt16
    package let bus: UInt8
    package let device: UInt8
    package let function: UInt8

    package init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2 else { return nil }
        let slot = parts[2].split(separator: ".", omittingEmptySubsequences: false)
        guard slot.count == 2, slot[0].count == 2, slot[1].count == 1,
              let domain = UInt16(parts[0], radix: 16), let bus = UInt8(parts[1], radix: 16),
              let device = UInt8(slot[0], radix: 16), device < 32,
              let function = UInt8(slot[1], radix: 16), function < 8 else { return nil }
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Twelve ASCII bytes, a small string: no allocation (it names sysfs paths on the
    /// error path, before the `stop`).
    package var description: String {
        String(unsafeUninitializedCapacity: 12) { bytes in
            func hex(_ value: UInt64, _ width: Int, at start: Int) {
                for index in 0..<width {
                    let nibble = UInt8(truncatingIfNeeded: value >> (4 * UInt64(width - 1 - index))) & 0xf
                    bytes[start + index] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
                }
            }
            hex(UInt64(domain), 4, at: 0)
            bytes[4] = UInt8(ascii: ":")
            hex(UInt64(bus), 2, at: 5)
            bytes[7] = UInt8(ascii: ":")
            hex(UInt64(device), 2, at: 8)
            bytes[10] = UInt8(ascii: ".")
            hex(UInt64(function), 1, at: 11)
            return 12
        }
    }
}
