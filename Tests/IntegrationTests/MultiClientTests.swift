import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// Many clients on one broker socket in front of one real QEMU.
@Suite(.serialized) struct MultiClientTests {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let broker: BrokerInstance

    init() throws {
        qemu = try QEMUInstance(in: directory)
        broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) { $0.clientQueueBytes = 256 << 10 }
        // BROKER_LINK_RESET_WATCH announces the attach: let it pass before the clients count messages.
        try waitUntilTracing(socket: broker.socketPath)
    }

    @Test func stopFromOneClientReachesBoth() throws {
        let first = try broker.client()
        let second = try broker.client()
        #expect(try first.execute("cont")["return"] != nil)
        #expect(try first.execute("stop")["return"] != nil)
        #expect(try first.execute("cont")["return"] != nil)
        for client in [first, second] {
            let resume = try #require(try client.nextEvent("RESUME"))
            #expect(resume["timestamp"]?["seconds"]?.integer != nil)
            #expect(try client.nextEvent("STOP") != nil)
            #expect(try client.nextEvent("RESUME") != nil)
        }
    }

    @Test func eventsOnlyAfterNegotiation() throws {
        let waiting = try broker.client(negotiate: false)
        let active = try broker.client()
        _ = try active.execute("cont")
        _ = try active.execute("stop")
        #expect(try active.nextEvent("STOP") != nil)
        #expect(try waiting.readMessage(timeout: 0.3) == nil)
    }

    @Test func interleavedCommandsComeBackToTheirOwnClients() throws {
        let clients = try (0..<5).map { _ in try broker.client() }
        let perClient = 200
        for index in 0..<perClient {
            for (number, client) in clients.enumerated() {
                let command = index % 2 == 0 ? "query-status" : "query-name"
                let id = #"{"client": \#(number), "n": \#(index)}"#
                try client.send(#"{"execute": "\#(command)", "id": \#(id)}"#)
            }
        }
        for (number, client) in clients.enumerated() {
            for index in 0..<perClient {
                let reply = try client.nextReply(timeout: 30)
                #expect(reply["id"]?["client"]?.integer == Int64(number))
                #expect(reply["id"]?["n"]?.integer == Int64(index))
                let isStatus = reply["return"]?["status"] != nil
                #expect(isStatus == (index % 2 == 0))
            }
            #expect(try client.readMessage(timeout: 0.05) == nil)
        }
    }

    @Test func brokerOwnCommandsKeepInBandOrder() throws {
        let client = try broker.client()
        try client.send(#"{"execute":"query-status","id":1}{"execute":"query-broker","id":2}{"execute":"query-name","id":3}"#)
        let ids = try (0..<3).map { _ in try client.nextReply()["id"]?.integer }
        #expect(ids == [1, 2, 3])
    }

    @Test func introspectionListsQEMUsAndTheBrokersOwn() throws {
        let client = try broker.client()
        let commands = Set(try client.execute("query-commands")["return"]?.elements.compactMap { $0["name"]?.string } ?? [])
        #expect(commands.isSuperset(of: ["query-status", "qmp_capabilities", "query-broker", "query-vfio-devices",
                                         "vfio-eventfd-add", "x-vfio-inject-error"]))
        let schema = try client.execute("query-qmp-schema", id: .string("schema"))
        #expect(schema["id"]?.string == "schema")
        let entries = schema["return"]?.elements ?? []
        let names = Set(entries.compactMap { $0["name"]?.string })
        #expect(names.isSuperset(of: ["STOP", "query-status", "VFIO_PCI_ERROR", "VFIO_LINK_RESET", "query-broker"]))
        let event = entries.first { $0["name"]?.string == "VFIO_PCI_ERROR" }
        #expect(event?["meta-type"]?.string == "event")
        // Every type an entry names is defined in the merged list.
        let referenced = entries.flatMap { entry in ["arg-type", "ret-type"].compactMap { entry[$0]?.string } }
        #expect(Set(referenced).isSubset(of: names))
    }

    @Test func getfdPassesARealDescriptorUpstream() throws {
        let client = try broker.client()
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]) }
        let got = try client.execute("getfd", arguments: .object(["fdname": .string("test-fd")]), fds: [pipeEnds[1]])
        close(pipeEnds[1])
        #expect(got["return"] != nil, "\(got)")
        #expect(try client.execute("closefd", arguments: .object(["fdname": .string("test-fd")]))["return"] != nil)
        let again = try client.execute("closefd", arguments: .object(["fdname": .string("test-fd")]))
        #expect(again["error"]?["desc"]?.string == "File descriptor named 'test-fd' not found")
    }

    @Test func addFDShowsInQueryFdsets() throws {
        let client = try broker.client()
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        let added = try client.execute("add-fd", arguments: .object(["opaque": .string("from-broker-test")]), fds: [pipeEnds[0]])
        let fdset = try #require(added["return"]?["fdset-id"]?.integer)
        let sets = try client.execute("query-fdsets")["return"]?.elements ?? []
        let match = sets.first { $0["fdset-id"]?.integer == fdset }
        #expect(match?["fds"]?[0]?["opaque"]?.string == "from-broker-test")
    }

    @Test func stuckClientDoesNotHoldBackOthers() throws {
        let stuck = try broker.client()  // never reads again
        _ = stuck
        let reader = try broker.client()
        let pairs = 5000
        var sent = 0
        var events = 0
        var replies = 0
        // Pipeline stop/cont in batches; each pair yields STOP and RESUME events.
        while replies < pairs * 2 {
            while sent < pairs && sent - replies / 2 < 100 {
                try reader.send(#"{"execute":"stop"}{"execute":"cont"}"#)
                sent += 1
            }
            guard let message = try reader.readMessage(timeout: 20) else {
                Issue.record("stalled at \(replies) replies, \(events) events")
                return
            }
            if message["event"] != nil { events += 1 } else { replies += 1 }
            if message["error"] != nil { Issue.record("unexpected error: \(message)"); return }
        }
        while events < pairs * 2, try reader.readMessage(timeout: 5)?["event"] != nil { events += 1 }
        #expect(events == pairs * 2 - 1)  // the first stop finds the VM already paused (-S)
        // The stuck client's queue (256 KiB here) overflowed long ago: it was cut off.
        #expect(stuck.waitForClose(timeout: 5))
        let status = try broker.client().execute("query-broker")
        #expect(status["return"]?["vms"]?[0]?["clients"]?.integer == 2)
    }
}
