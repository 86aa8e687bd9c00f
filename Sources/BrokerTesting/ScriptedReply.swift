/// What a `ScriptedVMM` sends for one command: data, not closures, so a script can be
/// shared between threads and read back. JSON is given as text (QEMU's spacing is applied
/// when it is sent).
package indirect enum ScriptedReply: Sendable, Equatable {
    /// `{"return": VALUE, "id": ID}`; `value` is JSON text.
    case success(String)
    /// `{"id": ID, "error": {"class": CLASS, "desc": DESC}}`, in QEMU's member order.
    case error(class: String, desc: String)
    /// An event sent as part of the answer, before what follows it (QEMU's `stop` sends
    /// `STOP` before its reply); `data` is JSON text.
    case event(String, data: String? = nil)
    /// Several answers in order, e.g. `[.event("STOP"), .success("{}")]`.
    case sequence([ScriptedReply])
    /// The answer after a delay, measured from when the command's bytes were read.
    case delayed(milliseconds: Int, ScriptedReply)
    /// No answer until `ScriptedVMM.answerHeld` (or never: a VMM that hangs on one command).
    case held
    /// Bytes sent exactly as given (no `\r\n` added): a reply with a foreign id, garbage.
    case raw(String)

    package static let empty = ScriptedReply.success("{}")

    /// QEMU's answer to a command it does not have.
    package static func commandNotFound(_ name: String) -> ScriptedReply {
        .error(class: "CommandNotFound", desc: "The command \(name) has not been found")
    }
}
