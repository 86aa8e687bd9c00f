import ArgumentParser
import BrokerState
import Foundation

/// `qmp-broker history`: the records of the state database, oldest first.
struct HistoryListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Print the error history: errors, link resets, stops, conts and flag changes.")

    @OptionGroup var options: HistoryOptions

    @Option(help: "At most this many records (the newest).")
    var limit = 1000

    func run() throws {
        let records: [HistoryRecord]
        do {
            records = try options.openStore().historyRecords(try options.query(limit: limit))
        } catch let error as StateStoreError {
            throw ValidationError("Cannot read the history: \(error)")
        }
        if options.json {
            print(try JSONText.encode(records.map(Entry.init)))
        } else if records.isEmpty {
            print("No records.")
        } else {
            for record in records { print(HistoryText.line(record)) }
        }
    }

    /// The `--json` form: the same fields as `query-vfio-error-history`, with an ISO time.
    struct Entry: Encodable {
        var seq: Int64?
        var time: String
        var vm, device, host, kind: String
        var severity: String?
        var errors: [String]
        var count: Int
        var source, action: String?
        var linkError: Bool?
        var cause: String?

        enum CodingKeys: String, CodingKey {
            case seq, time, vm, device, host, kind, severity, errors, count, source, action, cause
            case linkError = "link-error"
        }

        init(_ record: HistoryRecord) {
            seq = record.sequence
            time = HumanTime.iso(microseconds: record.microsecondsSinceEpoch)
            vm = record.vm
            device = record.device
            host = record.host
            kind = record.kind.rawValue
            severity = record.severity?.rawValue
            errors = record.errors
            count = record.count
            source = record.source
            action = record.action
            linkError = record.linkError
            cause = record.cause
        }
    }
}

/// JSON text with keys in declaration order, for scripts.
enum JSONText {
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
