import BrokerState

/// A history record in words, one line each (ras-mc-ctl --errors style).
enum HistoryText {
    static func line(_ record: HistoryRecord) -> String {
        let prefix = "\(record.sequence.map(String.init) ?? "-") \(HumanTime.format(microseconds: record.microsecondsSinceEpoch)) "
            + "\(record.vm) \(record.device) (\(record.host)): "
        return prefix + what(record) + (record.cause.map { "; cause: \($0)" } ?? "")
    }

    private static func what(_ record: HistoryRecord) -> String {
        switch record.kind {
        case .error:
            var text = "\(record.severity?.rawValue ?? "?") error"
            if !record.errors.isEmpty { text += " \(record.errors.joined(separator: ", "))" }
            if record.count > 1 { text += " (\(record.count) signals)" }
            if let source = record.source { text += " from \(source)" }
            if let action = record.action { text += ", action \(action)" }
            if record.linkError == true { text += ", link flagged" }
            return text
        case .linkReset:
            return "guest link reset" + (record.action.map { ", action \($0)" } ?? "")
        case .stop:
            return "VM stopped" + (record.source.map { " by \($0)" } ?? "")
        case .cont:
            return "VM resumed" + (record.source.map { " by \($0)" } ?? "")
        case .flagSet:
            return "link-error flag set" + (record.source.map { " by \($0)" } ?? "")
        case .flagCleared:
            return "link-error flag cleared" + (record.source.map { " by \($0)" } ?? "")
        }
    }

    /// Left-aligned columns, two spaces apart.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
