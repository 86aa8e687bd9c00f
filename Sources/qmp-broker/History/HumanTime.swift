import Glibc

/// Times as an operator reads and types them: UTC with milliseconds, and `--since`
/// as a duration back from now ("90s", "15m", "2h", "7d") or a UTC date and time.
enum HumanTime {
    /// "2026-12-01 10:47:12.345 UTC"
    static func format(microseconds: Int64) -> String {
        "\(calendar(microseconds, "%Y-%m-%d %H:%M:%S")).\(pad(Int((microseconds % 1_000_000) / 1000), 3)) UTC"
    }

    /// "2026-12-01T10:47:12.345Z", for JSON.
    static func iso(microseconds: Int64) -> String {
        "\(calendar(microseconds, "%Y-%m-%dT%H:%M:%S")).\(pad(Int((microseconds % 1_000_000) / 1000), 3))Z"
    }

    /// Microseconds since the epoch for a `--since` value, nil if it is none of the forms.
    static func parseSince(_ text: String, now: Int64) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        if let unit = text.last.flatMap({ units[$0] }), let amount = Int64(text.dropLast()), amount >= 0 {
            return now - amount * unit * 1_000_000
        }
        if text.hasPrefix("@"), let seconds = Int64(text.dropFirst()) { return seconds * 1_000_000 }
        let trimmed = text.hasSuffix("Z") ? String(text.dropLast()) : text
        return utc(trimmed).map { $0 * 1_000_000 }
    }

    /// "YYYY-MM-DD", optionally followed by "T" or " " and "HH:MM" or "HH:MM:SS", as UTC seconds.
    private static func utc(_ text: String) -> Int64? {
        let halves = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "T" || $0 == " " })
        guard halves.count <= 2 else { return nil }
        let date = halves[0].split(separator: "-", omittingEmptySubsequences: false).map { Int32($0) }
        let clock = halves.count == 2 ? halves[1].split(separator: ":", omittingEmptySubsequences: false).map { Int32($0) } : []
        guard date.count == 3, date.allSatisfy({ $0 != nil }), [0, 2, 3].contains(clock.count),
              clock.allSatisfy({ $0 != nil }) else { return nil }
        var fields = tm()
        fields.tm_year = date[0]! - 1900
        fields.tm_mon = date[1]! - 1
        fields.tm_mday = date[2]!
        fields.tm_hour = clock.first.map { $0! } ?? 0
        fields.tm_min = clock.count > 1 ? clock[1]! : 0
        fields.tm_sec = clock.count > 2 ? clock[2]! : 0
        guard (1...12).contains(date[1]!), (1...31).contains(fields.tm_mday), (0...23).contains(fields.tm_hour),
              (0...59).contains(fields.tm_min), (0...60).contains(fields.tm_sec) else { return nil }
        return Int64(timegm(&fields))
    }

    static let sinceHelp = "Only records since: a duration back from now (90s, 15m, 2h, 7d, 1w), a UTC time (2026-12-01, 2026-12-01T10:00:00Z) or @EPOCH_SECONDS."

    private static func calendar(_ microseconds: Int64, _ format: String) -> String {
        var seconds = time_t(microseconds / 1_000_000)
        var fields = tm()
        gmtime_r(&seconds, &fields)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, format, &fields)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
