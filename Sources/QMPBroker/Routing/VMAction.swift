import ErrorEvents
import LinkResetTrace
import QMPSessions
import QMPWire

/// What a part of the VM (recovery, the link-reset watcher, a client connection, the
/// upstream link) asks of the VM. Parts return these from their inputs, or hand them over
/// from their own timers and descriptors; `VMBroker.run(_:)` runs them in one switch and
/// routes each reply back to the part as an input, so no part calls another.
enum VMAction {
    // MARK: from recovery and the link-reset watcher

    /// One of the broker's own commands to the VMM; its reply comes back by `purpose`.
    case command(String, purpose: BrokerPurpose)
    /// One of the broker's own commands, already encoded: `members` follow `{"id": N, `.
    case encodedCommand(String, members: [UInt8], purpose: BrokerPurpose)
    /// One of the broker's own events, to every client.
    case emit(String, data: JSON?)
    /// Injects an error into the guest (an exchange with QEMU); recovery then announces
    /// `event` as the injection went, in `ticket`'s place among the device's events.
    case forwardToGuest(GuestAERError, device: String, ticket: UInt64, event: PCIErrorEvent, notes: [String])
    /// Learns where a device sits in the guest (an exchange), then reports its missed errors.
    case learnPlacement(device: String)
    /// Walks QOM for vfio-pci devices nobody configured (an exchange).
    case discoverDevices
    /// Reads the guest's PCI topology for the link-reset watcher (an exchange).
    case readTopology
    /// The watched devices changed: the link-reset watcher re-reads the topology.
    case watchedDevicesChanged
    /// A guest link reset of a watched device, for recovery.
    case guestLinkReset(device: String, origin: LinkResetOrigin, late: Bool)
    /// A device's protection or the watch changed: republish the status and the metrics.
    case protectionChanged
    /// The watch's detach at stop is answered: the VM lets go of the VMM.
    case watchDetached

    // MARK: from a client connection

    /// A client's command for the VMM, its reply due in `slot` (nil: out of band).
    case forward(QMPRequest, fds: [Int32], slot: ReplyOrder.Slot?, client: ClientConnection)
    /// A client's command the broker answers itself.
    case handleLocally(QMPRequest, slot: ReplyOrder.Slot?, client: ClientConnection)
    /// A client's connection closed (its descriptors are released first).
    case clientClosed(ClientConnection, ConnectionCloseReason)

    // MARK: from the upstream link

    /// The VMM is negotiated and ready (again).
    case upstreamReady
    /// The VMM went away after having been ready.
    case upstreamLost
    /// An event line from the VMM, exactly as it wrote it.
    case upstreamEvent(UpstreamLine)
    /// Everything in one read from the VMM has been handled: send what was held back.
    case upstreamReadHandled
    /// The outcome of a command with no continuation (a client's, or the broker's own).
    case upstreamReplied(PendingCommand, UpstreamReply)
}

/// Where a part's own timers and descriptors, and the connections, hand what they produce:
/// the VM, on its loop. Held weakly, so a stopped VM is freed without unwiring anything.
protocol VMActionRunner: AnyObject, Sendable {
    /// Runs on the VM's loop only (handlers of its descriptors and timers).
    func runOnLoop(_ action: VMAction)
    func runOnLoop(_ actions: [VMAction])
}

/// A part's actions on their way to the VM: an input's are collected and returned to
/// the VM, which called it (`collect`); those of the part's own timers and descriptors go
/// to the VM at once (`handOver`). Loop-confined, as its part is.
final class ActionOutbox {
    /// The VM; weak, so a stopped VM is freed with its parts' handlers still registered.
    weak var runner: (any VMActionRunner)?
    private var pending: [VMAction] = []
    /// Inputs being handled: a descriptor drained during an input hands nothing over
    /// itself; its actions join the input's, in order.
    private var depth = 0

    /// Asks the VM for `action` once the current input is handled.
    func ask(_ action: VMAction) { pending.append(action) }

    /// Runs `action` before anything else the input does (the `stop` that races the guest:
    /// persisting, logging and counting come after it is written).
    func askFirst(_ action: VMAction) {
        guard let runner else { return ask(action) }
        runner.runOnLoop(action)
    }

    /// Handles one input; returns the actions it asked for, in order. An input that throws
    /// asked for nothing.
    func collect<Failure: Error>(_ input: () throws(Failure) -> Void) throws(Failure) -> [VMAction] {
        depth += 1
        defer { depth -= 1 }
        do {
            try input()
        } catch {
            if depth == 1 { pending = [] }
            throw error
        }
        return depth == 1 ? take() : []
    }

    /// An input from the part's own descriptors or timers: its actions go to the VM now.
    func handOver(_ input: () -> Void) {
        let actions = collect(input)
        if !actions.isEmpty { runner?.runOnLoop(actions) }
    }

    private func take() -> [VMAction] {
        defer { pending = [] }
        return pending
    }
}
