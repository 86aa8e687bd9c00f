@testable import LinkResetTrace
import Testing

extension GuestReset {
    /// The trace has no access width; these are the widths it implies for Bridge Control.
    @Suite struct BridgeControlEffectTests {
        private func effect(_ offset: UInt16, _ value: UInt32) -> BridgeControlEffect {
            BridgeControlEffect(PCIConfigAccess(model: "pcie-root-port", address: GuestPCIAddress(bus: 0, slot: 0x1C, function: 0),
                                                offset: offset, value: value))
        }

        @Test func wordOrByteAt0x3eIsExact() {
            #expect(effect(0x3E, 0x40) == .written(secondaryBusReset: true))
            #expect(effect(0x3E, 0x42) == .written(secondaryBusReset: true))
            #expect(effect(0x3E, 0x0842) == .written(secondaryBusReset: true))
            #expect(effect(0x3E, 0x2) == .written(secondaryBusReset: false))
            #expect(effect(0x3E, 0x0) == .written(secondaryBusReset: false))
            #expect(effect(0x3E, 0x4000) == .written(secondaryBusReset: false))  // bit 14 is not SBR
        }

        @Test func dwordAt0x3cWithUpperHalfIsExact() {
            #expect(effect(0x3C, 0x0040_0000) == .written(secondaryBusReset: true))
            #expect(effect(0x3C, 0x0042_010B) == .written(secondaryBusReset: true))
            #expect(effect(0x3C, 0x0002_0000) == .written(secondaryBusReset: false))
        }

        @Test func narrowValueAt0x3cOr0x3dMayHaveCleared() {
            // Interrupt line (byte), line + pin (word), or a dword writing Bridge Control as 0.
            #expect(effect(0x3C, 0x0B) == .maybeCleared)
            #expect(effect(0x3C, 0x010B) == .maybeCleared)
            #expect(effect(0x3C, 0) == .maybeCleared)
            #expect(effect(0x3D, 0x01) == .maybeCleared)
            // A word at 0x3d that reaches 0x3e.
            #expect(effect(0x3D, 0x4001) == .written(secondaryBusReset: true))
            #expect(effect(0x3D, 0x0201) == .written(secondaryBusReset: false))
        }

        @Test func otherOffsetsAreUntouched() {
            #expect(effect(0x3F, 0x40) == .untouched)  // upper byte of Bridge Control
            #expect(effect(0x3F, 0xFF) == .untouched)
            #expect(effect(0x3B, 0x40) == .untouched)
            #expect(effect(0x38, 0xFFFF_FFFF) == .untouched)
            #expect(effect(0x18, 0x10100) == .untouched)
            #expect(effect(0x40, 0x40) == .untouched)
            #expect(effect(0x04, 0x0040_0000) == .untouched)
        }

        @Test func impossibleWidthIsTakenAtFaceValue() {
            // No aligned access prints over 0xffff at 0x3e; better a false alarm than a miss.
            #expect(effect(0x3E, 0x0001_0040) == .written(secondaryBusReset: true))
        }
    }
}
