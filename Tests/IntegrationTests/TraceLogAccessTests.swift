import Glibc
import QMPBroker
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
}
