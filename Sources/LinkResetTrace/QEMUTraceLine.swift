/// A line of QEMU's `log` trace backend (Debian's build) that matters for guest resets.
///
/// QEMU 7.2 prints trace events to its log target (stderr, `-D FILE`, or the HMP
/// `logfile`) as the bare event name and arguments, or, with `-msg timestamp=on`, with
/// a `TID@SECONDS.MICROSECONDS:` prefix glued to the name (formats read from the
/// 7.2.22 binary; lines captured from it):
///
///     pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40
///     12968@1795610769.786173:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40
///     vfio_pci_hot_reset  (0000:3b:00.0) one
///     vfio_pci_hot_reset_result 0000:3b:00.0 hot reset: Success
///     resettable_phase_enter_begin obj=0x56208b166100(System) count=0 type=0
///     resettable_phase_exit_end obj=0x56208b166100(System) count=0
///     monitor_qmp_cmd_in_band 17
///
/// The same target also receives non-trace `qemu_log` output (`-d guest_errors`, ...);
/// such lines, other trace events, and anything malformed parse to nil.
package struct QEMUTraceLine: Equatable, Sendable {
    /// The `TID@SECONDS.MICROSECONDS:` prefix QEMU adds with `-msg timestamp=on` (wall
    /// clock; the thread is the one that ran the guest access, e.g. a vCPU thread).
    package struct Origin: Equatable, Sendable {
        package let threadID: Int32
        package let seconds: Int64
        package let microseconds: Int32

        package init(threadID: Int32, seconds: Int64, microseconds: Int32) {
            self.threadID = threadID
            self.seconds = seconds
            self.microseconds = microseconds
        }
    }

    package enum Event: Equatable, Sendable {
        /// `pci_cfg_write`: the guest wrote a function's configuration space.
        case configWrite(PCIConfigAccess)
        /// `pci_cfg_read`: QEMU answered a configuration read.
        case configRead(PCIConfigAccess)
        /// `vfio_pci_hot_reset` (`(%s) %s`): QEMU asks the host for a bus reset of an assigned device.
        case vfioHotReset(host: String, scope: VFIOHotResetScope)
        /// `vfio_pci_hot_reset_result` (`%s hot reset: %s`): `Success` or the host's strerror text.
        case vfioHotResetResult(host: String, result: String)
        /// `resettable_phase_enter_begin` / `resettable_phase_exit_end` of the object typed
        /// `System` (the main system bus): the bracket around every device reset that a
        /// system reset (guest reboot, QMP `system_reset`) performs.
        case systemReset(SystemResetPhase)
        /// `monitor_qmp_cmd_in_band` (`%s`): QEMU dispatches an in-band QMP command; the
        /// argument is the command's `id` as JSON (empty without one). The broker's canary:
        /// it switches the event on, sends a command, and looks for that command's id.
        case qmpCommandInBand(id: String)
    }

    package let origin: Origin?
    package let event: Event

    package init(origin: Origin? = nil, event: Event) {
        self.origin = origin
        self.event = event
    }
}

/// Which QEMU path asked for a vfio hot reset (the second word of `vfio_pci_hot_reset`).
package enum VFIOHotResetScope: String, Sendable, Hashable, CaseIterable {
    /// `vfio_pci_hot_reset_one`, from the device's own reset (`vfio_pci_reset`) when FLR is
    /// not available: a guest SBR on the bridge above it, a guest FLR, or a system reset.
    case one
    /// `vfio_pci_hot_reset_multi`, from `vfio_reset_handler`: only ever a system reset.
    case multi
}

package enum SystemResetPhase: Sendable, Hashable {
    case begin
    case end
}
