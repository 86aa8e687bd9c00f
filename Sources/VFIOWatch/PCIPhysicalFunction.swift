import EventLoop
import Glibc

/// The PF of an SR-IOV virtual function: sysfs links `<device>/physfn` to it
/// (`../0000:01:00.0`), and the PF links each VF as `virtfnN`. A VF shares its link with
/// its PF and the PF's other VFs: an error the PF reports (the host's AER core then
/// recovers every function on the link, the VF too) moves the PF's `aer_dev_*` files, not
/// the VF's and not the port's (measured on kernel 6.12 with an igb PF, Tests/HostE2E).
extension PCIAncestry {
    /// The PF of `host`, or nil when it is no VF (no `physfn` link) or there is no such device.
    package static func physicalFunction(of host: HostAddress, sysfsRoot: String) -> HostAddress? {
        let link = SysfsAERReader(sysfsRoot: sysfsRoot).directory(of: host) + "/physfn"
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(link, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return HostAddress(String(target.split(separator: "/").last ?? ""))
    }
}

extension PCIAncestry {
    /// The VFs of a PF (`<pf>/virtfnN` links), in N order; empty for a function that is no PF.
    package static func virtualFunctions(of physicalFunction: HostAddress, sysfsRoot: String) -> [HostAddress] {
        let directory = SysfsAERReader(sysfsRoot: sysfsRoot).directory(of: physicalFunction)
        var found: [(index: Int, address: HostAddress)] = []
        for name in DirectoryListing.names(directory) ?? [] {
            guard name.hasPrefix("virtfn"), let index = Int(name.dropFirst("virtfn".count)) else { continue }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(directory + "/" + name, &buffer, buffer.count - 1)
            guard length > 0 else { continue }
            let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let address = HostAddress(String(target.split(separator: "/").last ?? "")) { found.append((index, address)) }
        }
        return found.sorted { $0.index < $1.index }.map(\.address)
    }
}
