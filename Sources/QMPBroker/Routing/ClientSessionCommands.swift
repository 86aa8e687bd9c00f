import QMPSessions
import QMPWire

/// The broker commands about a client's own connection: staying across VMM restarts,
/// and replaying numbered events it missed.
enum ClientSessionCommands {
    static func register(in commands: LocalCommands) {
        commands.register("broker-stay-connected") { request, _, client, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let enable = try arguments.optionalBool("enable") ?? true
                try arguments.finish()
                client.staysConnected = enable
                return .object()
            }
        }
        commands.register("query-broker-events") { request, vm, _, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let after = try arguments.integer("after")
                try arguments.finish()
                return replay(vm.events, after: after)
            }
        }
    }

    /// `BrokerEventReplay`, in the schema's member order.
    static func replay(_ ring: EventRing, after sequence: Int64) -> JSON {
        let (kept, missed) = ring.events(after: sequence)
        let events = JSON.array(kept.compactMap { try? JSON.parse($0) })
        return .qdict([
            "events": events, "missed": .integer(missed), "next-seq": .integer(ring.nextSequence),
        ])
    }
}

extension LocalCommands {
    /// Runs a handler body and answers with its value, or with the QMP error it threw.
    static func answer(_ request: QMPRequest, _ completion: (JSON) -> Void,
                       _ body: (inout CommandArguments) throws(QMPError) -> JSON) {
        var arguments = CommandArguments(request.arguments)
        do {
            completion(request.successReply(try body(&arguments)))
        } catch {
            completion(request.errorReply(error))
        }
    }
}
