import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// The VMM goes away and comes back on the same path. A plain client reads EOF, as from
/// QEMU; one that asked (`broker-stay-connected`) stays connected throughout.
@Suite(.serialized) struct ReconnectTests {
    @Test func pendingCommandFailsAndStayingClientsSeeTheVMMLeaveAndReturn() throws {
        let directory = try TemporaryDirectory()
        var qemu: QEMUInstance? = try QEMUInstance(in: directory)
        let broker = try BrokerInstance(upstream: qemu!.qmpSocket, in: directory)
        let client = try broker.client()
        let watcher = try broker.client()
        for staying in [client, watcher] { #expect(try staying.execute("broker-stay-connected")["return"] != nil) }
        #expect(try client.execute("query-status")["return"] != nil)

        // Freeze QEMU so the next command stays pending, then kill it.
        _ = kill(qemu!.process.pid, SIGSTOP)
        try client.send(#"{"execute":"query-status","id":"pending"}"#)
        usleep(100_000)
        qemu!.kill()
        let failed = try client.nextReply(timeout: 10)
        #expect(failed["id"]?.string == "pending")
        #expect(failed["error"]?["class"]?.string == "GenericError")
        #expect(failed["error"]?["desc"]?.string == "VMM 'vm1' disconnected before replying")
        let gone = try #require(try watcher.nextEvent("BROKER_VMM_DISCONNECTED"))
        #expect(gone["data"]?["vm"]?.string == "vm1")

        // While the VMM is away, commands fail at once instead of hanging.
        let refused = try client.execute("query-status", id: .integer(5))
        #expect(refused.description == #"{"id": 5, "error": {"class": "GenericError", "desc": "VMM 'vm1' is not connected"}}"#)

        qemu = try QEMUInstance(in: directory)
        let back = try #require(try watcher.nextEvent("BROKER_VMM_CONNECTED", timeout: 15))
        #expect(back["data"]?["vm"]?.string == "vm1")
        #expect(try client.execute("query-status")["return"]?["status"]?.string == "prelaunch")
        _ = qemu
    }

    /// As from QEMU's own socket: the error reply to the pending command, then EOF, and no
    /// broker event on the way. The client that asked to stay sees the VMM leave.
    @Test func plainClientReadsThePendingErrorThenEOF() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory)
        let plain = try broker.client()
        let staying = try broker.client()
        #expect(try staying.execute("broker-stay-connected", arguments: .object(["enable": .bool(true)]))["return"] != nil)
        #expect(try plain.execute("query-status")["return"] != nil)
        _ = kill(qemu.process.pid, SIGSTOP)
        try plain.send(#"{"execute":"query-status","id":"pending"}"#)
        usleep(100_000)
        qemu.kill()
        let failed = try plain.nextReply(timeout: 10)
        #expect(failed["id"]?.string == "pending")
        #expect(failed["error"]?["desc"]?.string == "VMM 'vm1' disconnected before replying")
        var after: [JSON] = []
        while let message = try? plain.readMessage(timeout: 5) { after.append(message) }  // EOF or silence ends it
        #expect(after.isEmpty, "nothing between the error reply and EOF: \(after)")
        #expect(plain.waitForClose(timeout: 1))
        #expect(try staying.nextEvent("BROKER_VMM_DISCONNECTED") != nil)
        #expect(!staying.waitForClose(timeout: 0.2))
    }

    /// The per-VM setting makes staying the default.
    @Test func configuredVMKeepsPlainClientsConnected() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) { $0.clientsStayConnected = true }
        let client = try broker.client()
        qemu.kill()
        #expect(try client.nextEvent("BROKER_VMM_DISCONNECTED") != nil)
        let refused = try client.execute("query-status", id: .integer(5))
        #expect(refused.description == #"{"id": 5, "error": {"class": "GenericError", "desc": "VMM 'vm1' is not connected"}}"#)
        // A client arriving while the VMM is away gets no bytes (no cached greeting) until
        // a VMM is attached again; then it is greeted by that VMM.
        let arriving = try QMPClient(path: broker.socketPath, readGreeting: false)
        #expect(try arriving.readMessage(timeout: 0.5) == nil)
        let again = try QEMUInstance(in: directory)
        #expect(try arriving.readMessage(timeout: 15)?["QMP"] != nil)
        #expect(try client.nextEvent("BROKER_VMM_CONNECTED", timeout: 15) != nil)
        // And a client may still ask for EOF.
        #expect(try client.execute("broker-stay-connected", arguments: .object(["enable": .bool(false)]))["return"] != nil)
        again.kill()
        #expect(client.waitForClose(timeout: 10))
    }

    @Test func clientArrivingBeforeTheVMMIsGreetedWhenItComes() throws {
        let directory = try TemporaryDirectory()
        let broker = try BrokerInstance(upstream: directory.file("qemu.qmp"), in: directory)
        let early = try QMPClient(path: broker.socketPath, readGreeting: false)
        try early.send(#"{"execute":"qmp_capabilities","id":1}"#)  // typed ahead of the greeting
        #expect(try early.readMessage(timeout: 0.3) == nil)
        let qemu = try QEMUInstance(in: directory)
        let greeting = try #require(try early.readMessage(timeout: 15))
        #expect(greeting["QMP"] != nil)
        #expect(try early.nextReply()["return"] != nil)
        #expect(try early.execute("query-status")["return"] != nil)
        _ = qemu
    }
}
