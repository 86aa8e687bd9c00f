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
