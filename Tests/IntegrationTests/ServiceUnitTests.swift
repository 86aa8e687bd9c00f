import BrokerTesting
import Glibc
import QMPBroker
import Testing
import VFIOWatch

/// contrib/qmp-broker.service as systemd reads it (`systemd-analyze verify`, where the
/// machine has it), with ExecStart pointing at the built binary.
@Suite struct ServiceUnitTests {
    static let root: String = {
        let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        return parts[..<parts.lastIndex(of: "Tests")!].joined(separator: "/")
    }()

    static let analyzer: String? = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { (path: String) in access(path, X_OK) == 0 }

    @Test func theUnitIsANotifyServiceWithTheNeededAccess() throws {
        let unit = try #require(PathReader.read("\(Self.root)/contrib/qmp-broker.service"))
        for line in ["Type=notify", "WatchdogSec=30s", "RuntimeDirectory=qmp-broker", "StateDirectory=qmp-broker",
                     "ExecReload=/bin/kill -HUP $MAINPID", "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
                     "CapabilityBoundingSet=CAP_SYS_PTRACE CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_PERFMON CAP_SYS_ADMIN",
                     "SystemCallFilter=@system-service pidfd_open pidfd_getfd perf_event_open"] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "missing \(line)")
        }
    }

    @Test(.enabled(if: analyzer != nil, "systemd-analyze is not installed"))
    func systemdAnalyzeVerifiesTheUnit() throws {
        let directory = try TemporaryDirectory()
        let unit = try #require(PathReader.read("\(Self.root)/contrib/qmp-broker.service"))
        directory.write("qmp-broker.service", unit.replacingOccurrences(of: "/usr/local/bin/qmp-broker", with: BrokerProcess.binary))
        let log = directory.file("verify.log")
        let verify = try ChildProcess([Self.analyzer!, "verify", "--man=no", directory.file("qmp-broker.service")], outputPath: log)
        let status = verify.wait(timeout: 60)
        #expect(status == 0, "\(directory.read("verify.log"))")
        #expect(directory.read("verify.log").isEmpty, "\(directory.read("verify.log"))")
    }
}
