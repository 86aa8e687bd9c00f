import Glibc
import Testing
@testable import QMPBroker

/// Configurations that would switch a protection off silently are fixed or refused at startup.
@Suite struct VMConfigurationValidationTests {
    private var cwd: String {
        let pointer = getcwd(nil, 0)!
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// QEMU resolves a relative logfile against its own cwd.
    @Test func aRelativeSocketDirectoryGivesAnAbsoluteTraceLog() throws {
        let relative = VMConfiguration(name: "vm1", upstreamPath: "/q", socketPath: "run/vm1.qmp")
        #expect(relative.traceLogPath == "\(cwd)/run/vm1.trace.log")
        let bare = VMConfiguration(name: "vm1", upstreamPath: "/q", socketPath: "vm1.qmp")
        #expect(bare.traceLogPath == "\(cwd)/vm1.trace.log")
        let dotted = VMConfiguration(name: "vm1", upstreamPath: "/q", socketPath: "./vm1.qmp")
        #expect(dotted.traceLogPath == "\(cwd)/vm1.trace.log")
        let absolute = VMConfiguration(name: "vm1", upstreamPath: "/q", socketPath: "/run/qb/vm1.qmp")
        #expect(absolute.traceLogPath == "/run/qb/vm1.trace.log")
        try relative.validate()
    }

    @Test func anUnusableTraceLogPathIsRefused() {
        var configuration = VMConfiguration(name: "vm1", upstreamPath: "/q", socketPath: "/run/vm1.qmp")
        configuration.traceLogPath = "relative/trace.log"
        #expect(throws: ConfigurationProblem.self) { try configuration.validate() }
        configuration.traceLogPath = "/run/%d.log"
        #expect(throws: ConfigurationProblem.self) { try configuration.validate() }
    }

    /// inject-at goes into an HMP command line.
    @Test func injectAtMustBeAQEMUDeviceID() throws {
        #expect(QEMUDeviceID.isWellFormed("rp1"))
        #expect(QEMUDeviceID.isWellFormed("net0.a-b_c"))
        for bad in ["nic0 0x10 0 0 0 0", "", "0abc", "-x", "a;b", "a\nb", "a\"b", "/machine/peripheral/x", "é"] {
            #expect(!QEMUDeviceID.isWellFormed(bad), "\(bad)")
        }
        var configuration = VMConfiguration(name: "vm1", upstreamPath: "/q", socketPath: "/run/vm1.qmp")
        var device = VFIORecoverySettings.DeviceConfiguration(id: "hostdev0", host: "0000:3b:00.0")
        device.injectAt = "nic0 0x10 0 0 0 0"
        configuration.recovery.devices = [device]
        #expect(throws: ConfigurationProblem.self) { try configuration.validate() }
        configuration.recovery.devices[0].injectAt = "rp1"
        try configuration.validate()
    }
}
