import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// `trace-log-owner` and `trace-log-mode`, for a QEMU running as another user: the built
/// binary gives the trace log that owner and mode, keeps it as its own (no "replaced"),
/// points QEMU at it and watches it.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs fchown (root)"))
struct TraceLogAccessTests {
    @Test func theTraceLogGetsTheConfiguredOwnerAndMode() throws {
        let rig = try CLIBrokerRig()
        let config = rig.directory.read("broker.toml")
        rig.directory.write("broker.toml", config.replacingOccurrences(
            of: "[[vm]]", with: "trace-log-owner = \"65534:65534\"\ntrace-log-mode = \"0640\"\n\n[[vm]]"))
        let client = try rig.start()  // returns once the link-reset watch is intact
        var status = stat()
        #expect(stat(rig.directory.file("vm1.trace.log"), &status) == 0)
        #expect(status.st_uid == 65534 && status.st_gid == 65534, "\(status.st_uid):\(status.st_gid)")
        #expect(status.st_mode & 0o7777 == 0o640, "\(String(status.st_mode & 0o7777, radix: 8))")
        #expect(!rig.log.contains("replaced"), "\(rig.log)")

        // QEMU writes the guest's config writes into that very file.
        try rig.guestLinkReset()
        let deadline = Deadline(after: 10)
        while !rig.directory.read("vm1.trace.log").contains("pcie-root-port 00:1c.0 @0x3e <- 0x40"), !deadline.passed {
            usleep(10_000)
        }
        #expect(rig.directory.read("vm1.trace.log").contains("pcie-root-port 00:1c.0 @0x3e <- 0x40"))
        #expect(try client.execute("query-broker")["return"] != nil)
        rig.kill()
    }

    /// QEMU as another user (as libvirt runs it), with no `trace-log-owner`: the broker gives
    /// the file to the VMM's own uid and gid. Then an owner QEMU cannot write as: its
    /// `logfile` is refused, which leaves QEMU logging nowhere, so the broker gives it its
    /// stderr back at once, and an operator's trace still reaches it.
    @Test(arguments: QEMUBuild.all) func aQEMURunningAsAnotherUserIsGivenTheFileAndARefusalLeavesItALog(_ build: QEMUBuild) throws {
        let runAs = build == .debian7_2 ? ["-runas", "nobody"] : ["-run-with", "user=nobody"]
        let rig = try CLIBrokerRig(build: build, directMonitor: true, qemuArguments: runAs)
        chmod(rig.directory.path, 0o755)  // QEMU, now `nobody`, must reach the file in it
        // QEMU reopens its stderr through /proc/self/fd/2, with its own rights: here a file it owns.
        chown(rig.directory.file("qemu.log"), 65534, 65534)
        var client = try rig.start()
        var status = stat()
        #expect(stat(rig.directory.file("vm1.trace.log"), &status) == 0)
        #expect(status.st_uid == 65534, "\(status.st_uid):\(status.st_gid) \(rig.log)")
        rig.kill()

        let config = rig.directory.read("broker.toml")
        rig.directory.write("broker.toml", config.replacingOccurrences(of: "[[vm]]", with: "trace-log-owner = \"0:0\"\n\n[[vm]]"))
        unlink(rig.directory.file("vm1.trace.log"))
        client = try rig.startWithoutWatch()
        let deadline = Deadline(after: 20)
        var reason = ""
        while !reason.contains("Permission denied"), !deadline.passed {
            reason = try client.execute("query-broker")["return"]?["vms"]?[0]?["link-reset-watch-reason"]?.string ?? ""
            usleep(50_000)
        }
        #expect(reason.contains("logfile failed") && reason.contains("Permission denied"), "\(reason) \(rig.log)")
        // QEMU logs again, to its own stderr: an operator's trace shows there.
        let direct = try rig.qemu.directClient()
        #expect(try direct.execute("trace-event-set-state", arguments: .object([
            "name": .string("monitor_qmp_cmd_in_band"), "enable": .bool(true)]))["return"] != nil)
        _ = try direct.execute("query-status", id: .string("operator"))
        let seen = Deadline(after: 5)
        while !rig.directory.read("qemu.log").contains("monitor_qmp_cmd_in_band \"operator\""), !seen.passed { usleep(20_000) }
        #expect(rig.directory.read("qemu.log").contains("monitor_qmp_cmd_in_band \"operator\""), "\(rig.directory.read("qemu.log"))")
        rig.kill()
    }
}
