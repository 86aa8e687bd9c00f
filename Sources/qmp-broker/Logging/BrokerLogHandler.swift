import BrokerState
import Foundation
import Glibc
import Logging

/// The daemon's log handler: every line says when (ms, UTC), how bad, what, and the
/// plain values it is about, in the chosen format.
struct BrokerLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    let format: LogFormat

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let message = event.message.description
        switch format {
        case .text:
            let values = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.plain($0.value))" }
            Self.writeStderr(([Self.timestamp(), event.level.rawValue] + values + [message]).joined(separator: " "))
        case .json:
            var object: [String: String] = ["time": Self.timestamp(), "level": event.level.rawValue, "message": message]
            for (key, value) in fields where object[key] == nil { object[key] = Self.plain(value) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            if let data = try? encoder.encode(object) { Self.writeStderr(String(decoding: data, as: UTF8.self)) }
        case .journal:
            var entry: [(String, String)] = [
                ("MESSAGE", message), ("PRIORITY", "\(Self.syslogPriority(event.level))"),
                ("SYSLOG_IDENTIFIER", "qmp-broker"), ("CODE_FILE", event.file), ("CODE_LINE", "\(event.line)"),
            ]
            entry += fields.sorted { $0.key < $1.key }.map { (JournalSocket.fieldName($0.key), Self.plain($0.value)) }
            if !JournalSocket.send(entry) {
                Self.writeStderr("<\(Self.syslogPriority(event.level))>\(message)")
            }
        }
    }

    /// Metadata values as an operator wants them: strings bare, lists comma-separated.
    static func plain(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(plain).joined(separator: ",")
        case .dictionary(let values): values.sorted { $0.key < $1.key }.map { "\($0.key):\(plain($0.value))" }.joined(separator: ",")
        }
    }

    /// error for fatal errors, warning for non-fatal, info for correctable: syslog's scale.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// "2026-12-01T10:47:12.345Z"
    static func timestamp() -> String {
        let now = WallClock.microsecondsSinceEpoch()
        var seconds = time_t(now / 1_000_000)
        var fields = tm()
        gmtime_r(&seconds, &fields)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &fields)
        let millis = String(now % 1_000_000 / 1_000)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            + "." + String(repeating: "0", count: 3 - millis.count) + millis + "Z"
    }

    /// One write per line, so lines from several threads never interleave.
    static func writeStderr(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            offset += written
        }
    }
}
