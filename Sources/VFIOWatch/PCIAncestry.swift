import Glibc

/// The PCI functions above a device, from where sysfs places it:
/// `<sysfs>/bus/pci/devices/0000:01:00.0` links to
/// `<sysfs>/devices/pci0000:00/0000:00:01.0/0000:01:00.0`, so the ports above are the
/// PCI addresses on the way down from the host bridge.
///
/// On a real host an error that a port reports about its link moves only that port's
/// counters (SPEC 10), so a device's errors are read from it and from every port above.
package enum PCIAncestry {
    /// The ports above `host`, nearest first (the root port last); empty when sysfs has no
    /// hierarchy (a directory instead of a link, as in a flat test tree) or no such device.
    package static func portsAbove(_ host: HostAddress, sysfsRoot: String) -> [HostAddress] {
        let link = SysfsAERReader(sysfsRoot: sysfsRoot).directory(of: host)
        guard let resolved = realpath(link, nil) else { return [] }
        defer { free(resolved) }
        return ports(inResolvedPath: String(cString: resolved), below: host)
    }

    /// The PCI addresses in a resolved sysfs path before `host`, nearest first.
    package static func ports(inResolvedPath path: String, below host: HostAddress) -> [HostAddress] {
        let addresses = path.split(separator: "/").compactMap { HostAddress(String($0)) }
        guard addresses.last == host else { return [] }
        return addresses.dropLast().reversed()
    }
}
