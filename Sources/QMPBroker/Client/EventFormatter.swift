import Glibc
import QMPWire

/// One readable line per QMP event: local time with microseconds, name, data.
package enum EventFormatter {
    package static func line(_ event: JSON) -> String {
        let name = event["event"]?.string ?? "?"
        let data = event["data"].map { " " + $0.compactString() } ?? ""
        return "\(timestamp(event)) \(name)\(data)"
    }

    /// Local time of day with microseconds: "10:47:12.345678".
    package static func timestamp(_ event: JSON) -> String { format(event, utc: false, "%H:%M:%S") }

    /// The full UTC time: "2026-12-01T10:47:12.345678Z".
    package static func isoTimestamp(_ event: JSON) -> String { format(event, utc: true, "%Y-%m-%dT%H:%M:%S") + "Z" }

    private static func format(_ event: JSON, utc: Bool, _ pattern: String) -> String {
        let seconds = event["timestamp"]?["seconds"]?.integer ?? 0
        let micros = event["timestamp"]?["microseconds"]?.integer ?? 0
        var time = time_t(seconds)
        var parts = tm()
        if utc { gmtime_r(&time, &parts) } else { localtime_r(&time, &parts) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let length = buffer.withUnsafeMutableBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { strftime($0.baseAddress, $0.count, pattern, &parts) }
        }
        let fraction = String(micros)
        let padded = String(repeating: "0", count: max(0, 6 - fraction.count)) + fraction
        return "\(String(decoding: buffer[..<length], as: UTF8.self)).\(padded)"
    }
}
