/// Turns traced configuration writes into Secondary Bus Reset transitions per bridge.
///
/// QEMU 7.2 resets a bridge's secondary bus exactly on a 0→1 transition of bit 0x40 of
/// Bridge Control (`pci_bridge_write_config`: "Trigger hot reset on 0->1 transition"),
/// so that is what `asserted` reports; `released` is the 1→0 write that ends the reset
/// (Linux's `pci_reset_secondary_bus` writes `ctrl | 0x40`, sleeps 2 ms, writes `ctrl`; a
/// 6.1 guest's AER recovery under TCG wrote `0x42`, then `0x2` ~8 ms later).
/// The trace names the bridge by `GuestPCIAddress`; which watched devices sit below it
/// is `PCITopology`'s business, and writes to non-bridges are harmless here because no
/// watched device is below them.
///
/// Conservative by design: a reset must never be missed, a duplicate is acceptable. A
/// bridge never seen is taken as not in reset. After a write that may have cleared the
/// bit (`BridgeControlEffect.maybeCleared`, a narrow write at 0x3c/0x3d) the state is
/// unknown, and the next write that sets the bit is reported as a new assertion.
///
/// Bridge Control also returns to 0 without any traced write: on a system reset (call
/// `forgetAll()`), and for every bridge below a bridge whose secondary bus was reset
/// (call `forget(_:)` with `PCITopology.bridges(below:)`). Call `forgetAll()` too when
/// the guest renumbers buses, since addresses then move between bridges.
package struct SecondaryBusResetDetector: Sendable {
    package enum Transition: Equatable, Sendable {
        /// The guest set Secondary Bus Reset: QEMU reset everything below this bridge.
        case asserted(bridge: GuestPCIAddress)
        /// The guest cleared it again: the link below is out of reset.
        case released(bridge: GuestPCIAddress)
    }

    private enum BridgeState {
        case inReset
        /// In reset until a write that may have cleared the bit; not known since.
        case unknown
    }

    /// Only bridges not known to be out of reset are stored, so the table stays small.
    private var bridges: [GuestPCIAddress: BridgeState] = [:]

    package init() {}

    /// The transition `write` makes, if any.
    package mutating func observe(_ write: PCIConfigAccess) -> Transition? {
        let address = write.address
        switch BridgeControlEffect(write) {
        case .untouched:
            return nil
        case .written(secondaryBusReset: true):
            switch bridges.updateValue(.inReset, forKey: address) {
            case .inReset: return nil
            case .unknown, nil: return .asserted(bridge: address)
            }
        case .written(secondaryBusReset: false):
            return bridges.removeValue(forKey: address) == nil ? nil : .released(bridge: address)
        case .maybeCleared:
            if bridges[address] == .inReset { bridges[address] = .unknown }
            return nil
        }
    }

    /// Whether the bridge is (as far as the trace shows) holding its secondary bus in reset;
    /// nil when a write may have ended the reset without saying so.
    package func isInReset(_ bridge: GuestPCIAddress) -> Bool? {
        switch bridges[bridge] {
        case .inReset: true
        case .unknown: nil
        case nil: false
        }
    }

    /// These bridges were reset by something other than a traced write (a reset of the bus
    /// they sit on): their Bridge Control is 0 again.
    package mutating func forget(_ resetBridges: some Sequence<GuestPCIAddress>) {
        for bridge in resetBridges { bridges.removeValue(forKey: bridge) }
    }

    /// A system reset (QMP `RESET`, or the traced `systemReset` bracket) or a bus renumbering.
    package mutating func forgetAll() { bridges.removeAll() }
}
