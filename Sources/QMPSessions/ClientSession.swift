import QMPWire

/// One downstream client's QMP protocol state, as a value: greeting → capabilities
/// negotiation → command mode (monitor/qmp.c). It decides what each input means;
/// the connection handler performs the returned `Action`.
package struct ClientSession: Sendable {
    package enum Action {
        /// Answer the client from the broker (negotiation, envelope and parse errors).
        case reply(JSON)
        /// A command the VMM answers: rewrite its id and send it upstream.
        case forward(QMPRequest)
        /// A command the broker owns (`query-broker`, `vfio-*`).
        case handleLocally(QMPRequest)
    }

    private enum State {
        case negotiating
        case commandMode(oob: Bool)
    }

    private var state: State = .negotiating
    /// Whether the upstream VMM offered `oob` (the broker's greeting offers what upstream offers).
    package let oobOffered: Bool
    /// Command names the broker answers itself once negotiation is done.
    package let localCommands: Set<String>
    /// Read-only sockets accept only `query-*` commands.
    package let readOnly: Bool

    package init(oobOffered: Bool, localCommands: Set<String>, readOnly: Bool = false) {
        self.oobOffered = oobOffered
        self.localCommands = localCommands
        self.readOnly = readOnly
    }

    /// Events flow only to negotiated clients, as in QEMU.
    package var receivesEvents: Bool {
        switch state {
        case .negotiating: return false
        case .commandMode: return true
        }
    }

    package var oobEnabled: Bool {
        switch state {
        case .negotiating: return false
        case .commandMode(let oob): return oob
        }
    }

    /// The reader could not parse the input: QEMU answers a GenericError without an id.
    package func parseError(_ desc: String) -> Action { .reply(QMPError(desc).reply(id: nil)) }

    package mutating func received(_ value: JSON) -> Action {
        let request: QMPRequest
        switch QMPRequest.validate(value, allowOOB: oobEnabled) {
        case .rejected(let reply): return .reply(reply)
        case .request(let valid): request = valid
        }
        switch state {
        case .negotiating:
            guard request.command == "qmp_capabilities" else {
                // QEMU's negotiation table holds only qmp_capabilities; its CommandNotFound gets this text.
                return .reply(request.errorReply(.expectingNegotiation))
            }
            switch Self.negotiate(request.arguments, oobOffered: oobOffered) {
            case .failure(let error): return .reply(request.errorReply(error))
            case .success(let oob):
                state = .commandMode(oob: oob)
                return .reply(request.successReply(.object()))
            }
        case .commandMode:
            if request.command == "qmp_capabilities" { return .reply(request.errorReply(.negotiationComplete)) }
            if readOnly && !request.command.hasPrefix("query-") {
                return .reply(request.errorReply(QMPError("Command '\(request.command)' is not allowed on a read-only monitor")))
            }
            return localCommands.contains(request.command) ? .handleLocally(request) : .forward(request)
        }
    }

    /// `qmp_capabilities` arguments, checked as QEMU's generated visitor does: member types
    /// first, then unexpected members. Returns whether `oob` was enabled.
    static func negotiate(_ arguments: JSON?, oobOffered: Bool) -> Result<Bool, QMPError> {
        guard let arguments else { return .success(false) }
        var oob = false
        if let enable = arguments["enable"] {
            guard enable.kind == .array else { return .failure(.invalidParameterType("enable", expected: "array")) }
            for (index, element) in enable.elements.enumerated() {
                guard let name = element.string else {
                    return .failure(.invalidParameterType("enable[\(index)]", expected: "string"))
                }
                guard name == "oob" else { return .failure(.capabilityValueRejected(name)) }
                oob = true
            }
        }
        if let unexpected = arguments.keys.first(where: { $0 != "enable" }) {
            return .failure(.unexpectedParameter(unexpected))
        }
        if oob && !oobOffered { return .failure(.capabilityNotAvailable("oob")) }
        return .success(oob)
    }
}
