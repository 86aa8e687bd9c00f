import QMPWire

/// One command sent upstream, as data: who asked and what to do with the reply.
package struct PendingCommand: Equatable {
    /// Who sent a command upstream.
    package enum Requester: Equatable {
        /// A client, by its number on this VM.
        case client(Int)
        /// The broker itself.
        case broker(BrokerPurpose)
    }

    /// What the broker must do with a client's reply besides restoring the id.
    package enum FollowUp: Equatable {
        /// The reply describes the broker's additions too (`query-commands`, `query-qmp-schema`).
        case transformReply
        /// A `device_add` that worked may have added a vfio-pci device to watch.
        case rediscover
        /// A `device_add` of a vfio-pci device with an id: QEMU armed its own error handler
        /// while realizing it, so the broker takes the trigger over as soon as QEMU answers,
        /// before the client hears and before any other exchange (`host`: its PCI address).
        case takeOverAddedVFIODevice(id: String, host: String)
        /// The command may have switched the link-reset watch's trace events off.
        case verifyLinkResetWatch
    }

    package let requester: Requester
    package let command: String
    /// The client's own `id` (nil: none, or the broker's command), for the replies the
    /// broker writes itself (errors, transformed answers)...
    package let clientID: JSON?
    /// ...and as QEMU writes it, spliced into the VMM's reply in place of the broker's id.
    package let clientIDBytes: [UInt8]?
    /// The client's place in its reply order; nil for out-of-band commands and the broker's.
    package let slot: ReplyOrder.Slot?
    package let followUps: [FollowUp]
    /// When it went upstream (monotonic nanoseconds), for the latency metric; 0 for the broker's.
    package let sentAt: UInt64
    /// Monotonic milliseconds; `.max` for none. Set by the link when it sends the command.
    package var deadline: UInt64

    /// A client's command.
    package init(client: Int, command: String, id: JSON?, idBytes: [UInt8]?, slot: ReplyOrder.Slot?,
                followUps: [FollowUp] = [], sentAt: UInt64 = 0, deadline: UInt64 = .max) {
        self.requester = .client(client)
        self.command = command
        self.clientID = id
        self.clientIDBytes = idBytes
        self.slot = slot
        self.followUps = followUps
        self.sentAt = sentAt
        self.deadline = deadline
    }

    /// One of the broker's own commands.
    package init(broker purpose: BrokerPurpose, command: String, deadline: UInt64 = .max) {
        self.requester = .broker(purpose)
        self.command = command
        self.clientID = nil
        self.clientIDBytes = nil
        self.slot = nil
        self.followUps = []
        self.sentAt = 0
        self.deadline = deadline
    }
}

/// Why the broker sent a command of its own: the edge that sent it handles the reply in a
/// switch over this (or, for the exchanges that still continue in a closure, the closure).
package enum BrokerPurpose: Equatable {
    /// `query-status` at attach: the run state for the devices' machines.
    case learnRunState
    /// The machines' `stop` and `cont`.
    case stopVM
    case contVM
    /// QOM reads of where a watched device sits (type, parent bus, inject-at target).
    case learnPlacement
    /// QOM listing and reads that find vfio-pci devices.
    case discovery
    /// HMP `pcie_aer_inject_error` of a forwarded error.
    case injection
    /// One of the link-reset watch's tracing commands, in its script `exchange`.
    case linkResetWatch(exchange: Int)
    /// The log path's canary command in that script: its id must appear in the trace log.
    case linkResetCanary(exchange: Int)
    /// The USDT source's canary: a command whose `handle_qmp_command` hit proves the probes.
    case usdtCanary
    /// `query-pci` and the QOM reads of the bridges above watched devices.
    case pciTopology
}
