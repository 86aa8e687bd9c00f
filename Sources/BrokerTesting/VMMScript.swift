/// How a `ScriptedVMM` behaves: its greeting, the devices it has, and replies that replace
/// QEMU 7.2's for chosen commands. Without replies it answers what the broker asks at
/// attach as QEMU does (see `ScriptedVMM`).
package struct VMMScript: Sendable {
    /// What Debian 12's QEMU (7.2.22) sends first on its QMP socket.
    package static let qemu72Greeting =
        #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#

    /// Sent on connect exactly as given (QEMU ends it with `\r\n`); nil: a VMM that accepts
    /// and says nothing.
    package var greeting: String? = Self.qemu72Greeting + "\r\n"
    /// Answers by command name, before anything built in.
    package var replies: [String: ScriptedReply] = [:]
    /// Consulted after `replies`, before the built-in answers; nil from it means "built in".
    /// Runs on the group's thread: it must not wait for the VMM it scripts.
    package var handler: (@Sendable (ReceivedCommand) -> ScriptedReply?)?
    /// What `qom-list`, `qom-get` and `query-pci` describe.
    package var machine = ScriptedMachine()
    /// The run state `query-status` reports at first; `stop` and `cont` change it.
    package var running = true

    package init(machine: ScriptedMachine = ScriptedMachine(), running: Bool = true,
                replies: [String: ScriptedReply] = [:]) {
        self.machine = machine
        self.running = running
        self.replies = replies
    }
}
