import QMPWire

/// The `data` of the broker's own VM-level events, in `schemas/` member order.
enum BrokerEventData {
    static func linkResetWatch(vm: String, active: Bool, reason: String) -> JSON {
        .qdict(["vm": .string(vm), "active": .bool(active), "reason": .string(reason)])
    }

    static func stateNotDurable(vm: String, operation: String, reason: String) -> JSON {
        .qdict(["vm": .string(vm), "operation": .string(operation), "reason": .string(reason)])
    }
}
