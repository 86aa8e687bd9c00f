import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// Who may use a VM's sockets: the mode, the SO_PEERCRED allow-list, and read-only sockets.
@Suite(.serialized) struct SocketAccessTests {
    @Test func readOnlySocketAcceptsOnlyQueries() throws {
        let directory = TemporaryDirectory.forTest()
        let qemu = try QEMUInstance(in: directory)
        let readOnly = directory.file("vm1.ro.qmp")
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) {
            $0.readOnlySocketPath = readOnly
            $0.socketMode = 0o640
        }
        var info = stat()
        #expect(stat(broker.socketPath, &info) == 0 && info.st_mode & 0o777 == 0o640)
        let client = try QMPClient(path: readOnly)
        try client.negotiate()
        #expect(try client.execute("query-status")["return"] != nil)
        let refused = try client.execute("stop", id: .integer(1))
        #expect(refused["error"]?["desc"]?.string == "Command 'stop' is not allowed on a read-only monitor")
        #expect(try client.execute("query-status")["return"]?["running"]?.bool == false)
    }

    @Test func peersNotOnTheAllowListAreTurnedAway() throws {
        let directory = TemporaryDirectory.forTest()
        let qemu = try QEMUInstance(in: directory)
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) {
            $0.allowedUIDs = [getuid() &+ 4242]  // not us
        }
        let client = try QMPClient(path: broker.socketPath, readGreeting: false)
        #expect(client.waitForClose(timeout: 5))
        _ = qemu
    }
}
