import QMPBroker
import QMPWire

/// One command a `ScriptedVMM` read, as it arrived.
package struct ReceivedCommand: Sendable, Equatable {
    /// `execute` (or `exec-oob`); "" when the message had neither.
    package let name: String
    /// The `id` as QEMU's writer prints it (what QEMU echoes), nil when there was none.
    package let id: String?
    /// The `arguments` object as QEMU's writer prints it, nil when there were none.
    package let arguments: String?
    /// CLOCK_MONOTONIC nanoseconds taken as soon as `recvmsg` returned the bytes that
    /// completed this command: the arrival time a benchmark can compare with its own clock.
    package let receivedAt: UInt64
    /// Descriptors that came by SCM_RIGHTS since the previous command was complete (QEMU too
    /// queues them for the next command that takes one). The VMM owns them; they stay open
    /// until the VMM is closed.
    package let descriptors: [Int32]
    /// Which connection it came on, counting from 1.
    package let connection: Int

    /// A string member of `arguments`, e.g. `argument("command-line")` of an HMP command.
    package func argument(_ key: String) -> String? {
        guard let arguments, let object = try? JSON.parse(arguments) else { return nil }
        return object[key]?.string
    }
}
