/// The QEMU the demo and the tests run: q35 under TCG, paused (`-S`), no defaults, a
/// PCIe root port at 00:1c.0 with an AER-capable device behind it (SPEC section 9:
/// `virtio-*-pci,aer=on` delivers injected errors; `e1000e` silently drops them).
package struct QEMUCommandLine: Sendable {
    package var binary = "qemu-system-x86_64"
    package var qmpSocket: String
    package var qtestSocket: String?
    package var rootPortID = "rp0"
    package var deviceID = "dev0"
    /// The guest-visible device standing in for an assigned VFIO device.
    package var deviceModel = "virtio-rng-pci,aer=on"
    package var paused = true
    package var extra: [String] = []

    package init(qmpSocket: String, qtestSocket: String? = nil) {
        self.qmpSocket = qmpSocket
        self.qtestSocket = qtestSocket
    }

    package var arguments: [String] {
        var arguments = [
            binary, "-M", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-m", "128",
            "-qmp", "unix:\(qmpSocket),server=on,wait=off",
            // Native PCIe hotplug on the root port, so a guest's link reset can complete (SPEC 9).
            "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
            "-device", "pcie-root-port,id=\(rootPortID),bus=pcie.0,chassis=1,addr=1c.0",
            "-device", "\(deviceModel),id=\(deviceID),bus=\(rootPortID)",
        ]
        if paused { arguments.append("-S") }
        if let qtestSocket { arguments += ["-qtest", "unix:\(qtestSocket),server=on,wait=off"] }
        return arguments + extra
    }
}
