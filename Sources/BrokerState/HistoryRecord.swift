import ErrorEvents

/// One line of the operator's history: an error (a `VFIO_PCI_ERROR` as emitted), a link
/// reset, a stop or cont, or a flag set or cleared, with what it was about and why it happened.
public struct HistoryRecord: Hashable, Sendable {
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        case error
        case linkReset = "link-reset"
        case stop
        case cont
        case flagSet = "flag-set"
        case flagCleared = "flag-cleared"
    }

    /// The order of recording; nil until stored.
    public var sequence: Int64?
    public var microsecondsSinceEpoch: Int64
    public var vm: String
    public var device: String
    public var host: String
    public var kind: Kind
    public var severity: Severity?
    /// The host's AER names (errors only).
    public var errors: [String]
    public var count: Int
    /// Where it came from: an error source (eventfd, sysfs, uevent, inject, ...), "guest",
    /// "operator" or "broker".
    public var source: String?
    /// What the broker did: forward, stop, none (errors), or the command it issued.
    public var action: String?
    /// The flag after this record.
    public var linkError: Bool?
    /// Why, in words: "guest reset of a flagged link", "operator uid=0 pid=4242", "host-recovered".
    public var cause: String?

    public init(vm: String, device: String, host: String, kind: Kind, severity: Severity? = nil, errors: [String] = [],
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
    public init(vm: String, device: String, host: String, _ event: PCIErrorEvent, cause: String? = nil,
                microsecondsSinceEpoch: Int64 = WallClock.microsecondsSinceEpoch()) {
        self.init(vm: vm, device: device, host: host, kind: .error, severity: event.severity, errors: event.errorNames,
                  count: event.count, source: event.source.rawValue, action: event.action.rawValue,
                  linkError: event.linkError, cause: cause, microsecondsSinceEpoch: microsecondsSinceEpoch)
    }
}

/// Which records to read: all filters optional, newest `limit` kept, returned oldest first.
public struct HistoryQuery: Sendable, Equatable {
    public var vm: String?
    public var device: String?
    public var sinceMicroseconds: Int64?
    public var kinds: [HistoryRecord.Kind] = []
    public var limit = 1000

    public init(vm: String? = nil, device: String? = nil, sinceMicroseconds: Int64? = nil,
                kinds: [HistoryRecord.Kind] = [], limit: Int = 1000) {
        self.vm = vm
        self.device = device
        self.sinceMicroseconds = sinceMicroseconds
        self.kinds = kinds
        self.limit = limit
    }
}

/// `ras-mc-ctl --summary` style: how many of each kind (and severity) per device.
public struct HistorySummaryRow: Hashable, Sendable, Codable {
    public var vm: String
    public var device: String
    public var host: String
    public var kind: HistoryRecord.Kind
    public var severity: Severity?
    /// Records, and signals (errors coalesce several into one record).
    public var records: Int
    public var signals: Int
    public var firstMicroseconds: Int64
    public var lastMicroseconds: Int64
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
