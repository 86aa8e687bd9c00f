import EventLoop
import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// The scripted peer itself, on a real socketpair: it must talk like QEMU 7.2 for the
/// broker's tests to mean anything.
@Suite struct ScriptedVMMTests {
    private func pair(_ script: VMMScript = VMMScript()) -> (ScriptedVMM, QMPLineConnection) {
        var fds: [Int32] = [-1, -1]
        _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        return (ScriptedVMMGroup.shared.serve(connected: fds[0], script: script), QMPLineConnection(adopting: fds[1]))
    }

    @Test func greetsAndAnswersLikeQEMU() throws {
        let (vmm, peer) = pair()
        defer { vmm.close() }
        #expect(try peer.nextLine() == VMMScript.qemu72Greeting)
        try peer.send(#"{"execute": "qmp_capabilities", "id": {"a": [1, 2.50]}}"#)
        try peer.send(#"{"execute": "nope", "id": 4}{"execute": "stop", "id": "s"}"#)
        #expect(try peer.nextLine() == #"{"return": {}, "id": {"a": [1, 2.5]}}"#)
        #expect(try peer.nextLine() == #"{"id": 4, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#)
        #expect(try peer.nextLine()?.hasSuffix(#""event": "STOP"}"#) == true)
        #expect(try peer.nextLine() == #"{"return": {}, "id": "s"}"#)
        #expect(vmm.commandNames == ["qmp_capabilities", "nope", "stop"])
        #expect(!vmm.isRunning)
    }
}

extension ScriptedVMMTests {
    @Test func delaysHoldsAndLogsWhenBytesArrived() throws {
        let (vmm, peer) = pair(VMMScript(replies: ["x-later": .delayed(milliseconds: 30, .success("1")), "x-held": .held]))
        defer { vmm.close() }
        _ = try peer.nextLine()
        let before = MonotonicClock.nanoseconds()
        try peer.send(#"{"execute": "x-later", "id": 1}{"execute": "x-held", "id": 2}{"execute": "query-status", "id": 3}"#)
        #expect(try peer.nextLine() == #"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 3}"#)
        #expect(try peer.nextLine() == #"{"return": 1, "id": 1}"#)
        let later = try #require(vmm.commands.first)
        #expect(later.receivedAt >= before && MonotonicClock.nanoseconds() - later.receivedAt >= 30_000_000)
        #expect(vmm.answerHeld("x-held", with: .error(class: "GenericError", desc: "late")) == 1)
        #expect(try peer.nextLine() == #"{"id": 2, "error": {"class": "GenericError", "desc": "late"}}"#)
    }

    @Test func aPeerThatDoesNotReadStallsNoOtherPeer() throws {
        let (stuck, unread) = pair()
        let (other, peer) = pair()
        defer {
            stuck.close()
            other.close()
        }
        // Far more than the socket buffers hold: the rest waits in the stuck peer's queue.
        let padding = String(repeating: "x", count: 60_000)
        for _ in 0..<100 { stuck.emit("BURST", data: #"{"pad": "\#(padding)"}"#) }
        _ = try peer.nextLine()
        try peer.send(#"{"execute": "query-status", "id": 1}"#)
        #expect(try peer.nextLine()?.hasSuffix(#""id": 1}"#) == true)
        withExtendedLifetime(unread) {}
    }

    @Test func aListeningPeerServesOneConnectionAtATimeAsQEMUDoes() throws {
        let directory = try TemporaryDirectory()
        let vmm = try ScriptedVMMGroup.shared.listen(at: directory.file("vmm.sock"))
        defer { vmm.close() }
        let first = try QMPLineConnection(path: directory.file("vmm.sock"))
        #expect(try first.nextLine() == VMMScript.qemu72Greeting)
        let second = try QMPLineConnection(path: directory.file("vmm.sock"))  // waits in the backlog
        #expect(try second.nextLine(timeout: 0.05) == nil)
        vmm.disconnect()
        #expect(first.waitForClose())
        #expect(try second.nextLine() == VMMScript.qemu72Greeting)
        #expect(vmm.connections == 2)
    }

    @Test func oneGroupServesManyPeers() throws {
        let group = ScriptedVMMGroup()
        defer { group.close() }
        let pairs = (0..<200).map { _ in
            var fds: [Int32] = [-1, -1]
            _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
            return (group.serve(connected: fds[0]), QMPLineConnection(adopting: fds[1]))
        }
        for (_, peer) in pairs { try peer.send(#"{"execute": "qmp_capabilities"}"#) }
        for (vmm, peer) in pairs {
            #expect(try peer.nextLine() == VMMScript.qemu72Greeting)
            #expect(try peer.nextLine() == #"{"return": {}}"#)
            vmm.close()
        }
    }
}

extension ScriptedVMMTests {
    @Test func descriptorsGoWithTheNextCompleteCommandAndTheLogCanBeTaken() throws {
        let (vmm, peer) = pair()
        defer { vmm.close() }
        _ = try peer.nextLine()
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { fds.forEach { _ = close($0) } }
        try peer.send(#"{"execute": "getfd", "#, fds: [fds[1]])
        try peer.send(#""arguments": {"fdname": "x"}, "id": 1}{"execute": "query-status"}"#)
        #expect(try peer.nextReply() == #"{"return": {}, "id": 1}"#)
        #expect(try peer.nextReply()?.hasPrefix(#"{"return": {"status": "running""#) == true)
        let taken = vmm.takeCommands()
        #expect(taken.map(\.name) == ["getfd", "query-status"])
        #expect(taken.map(\.descriptors.count) == [1, 0])
        #expect(vmm.commands.isEmpty)
    }
}
