/// A client command that passed QEMU's envelope checks (qapi/qmp-dispatch.c,
/// `qmp_dispatch_check_obj`): `execute` or `exec-oob`, optional `arguments` object, any `id`.
package struct QMPRequest {
    /// The parsed message as the client sent it; forwarding rewrites only its `id`.
    package let message: JSON
    package let command: String
    package let isOOB: Bool
    /// The client's own `id`, any JSON value, or nil when it sent none.
    package let id: JSON?
    /// The client's own bytes without its `id` (`QMPMessageTokens.membersWithoutID`), for
    /// forwarding with the broker's id spliced in; nil: serialise `message` instead.
    package var membersWithoutID: [UInt8]?
    package var arguments: JSON? { message["arguments"] }

    /// Checks the envelope the way QEMU does, in member order; `allowOOB` is whether the
    /// client negotiated `oob` (otherwise `exec-oob` is just an unexpected member).
    /// The failure carries the `id` QEMU would echo (it echoes it for any object).
    package static func validate(_ value: JSON, allowOOB: Bool) -> Validation {
        guard value.kind == .object else { return .rejected(QMPError.notAnObject.reply(id: nil)) }
        let id = value["id"].map(QDictOrder.canonical)
        var execKey: String?
        var command = ""
        // QEMU walks the members in its QDict's hash order, so that is the order errors surface in.
        for name in QDictOrder.ordered(value.keys) {
            guard let member = value[name] else { continue }
            switch name {
            case _ where name == "execute" || (name == "exec-oob" && allowOOB):
                guard let text = member.string else {
                    return .rejected(QMPError.memberNotString(name).reply(id: id))
                }
                if let execKey { return .rejected(QMPError.memberClashes(name, execKey).reply(id: id)) }
                execKey = name
                command = text
            case "arguments":
                guard member.kind == .object else { return .rejected(QMPError.argumentsNotObject.reply(id: id)) }
            case "id":
                continue
            default:
                return .rejected(QMPError.unexpectedMember(name).reply(id: id))
            }
        }
        guard let execKey else { return .rejected(QMPError.lacksExecute.reply(id: id)) }
        return .request(QMPRequest(message: value, command: command, isOOB: execKey == "exec-oob", id: id))
    }

    package enum Validation {
        case request(QMPRequest)
        /// QEMU's error reply for a malformed envelope.
        case rejected(JSON)
    }
}

extension QMPRequest {
    /// `{"return": value}` with the client's `id` in QEMU's member order.
    package func successReply(_ value: JSON) -> JSON { Self.successReply(value, id: id) }

    /// `{"return": value}` with `id` (a client's, kept apart from its request) in QEMU's member order.
    package static func successReply(_ value: JSON, id: JSON?) -> JSON {
        if let id { return .qdict(["return": value, "id": id]) }
        return .qdict(["return": value])
    }

    package func errorReply(_ error: QMPError) -> JSON { error.reply(id: id) }
}
