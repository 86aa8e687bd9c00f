import BrokerState
import QMPWire

/// `query-vfio-error-history`: the VM's records from the state database.
enum HistoryCommand {
    static let defaultLimit: Int64 = 100
    static let maxLimit: Int64 = 10_000

    static func register(in commands: LocalCommands, vm: String, store: StateStore?) {
        commands.register("query-vfio-error-history") { request, _, _, completion in
            var arguments = CommandArguments(request.arguments)
            do throws(QMPError) {
                let device = try arguments.optionalString("device")
                let since = try arguments.optionalInteger("since")
                let limit = try arguments.optionalInteger("limit") ?? defaultLimit
                try arguments.finish()
                guard (1...maxLimit).contains(limit) else {
                    throw QMPError("Parameter 'limit' expects a value between 1 and \(maxLimit)")
                }
                // A bounded indexed read (at most maxLimit rows) on the VM's event loop, after the
                // writer has caught up: the reply holds what the VM did before the command.
                store?.waitForHistoryWrites()
                let query = HistoryQuery(vm: vm, device: device, sinceMicroseconds: since.map { $0 * 1_000_000 },
                                         limit: Int(limit))
                let records: [HistoryRecord]
                do {
                    records = try store?.historyRecords(query) ?? []
                } catch {
                    throw QMPError("Cannot read the error history: \(error)")
                }
                completion(request.successReply(.array(records.map(entry))))
            } catch {
                completion(request.errorReply(error))
            }
        }
    }

    /// One `VFIOHistoryEntry`, members in QDict order like every other reply.
    static func entry(_ record: HistoryRecord) -> JSON {
        var members: [(String, JSON)] = [
            ("timestamp", .qdict([
                "seconds": .integer(record.microsecondsSinceEpoch / 1_000_000),
                "microseconds": .integer(record.microsecondsSinceEpoch % 1_000_000),
            ])),
            ("device", .string(record.device)), ("host", .string(record.host)), ("kind", .string(record.kind.rawValue)),
            ("errors", .strings(record.errors)), ("count", .integer(Int64(record.count))),
        ]
        if let severity = record.severity { members.append(("severity", .string(severity.rawValue))) }
        if let source = record.source { members.append(("source", .string(source))) }
        if let action = record.action { members.append(("action", .string(action))) }
        if let linkError = record.linkError { members.append(("link-error", .bool(linkError))) }
        if let cause = record.cause { members.append(("cause", .string(cause))) }
        return .qdict(members)
    }
}
