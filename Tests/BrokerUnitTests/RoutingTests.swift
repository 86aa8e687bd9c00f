import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Which reply goes to which client: by the broker's own ids, in each client's command order.
@Suite struct RoutingTests {
    @Test func twoClientsWithTheSameIDEachGetTheirOwnReply() throws {
        let rig = try ScriptedBroker(script: VMMScript(replies: [
            "x-a": .held, "x-b": .success(#"{"who": "b"}"#),
        ]))
        let a = try rig.client()
        let b = try rig.client()
        try a.send(#"{"execute": "x-a", "id": 1}"#)
        #expect(rig.vmm.waitForCommand("x-a") != nil)
        try b.send(#"{"execute": "x-b", "id": 1}"#)
        // The VMM answers b first (a's is held): replies travel by id, not by order.
        #expect(try b.nextReply() == #"{"return": {"who": "b"}, "id": 1}"#)
        #expect(rig.vmm.answerHeld("x-a", with: .success(#"{"who": "a"}"#)) == 1)
        #expect(try a.nextReply() == #"{"return": {"who": "a"}, "id": 1}"#)
        #expect(try b.nextReply(timeout: 0.05) == nil)
    }

    @Test func oneClientsRepliesKeepItsCommandOrderWhateverOrderTheVMMAnswersIn() throws {
        let rig = try ScriptedBroker(script: VMMScript(replies: ["x-slow": .held, "x-fast": .success(#""fast""#)]))
        let client = try rig.client()
        try client.send(#"{"execute": "x-slow", "id": "first"}{"execute": "x-fast", "id": "second"}"#)
        #expect(rig.vmm.waitForCommand("x-fast") != nil)
        #expect(try client.nextReply(timeout: 0.1) == nil, "QEMU answers in-band commands in order")
        rig.vmm.answerHeld(with: .success(#""slow""#))
        #expect(try client.nextReply() == #"{"return": "slow", "id": "first"}"#)
        #expect(try client.nextReply() == #"{"return": "fast", "id": "second"}"#)
    }

    @Test func aVMMReplyWithAnIDTheBrokerDidNotSendIsDropped() throws {
        let rig = try ScriptedBroker(script: VMMScript(replies: ["x-wait": .held]))
        let client = try rig.client()
        try client.send(#"{"execute": "x-wait", "id": 5}"#)
        let forwarded = try #require(rig.vmm.waitForCommand("x-wait"))
        let brokerID = try #require(forwarded.id.flatMap { Int($0) })
        rig.vmm.sendRaw(#"{"return": {"who": "stray"}, "id": \#(brokerID + 1000)}"# + "\r\n")
        rig.vmm.sendRaw(#"{"return": {"who": "no id"}}"# + "\r\n")
        rig.vmm.sendRaw(#"{"return": {"who": "string id"}, "id": "\#(brokerID)"}"# + "\r\n")
        rig.vmm.answerHeld(with: .success(#"{"who": "vmm"}"#))
        #expect(try client.nextReply() == #"{"return": {"who": "vmm"}, "id": 5}"#)
        try client.send(#"{"execute": "query-status", "id": "after"}"#)
        #expect(try client.nextReply()?.hasSuffix(#""id": "after"}"#) == true)
    }

    @Test func aClientThatLeavesWithACommandPendingTakesNoOneElsesReply() throws {
        let rig = try ScriptedBroker(script: VMMScript(replies: ["x-a": .held, "x-b": .held]))
        var leaving: QMPLineConnection? = try rig.client()
        let staying = try rig.client()
        try leaving?.send(#"{"execute": "x-a", "id": 1}"#)
        #expect(rig.vmm.waitForCommand("x-a") != nil)
        try staying.send(#"{"execute": "x-b", "id": 1}"#)
        #expect(rig.vmm.waitForCommand("x-b") != nil)
        leaving = nil
        // A closed client is kept until its pending reply comes (its EOF may be a half-close,
        // `echo ... | socat`); that reply then goes nowhere else.
        rig.vmm.answerHeld("x-a", with: .success(#"{"who": "a"}"#))
        // Asked on a third connection: `staying`'s replies queue behind its pending command.
        #expect(try Self.clientCount(of: try rig.client(), expecting: 2) == 2)
        rig.vmm.answerHeld("x-b", with: .success(#"{"who": "b"}"#))
        #expect(try staying.nextReply() == #"{"return": {"who": "b"}, "id": 1}"#)
    }

    @Test func aCommandTheVMMDoesNotAnswerInTimeGetsAGenericError() throws {
        let rig = try ScriptedBroker(script: VMMScript(replies: ["x-hang": .held])) { configuration, _ in
            configuration.commandTimeoutMilliseconds = 100
        }
        let client = try rig.client()
        try client.send(#"{"execute": "x-hang", "id": "h"}"#)
        #expect(try client.nextReply()
            == #"{"id": "h", "error": {"class": "GenericError", "desc": "VMM 'vm1' did not reply within 100 ms"}}"#)
        // The late answer has nobody waiting for it: the next reply is the next command's
        // (answered or, on a machine too loaded for 100 ms, timed out too).
        rig.vmm.answerHeld(with: .success(#""late""#))
        try client.send(#"{"execute": "query-status", "id": "next"}"#)
        #expect(try client.nextReply().flatMap { try? JSON.parse($0) }?["id"]?.string == "next")
    }

    @Test func theBrokersOwnCommandsNeverReachTheVMM() throws {
        let rig = try ScriptedBroker(script: VMMScript(replies: ["query-commands": .success(#"[{"name": "query-status"}]"#)]))
        let client = try rig.client()
        let local = ["query-broker": "{}", "query-vfio-devices": "{}", "query-broker-events": #"{"after": 0}"#,
                     "broker-stay-connected": "{}", "query-vfio-error-history": "{}"]
        for (command, arguments) in local {
            try client.send(#"{"execute": "\#(command)", "arguments": \#(arguments), "id": "\#(command)"}"#)
            let reply = try #require(try client.nextReply())
            #expect(reply.hasPrefix(#"{"return": "#) && reply.hasSuffix(#""id": "\#(command)"}"#), "\(reply)")
        }
        // `query-commands` goes to the VMM and comes back with the broker's commands added.
        try client.send(#"{"execute": "query-commands", "id": 2}"#)
        let merged = try #require(try client.nextReply())
        #expect(merged.contains(#"{"name": "query-status"}"#) && merged.contains(#"{"name": "query-vfio-devices"}"#), "\(merged)")
        #expect(Set(rig.vmm.commandNames).isDisjoint(with: local.keys))
        #expect(rig.vmm.commandNames.contains("query-commands"))
    }

    @Test func getfdPassesTheDescriptorToTheVMM() throws {
        let rig = try ScriptedBroker()
        let client = try rig.client()
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        defer { pipeFDs.forEach { _ = close($0) } }
        try client.send(#"{"execute": "getfd", "arguments": {"fdname": "fd0"}, "id": 1}"#, fds: [pipeFDs[1]])
        #expect(try client.nextReply() == #"{"return": {}, "id": 1}"#)
        let getfd = try #require(rig.vmm.waitForCommand("getfd"))
        #expect(getfd.argument("fdname") == "fd0")
        // The VMM's descriptor is the client's pipe: what it writes comes out of the read end.
        let passed = try #require(getfd.descriptors.first)
        #expect(write(passed, "x", 1) == 1)
        var byte: UInt8 = 0
        #expect(read(pipeFDs[0], &byte, 1) == 1 && byte == UInt8(ascii: "x"))
    }

    private static func clientCount(of client: QMPLineConnection, expecting: Int) throws -> Int? {
        let deadline = Deadline(after: 5)
        var count: Int?
        repeat {
            try client.send(#"{"execute": "query-broker", "id": "count"}"#)
            let reply = try client.nextReply().flatMap { try? JSON.parse($0) }
            count = reply?["return"]?["vms"]?[0]?["clients"]?.integer.map(Int.init)
        } while count != expecting && !deadline.passed
        return count
    }
}
