/// Tells a guest-requested vfio hot reset from one that is part of a system reset, from
/// the trace stream alone, in order, with no timers.
///
/// In QEMU 7.2 every vfio device reset runs `vfio_pci_reset`, which uses FLR when it can
/// and otherwise a host bus reset (`vfio_pci_hot_reset ... one`). It runs for a guest SBR
/// on the bridge above the device, a guest FLR, and a system reset alike. A system reset
/// resets devices inside the `System` bracket (`resettable_phase_enter_begin` ...
/// `resettable_phase_exit_end` of the main system bus; seen on QMP `system_reset` and on
/// a guest reset through port 0xcf9), and then runs `vfio_reset_handler`, whose bus
/// resets print `multi`. QEMU sends the QMP `RESET` event only after all of that, on
/// another channel, so the event is useless for ordering; this bracket is in the stream.
///
/// A guest SBR also shows as `SecondaryBusResetDetector.Transition.asserted` on the bridge
/// (`guest-link-reset`); a hot reset `one` right after it is the same incident. A guest
/// hot reset with no SBR before it came from the guest resetting the device itself.
package struct HotResetClassifier: Sendable {
    package enum Verdict: Equatable, Sendable {
        /// QEMU reset the host link of this device because the guest asked.
        case guestHotReset(host: String)
        /// Part of a system reset (reboot): not a link reset.
        case systemReset(host: String)
    }

    /// True between the begin and the end of a system reset's device resets.
    package private(set) var insideSystemReset = false

    package init() {}

    /// The verdict for a hot reset line; other lines only move the bracket.
    package mutating func observe(_ event: QEMUTraceLine.Event) -> Verdict? {
        switch event {
        case .systemReset(.begin):
            insideSystemReset = true
        case .systemReset(.end):
            insideSystemReset = false
        case .vfioHotReset(let host, .multi):
            return .systemReset(host: host)
        case .vfioHotReset(let host, .one):
            return insideSystemReset ? .systemReset(host: host) : .guestHotReset(host: host)
        case .configWrite, .configRead, .vfioHotResetResult, .qmpCommandInBand:
            break
        }
        return nil
    }
}
