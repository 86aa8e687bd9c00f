import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// The trace log's path and file kept safe, with the real CLI and a real QEMU.
@Suite(.serialized) struct TraceLogSafetyTests {
    /// A symlink planted at DIR/NAME.trace.log must not make QEMU append to its target.
    @Test func aPlantedSymlinkIsReplacedAndQEMUNeverWritesThroughIt() throws {
        let rig = try CLIBrokerRig()
        let victim = rig.directory.file("victim")
        rig.directory.write("victim", "precious\n")
        #expect(symlink(victim, rig.directory.file("vm1.trace.log")) == 0)
        let client = try rig.start()
        // QEMU traces a system reset into its log: it must land in the broker's file.
        #expect(try client.execute("system_reset")["return"] != nil)
        #expect(try client.nextEvent("RESET") != nil)
        var status = stat()
        #expect(lstat(rig.directory.file("vm1.trace.log"), &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFREG)
        #expect(rig.directory.read("victim") == "precious\n")
        let deadline = Deadline(after: 5)
        while !rig.directory.read("vm1.trace.log").contains("resettable_phase_enter_begin"), !deadline.passed { usleep(10_000) }
        #expect(rig.directory.read("vm1.trace.log").contains("resettable_phase_enter_begin"))
        #expect(rig.log.contains("a symbolic link"), "\(rig.log)")
    }

    /// A relative --socket-dir: QEMU would resolve a relative logfile against its own cwd.
    @Test func aRelativeSocketDirectoryStillWatches() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        mkdir(directory.file("run"), 0o700)
        let process = try ChildProcess(["/bin/sh", "-c",
            "cd '\(directory.path)' && exec '\(BrokerProcess.binary)' run --vm vm1='\(qemu.qmpSocket)' --socket-dir run"],
            outputPath: directory.file("broker.log"))
        defer { process.kill(signal: SIGKILL) }
        let socket = directory.file("run/vm1.qmp")
        let deadline = Deadline(after: 10)
        var client: QMPClient?
        while client == nil, !deadline.passed {
            client = try? QMPClient(path: socket)
            if client == nil { usleep(10_000) }
        }
        let connected = try #require(client, "\(directory.read("broker.log"))")
        try connected.negotiate()
        try connected.waitForLinkResetWatch(timeout: 10)
        // QEMU opened the broker's file by its absolute path, not one under QEMU's own cwd.
        var status = stat()
        #expect(stat(directory.file("run/vm1.trace.log"), &status) == 0)
        _ = qemu
    }
}
