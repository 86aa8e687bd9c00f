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
}
