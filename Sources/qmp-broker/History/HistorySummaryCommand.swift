import ArgumentParser
import BrokerState

/// `qmp-broker summary`: how many of each kind per device (ras-mc-ctl --summary style).
struct HistorySummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary", abstract: "Count the history per VM, device, kind and severity.")

    @OptionGroup var options: HistoryOptions

    func run() throws {
        let rows: [HistorySummaryRow]
        do {
            rows = try options.openStore().historySummary(try options.query(limit: Int.max))
        } catch let error as StateStoreError {
            throw ValidationError("Cannot read the history: \(error)")
        }
        if options.json {
            print(try JSONText.encode(rows.map(Entry.init)))
            return
        }
        guard !rows.isEmpty else {
            print("No records.")
            return
        }
        print(HistoryText.table(
            ["VM", "DEVICE", "HOST", "KIND", "SEVERITY", "RECORDS", "SIGNALS", "FIRST", "LAST"],
            rows.map { row in
                [row.vm, row.device, row.host, row.kind.rawValue, row.severity?.rawValue ?? "-", "\(row.records)",
                 "\(row.signals)", HumanTime.format(microseconds: row.firstMicroseconds),
                 HumanTime.format(microseconds: row.lastMicroseconds)]
            }))
    }

    struct Entry: Encodable {
        var vm, device, host, kind: String
        var severity: String?
        var records, signals: Int
        var first, last: String

        init(_ row: HistorySummaryRow) {
            vm = row.vm
            device = row.device
            host = row.host
            kind = row.kind.rawValue
            severity = row.severity?.rawValue
            records = row.records
            signals = row.signals
            first = HumanTime.iso(microseconds: row.firstMicroseconds)
            last = HumanTime.iso(microseconds: row.lastMicroseconds)
        }
    }
}
