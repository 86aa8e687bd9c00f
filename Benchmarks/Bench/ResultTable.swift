/// One figure of the bench: its value, the baseline measured beside it in the same run,
/// and the goal set for it (none for figures shown only for context).
struct BenchRow {
    enum Goal {
        /// value / baseline at most this.
        case ratioAtMost(Double)
        /// value / baseline at least this.
        case ratioAtLeast(Double)
        case atMost(Double)
        case atLeast(Double)
        /// value − baseline at most this (the broker's own share of a path).
        case aboveBaselineAtMost(Double)

        func met(value: Double, ratio: Double?) -> Bool {
            switch self {
            case .aboveBaselineAtMost(let limit): ratio.map { value - value / $0 <= limit } ?? false
            case .ratioAtMost(let limit): ratio.map { $0 <= limit } ?? false
            case .ratioAtLeast(let limit): ratio.map { $0 >= limit } ?? false
            case .atMost(let limit): value <= limit
            case .atLeast(let limit): value >= limit
            }
        }

        func text(unit: String) -> String {
            switch self {
            case .ratioAtMost(let limit): "≤ \(ResultTable.format(limit, digits: 2))x"
            case .ratioAtLeast(let limit): "≥ \(ResultTable.format(limit, digits: 2))x"
            case .atMost(let limit): "< \(ResultTable.format(limit)) \(unit)"
            case .atLeast(let limit): "≥ \(ResultTable.format(limit)) \(unit)"
            case .aboveBaselineAtMost(let limit): "≤ +\(ResultTable.format(limit)) \(unit)"
            }
        }
    }

    var name: String
    var value: Double
    var unit: String
    var baselineName: String? = nil
    var baseline: Double? = nil
    var goals: [Goal] = []

    var ratio: Double? { baseline.map { value / $0 } }
}

/// The bench's output: one table, each row with value, baseline, ratio, goal and whether
/// it is met.
struct ResultTable {
    private(set) var rows: [BenchRow] = []
    private(set) var sections: [(title: String, firstRow: Int)] = []

    mutating func section(_ title: String) { sections.append((title, rows.count)) }
    mutating func add(_ row: BenchRow) { rows.append(row) }

    func render(header: String) -> String {
        var lines = [header]
        let titles = ["figure", "value", "baseline", "ratio", "goal", "met"]
        var cells: [[String]] = [titles]
        var sectionAt: [Int: String] = [:]
        for (title, first) in sections { sectionAt[first] = title }
        var sectionLines: [Int: String] = [:]
        for (index, row) in rows.enumerated() {
            if let title = sectionAt[index] { sectionLines[cells.count] = title }
            let baseline = row.baseline.map { "\(Self.withUnit($0, row.unit)) (\(row.baselineName ?? ""))" } ?? "-"
            let ratio = row.ratio.map { "\(Self.format($0, digits: 2))x" } ?? "-"
            let goal = row.goals.isEmpty ? "-" : row.goals.map { $0.text(unit: row.unit) }.joined(separator: ", ")
            let met = row.goals.isEmpty ? "-" : (row.goals.allSatisfy { $0.met(value: row.value, ratio: row.ratio) } ? "yes" : "NO")
            cells.append([row.name, Self.withUnit(row.value, row.unit), baseline, ratio, goal, met])
        }
        let widths = titles.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
        for (index, row) in cells.enumerated() {
            if let title = sectionLines[index] { lines.append("-- \(title)") }
            lines.append(zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }
                .joined(separator: "  ").trimmingTrailingSpaces())
        }
        return lines.joined(separator: "\n")
    }

    static func withUnit(_ value: Double, _ unit: String) -> String {
        unit.isEmpty ? format(value) : "\(format(value)) \(unit)"
    }

    /// Integers for large figures, two decimals below 10, with thousands grouped.
    static func format(_ value: Double, digits: Int? = nil) -> String {
        let places = digits ?? (abs(value) < 10 && value != value.rounded() ? 2 : 0)
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = String(abs(scaled) / Int(scale))
        var grouped = ""
        for (offset, digit) in whole.reversed().enumerated() {
            if offset > 0 && offset % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        var text = (scaled < 0 ? "-" : "") + String(grouped.reversed())
        if places > 0 {
            let fraction = String(abs(scaled) % Int(scale))
            text += "." + String(repeating: "0", count: places - fraction.count) + fraction
        }
        return text
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
