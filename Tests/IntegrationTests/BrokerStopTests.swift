import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// SIGTERM stops `qmp-broker run` gracefully: exit status 0, clients see EOF, the socket
/// file is gone. Every other test SIGKILLs the daemon, so this is also the one run in which
/// a sanitized binary (`make sanitize`) reaches its exit-time leak check: a leak makes
/// LeakSanitizer exit non-zero.
@Suite struct BrokerStopTests {
    @Test func sigtermStopsTheBrokerWithExitStatusZero() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let socket = directory.file("vm1.qmp")
        let log = directory.file("broker.log")
        let broker = try BrokerProcess(arguments: [
            "run", "--vm", "vm1=\(qemu.qmpSocket)", "--socket-dir", directory.path,
            "--state-dir", directory.file("state"),
        ], logPath: log)
        let client = try QMPClient(path: socket)
        try client.negotiate()
        #expect(try client.execute("query-status")["return"] != nil)
        #expect(try client.execute("query-broker")["return"] != nil)

        broker.process.kill(signal: SIGTERM)
        let status = try #require(broker.process.wait(timeout: 30), "still running after SIGTERM: \(directory.read("broker.log"))")
        #expect(status == 0, "wait status \(status): \(directory.read("broker.log"))")
        #expect(client.waitForClose(timeout: 5))
        #expect(access(socket, F_OK) != 0, "the broker's socket file is removed")
        _ = qemu
    }

    /// SIGTERM undoes the attach before the VMM socket closes: every event the broker switched
    /// on is off again, and QEMU logs to its own stderr again (`/proc/self/fd/2`), so an
    /// operator's trace lands where it did before the broker came.
    @Test(arguments: QEMUBuild.all) func sigtermGivesQEMUItsTracingAndItsLogBack(_ build: QEMUBuild) throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory, build: build, directMonitor: true)
        let socket = directory.file("vm1.qmp")
        let broker = try BrokerProcess(arguments: [
            "run", "--vm", "vm1=\(qemu.qmpSocket)", "--socket-dir", directory.path,
            "--state-dir", directory.file("state"),
        ], logPath: directory.file("broker.log"))
        try waitUntilTracing(socket: socket)
        let direct = try qemu.directClient()
        func state(_ name: String) throws -> String? {
            try direct.execute("trace-event-get-state", arguments: .object(["name": .string(name)]))["return"]?[0]?["state"]?.string
        }
        #expect(try state("pci_cfg_write") == "enabled")

        broker.process.kill(signal: SIGTERM)
        #expect(try #require(broker.process.wait(timeout: 30)) == 0, "\(directory.read("broker.log"))")
        for name in ["pci_cfg_write", "vfio_pci_hot_reset", "vfio_pci_hot_reset_result", "resettable_phase_enter_begin",
                     "resettable_phase_exit_end", "monitor_qmp_cmd_in_band"] {
            #expect(try state(name) == "disabled", "\(name) is still on after SIGTERM")
        }
        // The operator's own trace, from QEMU's own monitor, reaches QEMU's stderr, not the broker's file.
        let traceLog = directory.read("vm1.trace.log")
        #expect(try direct.execute("trace-event-set-state", arguments: .object([
            "name": .string("monitor_qmp_cmd_in_band"), "enable": .bool(true)]))["return"] != nil)
        _ = try direct.execute("query-status", id: .string("after-the-broker"))
        let deadline = Deadline(after: 5)
        while !directory.read("qemu.log").contains("after-the-broker") && !deadline.passed { usleep(20_000) }
        #expect(directory.read("qemu.log").contains("monitor_qmp_cmd_in_band \"after-the-broker\""), "\(directory.read("qemu.log"))")
        #expect(directory.read("vm1.trace.log") == traceLog)
    }
}
