import Glibc
import QMPSessions
import QMPWire

/// What a part of the VM may ask of the VMM's monitor, and nothing else: the VM makes it
/// over its upstream link, so the part needs no pointer back to the VM.
struct CommandSink {
    /// Sends one of the broker's own commands; the reply goes to the continuation, or (with
    /// none) to whoever handles `purpose` in the VM. Returns the id it went out with (nil
    /// when the VMM is not connected).
    let execute: (_ command: String, _ arguments: JSON?, _ purpose: BrokerPurpose,
                  _ continuation: UpstreamLink.ReplyHandler?) -> Int64?
    /// Whether the VMM is attached and negotiated.
    let isReady: () -> Bool
    /// The process listening on the VMM's socket (SO_PEERCRED), nil when not attached.
    let peerPID: () -> pid_t?

    @discardableResult
    func execute(_ command: String, arguments: JSON? = nil, for purpose: BrokerPurpose,
                 then continuation: UpstreamLink.ReplyHandler? = nil) -> Int64? {
        execute(command, arguments, purpose, continuation)
    }
}

/// Sends one of the broker's own events to the VM's clients.
struct EventSink {
    let emit: (_ name: String, _ data: JSON?) -> Void

    func emit(_ name: String, data: JSON?) { emit(name, data) }
}
