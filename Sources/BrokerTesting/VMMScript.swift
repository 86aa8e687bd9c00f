/// How a `ScriptedVMM` behaves: its greeting, the devices it has, and replies that replace
/// QEMU 7.2's for chosen commands. Without replies it answers what the broker asks at
/// attach as QEMU does (see `ScriptedVMM`).
public struct VMMScript: Sendable {
    /// What Debian 12's QEMU (7.2.22) sends first on its QMP socket.
    public static let qemu72Greeting =
        #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#

    /// Sent on connect exactly as given (QEMU ends it with `\r\n`); nil: a VMM that accepts
    /// and says nothing.
    public var greeting: String? = Self.qemu72Greeting + "\r\n"
    /// Answers by command name, before anything built in.
    public var replies: [String: ScriptedReply] = [:]
    /// Consulted after `replies`, before the built-in answers; nil from it means "built in".
    /// Runs on the group's thread: it must not wait for the VMM it scripts.
    public var handler: (@Sendable (ReceivedCommand) -> ScriptedReply?)?
    /// What `qom-list`, `qom-get` and `query-pci` describe.
    public var machine = ScriptedMachine()
    /// The run state `query-status` reports at first; `stop` and `cont` change it.
    public var running = true

    public init(machine: ScriptedMachine = ScriptedMachine(), running: Bool = true,
                replies: [String: ScriptedReply] = [:]) {
        self.machine = machine
        self.running = running
        self.replies = replies
    }
}
