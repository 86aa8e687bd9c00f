import ErrorEvents
import Glibc
import Logging
import Testing
import VFIOWatch

/// A sysfs shaped like the real one: `devices/pci0000:00/<root port>/<device>` directories
/// and `bus/pci/devices/<address>` links to them, as in the nested host of SPEC 10.
struct FakeSysfsHierarchy {
    let root: TemporaryDirectory
    let device: HostAddress
    let rootPort: HostAddress

    init(device: String = "0000:01:00.0", rootPort: String = "0000:00:01.0") throws {
        root = try TemporaryDirectory()
        self.device = try #require(HostAddress(device))
        self.rootPort = try #require(HostAddress(rootPort))
        try root.makeDirectory("bus/pci/devices")
        try root.makeDirectory("devices/pci0000:00/\(rootPort)/\(device)")
        for (address, path) in [(rootPort, "pci0000:00/\(rootPort)"), (device, "pci0000:00/\(rootPort)/\(device)")] {
            #expect(symlink("../../../devices/\(path)", "\(root.path)/bus/pci/devices/\(address)") == 0)
        }
        for function in [self.device, self.rootPort] {
            for severity in Severity.allCases { try write(severity, of: function) }
        }
        for severity in Severity.allCases { try writeTotal(severity, 0) }
    }

    var reader: SysfsAERReader { SysfsAERReader(sysfsRoot: root.path) }

    func path(of function: HostAddress) -> String {
        function == rootPort ? "devices/pci0000:00/\(rootPort)" : "devices/pci0000:00/\(rootPort)/\(device)"
    }

    func write(_ severity: Severity, of function: HostAddress, bits: [Int: UInt64] = [:], total: UInt64 = 0) throws {
        try root.write("\(path(of: function))/\(AERCounters.fileName(for: severity))",
                       KernelAERFile.text(severity, bits: bits, total: total))
    }

    func writeTotal(_ severity: Severity, _ count: UInt64) throws {
        try root.write("\(path(of: rootPort))/\(RootPortErrorTotals.fileName(for: severity))", "\(count)\n")
    }

    func counters() -> DeviceAERCounters {
        DeviceAERCounters(host: device, reader: reader, logger: Logger(label: "test"))
    }
}

@Suite struct DeviceAERCountersTests {
    @Test func thePortsAboveComeFromWhereSysfsPlacesTheDevice() throws {
        let tree = try FakeSysfsHierarchy()
        #expect(PCIAncestry.portsAbove(tree.device, sysfsRoot: tree.root.path) == [tree.rootPort])
        #expect(PCIAncestry.portsAbove(tree.rootPort, sysfsRoot: tree.root.path) == [])
        let deep = "/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0/0000:03:01.0/0000:04:00.1"
        #expect(PCIAncestry.ports(inResolvedPath: deep, below: HostAddress("0000:04:00.1")!)
                == ["0000:03:01.0", "0000:02:00.0", "0000:00:1c.0"].map { HostAddress($0)! })
        // A flat tree (a directory, not a link) has no hierarchy to read.
        let flat = try FakeSysfsDevice()
        #expect(PCIAncestry.portsAbove(flat.host, sysfsRoot: flat.root.path) == [])
    }

    @Test func anErrorThePortAboveReportsIsTheDevicesError() throws {
        // SPEC 10: HMP `pcie_aer_inject_error rp1 0x4000` moves only rp1's aer_dev_nonfatal.
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        try tree.write(.nonFatal, of: tree.rootPort, bits: [14: 1], total: 1)
        try tree.writeTotal(.nonFatal, 1)
        let errors = counters.poll(notified: true)
        #expect(errors.map(\.severity) == [.nonFatal])
        #expect(errors.first?.errors.map(\.name) == ["CmpltTO"])
        #expect(errors.first?.reporters == [tree.rootPort])
        #expect(errors.first?.notes == ["counted at \(tree.rootPort), the port above"])
        // A periodic poll reads the port too.
        try tree.write(.fatal, of: tree.rootPort, bits: [4: 1], total: 1)
        #expect(counters.poll(notified: false).map(\.severity) == [.fatal])
    }

    @Test func anErrorAVFsPFReportsIsTheVFsError() throws {
        // Kernel 6.12, igb PF 01:00.0 with VF 01:10.0 on vfio-pci (Tests/HostE2E): a CmpltTO
        // the PF reports (aer_inject) moves only the PF's aer_dev_nonfatal and the root port's
        // total, and the host recovers every function on the link, the VF too.
        let tree = try FakeSysfsHierarchy(device: "0000:01:10.0")
        let pf = try #require(HostAddress("0000:01:00.0"))
        let pfPath = "devices/pci0000:00/\(tree.rootPort)/\(pf)"
        try tree.root.makeDirectory(pfPath)
        try tree.root.symlink("bus/pci/devices/\(pf)", to: "../../../\(pfPath)")
        try tree.root.symlink("\(tree.path(of: tree.device))/physfn", to: "../\(pf)")
        for severity in Severity.allCases {
            try tree.root.write("\(pfPath)/\(AERCounters.fileName(for: severity))", KernelAERFile.text(severity))
        }
        #expect(PCIAncestry.physicalFunction(of: tree.device, sysfsRoot: tree.root.path) == pf)
        #expect(PCIAncestry.physicalFunction(of: pf, sysfsRoot: tree.root.path) == nil)
        var counters = tree.counters()
        #expect(counters.physicalFunction == pf)
        try tree.root.write("\(pfPath)/\(AERCounters.fileName(for: .nonFatal))", KernelAERFile.text(.nonFatal, bits: [14: 1], total: 1))
        try tree.writeTotal(.nonFatal, 1)
        let errors = counters.poll(notified: true)
        #expect(errors.map(\.severity) == [.nonFatal])
        #expect(errors.first?.errors.map(\.name) == ["CmpltTO"])
        #expect(errors.first?.reporters == [pf])
        #expect(errors.first?.notes == ["reported by \(pf), the VF's PF"])
        // Its baseline is kept with the others', so a restarted broker catches up on it too.
        #expect(counters.baselineText.contains("\(pf) non-fatal CmpltTO 1"))
    }

    @Test func anErrorAnotherVFOfThePFReportsIsTheVFsError() throws {
        // The same link: the PF 01:00.0 with VFs 01:10.0 (watched) and 01:10.2.
        let tree = try FakeSysfsHierarchy(device: "0000:01:10.0")
        let pf = try #require(HostAddress("0000:01:00.0"))
        let sibling = try #require(HostAddress("0000:01:10.2"))
        for function in [pf, sibling] {
            let path = "devices/pci0000:00/\(tree.rootPort)/\(function)"
            try tree.root.makeDirectory(path)
            try tree.root.symlink("bus/pci/devices/\(function)", to: "../../../\(path)")
            for severity in Severity.allCases {
                try tree.root.write("\(path)/\(AERCounters.fileName(for: severity))", KernelAERFile.text(severity))
            }
        }
        let pfPath = "devices/pci0000:00/\(tree.rootPort)/\(pf)"
        try tree.root.symlink("\(tree.path(of: tree.device))/physfn", to: "../\(pf)")
        try tree.root.symlink("\(pfPath)/virtfn0", to: "../\(tree.device)")
        try tree.root.symlink("\(pfPath)/virtfn1", to: "../\(sibling)")
        #expect(PCIAncestry.virtualFunctions(of: pf, sysfsRoot: tree.root.path) == [tree.device, sibling])
        var counters = tree.counters()
        #expect(counters.siblingFunctions == [sibling])
        let siblingPath = "devices/pci0000:00/\(tree.rootPort)/\(sibling)"
        try tree.root.write("\(siblingPath)/\(AERCounters.fileName(for: .nonFatal))", KernelAERFile.text(.nonFatal, bits: [14: 1], total: 1))
        let errors = counters.poll(notified: true)
        #expect(errors.first?.errors.map(\.name) == ["CmpltTO"])
        #expect(errors.first?.reporters == [sibling])
        #expect(errors.first?.notes == ["reported by \(sibling), another VF of \(pf)"])
    }

    @Test func aDeviceThatIsNoVFHasNoPhysicalFunction() throws {
        let tree = try FakeSysfsHierarchy()
        #expect(tree.counters().physicalFunction == nil)
    }

    @Test func anEndpointFatalErrorSeenOnlyInTheRootPortTotalsIsFatal() throws {
        // SPEC 10: no aer_dev_* file moves (type=Inaccessible), only aer_rootport_total_err_fatal.
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        try tree.writeTotal(.fatal, 1)
        let errors = counters.poll(notified: true)
        #expect(errors.map(\.severity) == [.fatal])
        #expect(errors.first?.errors == [])
        #expect(errors.first?.reporters == [tree.rootPort])
        #expect(errors.first?.notes == ["counted only in \(tree.rootPort)'s aer_rootport_total_err_fatal"])
        // Consumed: the next notification with nothing new finds nothing.
        #expect(counters.poll(notified: true).isEmpty)
    }

    @Test func rootPortTotalsAloneAreNotBlamedOnTheDeviceWithoutANotification() throws {
        // The totals count every device below the root port; a periodic poll leaves them
        // for the next notification of this device.
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        try tree.writeTotal(.fatal, 1)
        #expect(counters.poll(notified: false).isEmpty)
        #expect(counters.poll(notified: true).map(\.severity) == [.fatal])
    }

    @Test func namedCountersWinOverTheRootPortTotals() throws {
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        try tree.write(.nonFatal, of: tree.device, bits: [14: 1], total: 1)
        try tree.writeTotal(.nonFatal, 1)
        try tree.writeTotal(.fatal, 1)  // some other device's, long ago
        #expect(counters.poll(notified: true).map(\.severity) == [.nonFatal])
    }

    @Test func theStatusBitLeftByAFatalErrorIsNotCountedAgain() throws {
        // SPEC 10: QEMU's root port keeps DLP after a fatal error; the next non-fatal error
        // reports status 0x4010 and counts DLP under aer_dev_nonfatal.
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        try tree.write(.fatal, of: tree.rootPort, bits: [4: 1], total: 1)
        #expect(counters.poll(notified: true).first?.errors.map(\.name) == ["DLP"])
        try tree.write(.nonFatal, of: tree.rootPort, bits: [4: 1, 14: 1], total: 1)
        let errors = counters.poll(notified: true)
        #expect(errors.map(\.severity) == [.nonFatal])
        #expect(errors.first?.errors.map(\.name) == ["CmpltTO"])
        #expect(errors.first?.notes.contains("DLP on \(tree.rootPort) is the status left set by the earlier fatal error") == true)
        // A non-fatal DLP on its own is taken as what it says.
        try tree.write(.nonFatal, of: tree.rootPort, bits: [4: 2, 14: 1], total: 2)
        #expect(counters.poll(notified: true).first?.errors.map(\.name) == ["DLP"])
    }

    @Test func nothingMovedAnywhereIsNoError() throws {
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        #expect(counters.poll(notified: true).isEmpty)
        #expect(counters.hasAERCounters)
    }

    @Test func theSameErrorCountedByDeviceAndPortIsMergedIntoOne() throws {
        let tree = try FakeSysfsHierarchy()
        var counters = tree.counters()
        try tree.write(.nonFatal, of: tree.device, bits: [14: 1], total: 1)
        try tree.write(.nonFatal, of: tree.rootPort, bits: [14: 1, 15: 1], total: 1)
        let errors = counters.poll(notified: true)
        #expect(errors.count == 1)
        #expect(errors.first?.errors.map(\.name) == ["CmpltTO", "CmpltAbrt"])
        #expect(errors.first?.errors.first?.count == 2)
        #expect(errors.first?.count == 2)
        #expect(errors.first?.reporters == [tree.device, tree.rootPort])
    }
}
