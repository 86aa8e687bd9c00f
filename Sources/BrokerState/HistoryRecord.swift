import ErrorEvents

/// One line of the operator's history: an error (a `VFIO_PCI_ERROR` as emitted), a link
/// reset, a stop or cont, or a flag set or cleared, with what it was about and why it happened.
package struct HistoryRecord: Hashable, Sendable {
    package enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        case error
        case linkReset = "link-reset"
        case stop
        case cont
        case flagSet = "flag-set"
        case flagCleared = "flag-cleared"
    }

    /// The order of recording; nil until stored.
    package var sequence: Int64?
    package var microsecondsSinceEpoch: Int64
    package var vm: String
    package var device: String
    package var host: String
    package var kind: Kind
    package var severity: Severity?
    /// The host's AER names (errors only).
    package var errors: [String]
    package var count: Int
    /// Where it came from: an error source (eventfd, sysfs, uevent, inject, ...), "guest",
    /// "operator" or "broker".
    package var source: String?
    /// What the broker did: forward, stop, none (errors), or the command it issued.
    package var action: String?
    /// The flag after this record.
    package var linkError: Bool?
    /// Why, in words: "guest reset of a flagged link", "operator uid=0 pid=4242", "host-recovered".
    package var cause: String?

    package init(vm: String, device: String, host: String, kind: Kind, severity: Severity? = nil, errors: [String] = [],
                count: Int = 1, source: String? = nil, action: String? = nil, linkError: Bool? = nil, cause: String? = nil,
                microsecondsSinceEpoch: Int64 = WallClock.microsecondsSinceEpoch()) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
        self.vm = vm
        self.device = device
        self.host = host
        self.kind = kind
        self.severity = severity
        self.errors = errors
        self.count = max(1, count)
        self.source = source
        self.action = action
        self.linkError = linkError
        self.cause = cause
    }

    /// The record of a `VFIO_PCI_ERROR` the broker is emitting (or has just emitted).
    package init(vm: String, device: String, host: String, _ event: PCIErrorEvent, cause: String? = nil,
                microsecondsSinceEpoch: Int64 = WallClock.microsecondsSinceEpoch()) {
        self.init(vm: vm, device: device, host: host, kind: .error, severity: event.severity, errors: event.errorNames,
                  count: event.count, source: event.source.rawValue, action: event.action.rawValue,
                  linkError: event.linkError, cause: cause, microsecondsSinceEpoch: microsecondsSinceEpoch)
    }
}

/// Which records to read: all filters optional, newest `limit` kept, returned oldest first.
package struct HistoryQuery: Sendable, Equatable {
    package var vm: String?
    package var device: String?
    package var sinceMicroseconds: Int64?
    package var kinds: [HistoryRecord.Kind] = []
    package var limit = 1000

    package init(vm: String? = nil, device: String? = nil, sinceMicroseconds: Int64? = nil,
                kinds: [HistoryRecord.Kind] = [], limit: Int = 1000) {
        self.vm = vm
        self.device = device
        self.sinceMicroseconds = sinceMicroseconds
        self.kinds = kinds
        self.limit = limit
    }
}

/// `ras-mc-ctl --summary` style: how many of each kind (and severity) per device.
package struct HistorySummaryRow: Hashable, Sendable, Codable {
    package var vm: String
    package var device: String
    package var host: String
    package var kind: HistoryRecord.Kind
    package var severity: Severity?
    /// Records, and signals (errors coalesce several into one record).
    package var records: Int
    package var signals: Int
    package var firstMicroseconds: Int64
    package var lastMicroseconds: Int64
}

/// How much history is kept: rows older than `maxAgeMicroseconds` and beyond the newest
/// `maxRows` are deleted.
public struct HistoryRetention: Sendable, Equatable {
    public var maxAgeMicroseconds: Int64
    public var maxRows: Int

    public static let defaultMaxAgeDays = 90
    public static let defaultMaxRows = 100_000

    public init(maxAgeDays: Int = Self.defaultMaxAgeDays, maxRows: Int = Self.defaultMaxRows) {
        self.maxAgeMicroseconds = Int64(maxAgeDays) * 86_400 * 1_000_000
        self.maxRows = maxRows
    }
}
