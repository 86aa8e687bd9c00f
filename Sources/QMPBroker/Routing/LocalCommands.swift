import QMPWire

/// The commands the broker answers itself, and the upstream replies it amends
/// (`query-commands`, `query-qmp-schema` gain the broker's own definitions).
final class LocalCommands {
    /// Runs in the VM's isolation (`isolated`): handlers reach its parts synchronously.
    typealias Handler = (_ request: QMPRequest, _ vm: isolated VMBroker, _ client: ClientConnection,
                         _ completion: @escaping (JSON) -> Void) -> Void

    private let board: BrokerStatusBoard
    private var handlers: [String: Handler] = [:]
    /// Commands the schema marks `allow-oob`.
    private let allowsOOB = Set(BrokerSchemaCatalog.broker.commands.filter(\.allowOOB).map(\.name))

    init(board: BrokerStatusBoard) {
        self.board = board
        register("query-broker") { [board] request, _, _, completion in
            completion(request.successReply(Self.brokerInfo(board.snapshot)))
        }
    }

    var names: Set<String> { Set(handlers.keys) }

    func register(_ name: String, _ handler: @escaping Handler) { handlers[name] = handler }

    func handle(_ request: QMPRequest, vm: isolated VMBroker, client: ClientConnection, completion: @escaping (JSON) -> Void) {
        guard let handler = handlers[request.command] else {
            completion(request.errorReply(.commandNotFound(request.command)))
            return
        }
        if request.isOOB && !allowsOOB.contains(request.command) {
            completion(request.errorReply(.noOOBSupport(request.command)))
            return
        }
        handler(request, vm, client, completion)
    }

    /// Upstream answers that must also describe the broker's additions.
    func replyTransform(for command: String) -> ((JSON) -> JSON)? {
        switch command {
        case "query-commands": return { BrokerSchemaCatalog.broker.mergeCommands(upstream: $0) }
        case "query-qmp-schema": return { BrokerSchemaCatalog.broker.merge(upstreamSchema: $0) }
        default: return nil
        }
    }

    static func brokerInfo(_ statuses: [BrokerStatusBoard.VMStatus]) -> JSON {
        let vms = JSON.array(statuses.map { status in
            var members: [(String, JSON)] = [
                ("name", .string(status.name)), ("upstream", .string(status.upstream)),
                ("connected", .bool(status.connected)), ("clients", .integer(Int64(status.clients))),
                ("link-reset-watch", .bool(status.linkResetWatch)),
            ]
            if let reason = status.linkResetWatchReason { members.append(("link-reset-watch-reason", .string(reason))) }
            members.append(("link-reset-source", .string(status.linkResetSource)))
            if let reason = status.linkResetUSDTUnavailable { members.append(("link-reset-usdt-unavailable", .string(reason))) }
            return JSON.qdict(members)
        })
        return .qdict(["version": .string(BrokerVersion.string), "vms": vms])
    }
}
