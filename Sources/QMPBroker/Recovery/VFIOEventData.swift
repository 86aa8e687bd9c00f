import ErrorEvents
import QMPWire

/// The `data` of the broker's VFIO events, in the member order of `schemas/` (QEMU's
/// generated code inserts members in schema order; `JSON.qdict` then orders them as
/// QEMU's QDict would).
enum VFIOEventData {
    static func pciError(_ event: PCIErrorEvent, device: WatchedDevice, note: String? = nil) -> JSON {
        var members: [(String, JSON)] = [
            ("device", .string(device.id)), ("host", .string(device.host.description)),
            ("severity", .string(event.severity.rawValue)), ("errors", .strings(event.errorNames)),
            ("count", .integer(Int64(event.count))), ("source", .string(event.source.rawValue)),
            ("link-error", .bool(event.linkError)), ("action", .string(event.action.rawValue)),
        ]
        if let note { members.append(("note", .string(note))) }
        return .qdict(members)
    }

    static func linkReset(_ event: LinkResetEvent, device: WatchedDevice, note: String? = nil) -> JSON {
        var members: [(String, JSON)] = [
            ("device", .string(device.id)), ("host", .string(device.host.description)),
            ("link-error", .bool(event.linkError)), ("origin", .string(event.origin.rawValue)),
            ("action", .string(event.action.rawValue)),
        ]
        if let note { members.append(("note", .string(note))) }
        return .qdict(members)
    }

    static func linkErrorCleared(_ event: LinkErrorClearedEvent, device: WatchedDevice) -> JSON {
        .qdict(["device": .string(device.id), "host": .string(device.host.description),
                "reason": .string(event.reason.rawValue)])
    }

    static func hostRecovery(_ event: HostRecoveryEvent, device: WatchedDevice) -> JSON {
        .qdict(["device": .string(device.id), "host": .string(device.host.description),
                "result": .string(event.result.rawValue), "link-error": .bool(event.linkError)])
    }
}
