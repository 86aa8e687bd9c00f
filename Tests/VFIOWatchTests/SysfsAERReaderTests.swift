import ErrorEvents
import Glibc
import Testing
import VFIOWatch

@Suite struct SysfsAERReaderTests {
    @Test func pathsFollowTheSysfsLayout() throws {
        let host = try #require(HostAddress("0000:3b:00.0"))
        #expect(SysfsAERReader().path(of: .fatal, for: host) == "/sys/bus/pci/devices/0000:3b:00.0/aer_dev_fatal")
        #expect(SysfsAERReader(sysfsRoot: "/tmp/fake/").directory(of: host) == "/tmp/fake/bus/pci/devices/0000:3b:00.0")
        #expect(SysfsAERReader(sysfsRoot: "/").directory(of: host) == "/bus/pci/devices/0000:3b:00.0")
    }

    @Test func readsTheThreeFilesOfAFakeTree() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        try device.write(.correctable, bits: [0: 3], total: 3)
        try device.write(.nonFatal, bits: [14: 1], total: 1)
        try device.write(.fatal, bits: [4: 1], total: 1)

        let reading = device.reader.read(device.host)
        #expect(reading.snapshot.correctable?.count(named: "RxErr") == 3)
        #expect(reading.snapshot.nonFatal?.count(named: "CmpltTO") == 1)
        #expect(reading.snapshot.fatal?.count(named: "DLP") == 1)
        #expect(reading.snapshot.fatal?.total == 1)
    }

    @Test func missingFilesMeanNoAERCapabilityNotAnError() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        let reading = device.reader.read(device.host)
        #expect(reading.correctable == .absent && reading.nonFatal == .absent && reading.fatal == .absent)
        #expect(!reading.snapshot.hasAERCounters)

        // No device directory at all reads the same way.
        let other = try #require(HostAddress("0000:99:00.0"))
        #expect(device.reader.read(.fatal, of: other) == .absent)
    }

    @Test func anUnreadableFileIsReportedWithItsErrno() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        // A directory where the file should be: open works, read fails with EISDIR.
        try device.root.makeDirectory("\(device.directory)/aer_dev_fatal")
        guard case .unreadable(let error) = device.reader.read(.fatal, of: device.host) else {
            Issue.record("expected unreadable")
            return
        }
        #expect(error.errno == EISDIR)
        #expect(error.description.hasSuffix("aer_dev_fatal): Is a directory"))
    }

    @Test func readsTheRealSysfsWhenThereIsOne() throws {
        // Whatever the host has: every PCI device either has the three files or none.
        guard let directory = opendir("/sys/bus/pci/devices") else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let host = HostAddress(name) else { continue }
            let reading = SysfsAERReader().read(host)
            for severity in Severity.allCases {
                if case .unreadable(let error) = reading[severity] { Issue.record("\(host): \(error)") }
                #expect(reading[severity].counters?.malformedLines.isEmpty ?? true)
            }
        }
    }
}

@Suite struct AERCounterTrackerTests {
    @Test func counterBumpsBecomeDeltasPerSeverity() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        try device.writeAllZero()
        let (logger, logs) = CapturingLogHandler.logger()
        var tracker = AERCounterTracker(host: device.host, reader: device.reader, logger: logger)
        #expect(tracker.poll().isEmpty)  // Baseline.

        // A fatal DLP.
        try device.write(.fatal, bits: [4: 1], total: 1)
        var change = tracker.poll()
        #expect(change.mostSevere == .fatal)
        #expect(change.deltas == [AERCounterDelta(severity: .fatal, errors: [
            AERErrorCount(name: "DLP", error: AERError.named("DLP", correctable: false), count: 1),
        ], total: 1)])

        // Nothing new.
        #expect(tracker.poll().isEmpty)

        // A non-fatal completion timeout, twice.
        try device.write(.nonFatal, bits: [14: 2], total: 2)
        change = tracker.poll()
        #expect(change.mostSevere == .nonFatal)
        #expect(change[.nonFatal]?.names == ["CmpltTO"])
        #expect(change[.nonFatal]?.errors.first?.count == 2)
        #expect(change[.nonFatal]?.errors.first?.error?.qemuName == "COMP_TIME")

        // Three correctable receiver errors and an unnamed fatal bit in the same interval.
        try device.write(.correctable, bits: [0: 3], total: 3)
        try device.write(.fatal, bits: [4: 1, 10: 1], total: 2)
        change = tracker.poll()
        #expect(change.deltas.map(\.severity) == [.fatal, .correctable])
        #expect(change[.fatal]?.names == ["dev_fatal_errs_bit[10]"])
        #expect(change[.fatal]?.errors.first?.error?.bit == 10)
        #expect(change[.correctable]?.names == ["RxErr"])
        #expect(change[.correctable]?.errors.first?.count == 3)
        #expect(change[.correctable]?.errors.first?.error?.qemuName == "RCVR")

        #expect(logs.messages(at: .warning).isEmpty)
    }

    @Test func aFileThatVanishesIsLoggedOnceAndItsCountsKept() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        try device.writeAllZero()
        let (logger, logs) = CapturingLogHandler.logger()
        var tracker = AERCounterTracker(host: device.host, reader: device.reader, logger: logger)
        _ = tracker.poll()

        try device.remove(.fatal)
        #expect(tracker.poll().isEmpty)
        #expect(tracker.poll().isEmpty)
        #expect(tracker.poll().isEmpty)
        #expect(logs.messages(at: .warning) == ["aer_dev_fatal vanished; keeping its last counts until it is back"])

        // Back, with an error counted meanwhile: reported against the kept counts.
        try device.write(.fatal, bits: [4: 1], total: 1)
        let change = tracker.poll()
        #expect(change[.fatal]?.names == ["DLP"])
        #expect(logs.messages(at: .info) == ["aer_dev_fatal is readable again"])
        #expect(logs.messages(at: .warning).count == 1)
    }

    @Test func garbageIsLoggedOnceWhileItStaysTheSame() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        try device.writeAllZero()
        let (logger, logs) = CapturingLogHandler.logger()
        var tracker = AERCounterTracker(host: device.host, reader: device.reader, logger: logger)
        _ = tracker.poll()

        try device.writeRaw(.nonFatal, KernelAERFile.text(.nonFatal, bits: [14: 1], total: 1) + "garbage here now\n")
        #expect(tracker.poll()[.nonFatal]?.names == ["CmpltTO"])
        #expect(tracker.poll().isEmpty)
        let warnings = logs.messages(at: .warning)
        #expect(warnings == ["Ignoring 1 malformed line(s) in aer_dev_nonfatal: line 20 \"garbage here now\": expected NAME COUNT"])
    }

    @Test func countersGoingBackwardsRebaselineWithoutReporting() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        try device.write(.correctable)
        try device.write(.nonFatal)
        try device.write(.fatal, bits: [4: 5], total: 5)
        let (logger, logs) = CapturingLogHandler.logger()
        var tracker = AERCounterTracker(host: device.host, reader: device.reader, logger: logger)
        _ = tracker.poll()

        // Re-enumerated: counters restart from zero; one new DLP since.
        try device.write(.fatal, bits: [4: 1], total: 1)
        let change = tracker.poll()
        #expect(change.isEmpty)
        #expect(change.rebaselined == [.fatal])
        #expect(logs.messages(at: .notice).count == 1)

        // From the new baseline, growth reports again.
        try device.write(.fatal, bits: [4: 2], total: 2)
        #expect(tracker.poll()[.fatal]?.errors.first?.count == 1)
    }

    @Test func aDeviceWithoutAERIsSaidOnce() throws {
        let device = try FakeSysfsDevice()
        defer { device.root.remove() }
        let (logger, logs) = CapturingLogHandler.logger()
        var tracker = AERCounterTracker(host: device.host, reader: device.reader, logger: logger)
        #expect(tracker.poll().isEmpty)
        #expect(tracker.poll().isEmpty)
        #expect(logs.messages(at: .info).count == 1)
        #expect(logs.messages(at: .warning).isEmpty)
        #expect(tracker.baseline?.hasAERCounters == false)
    }
}
