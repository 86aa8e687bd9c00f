import Glibc

/// One readable line per QMP event: local time with microseconds, name, data.
public enum EventFormatter {
    public static func line(_ event: JSON) -> String {
        let name = event["event"]?.string ?? "?"
        let data = event["data"].map { " " + $0.compactString() } ?? ""
        return "\(timestamp(event)) \(name)\(data)"
    }

    public static func timestamp(_ event: JSON) -> String {
        let seconds = event["timestamp"]?["seconds"]?.integer ?? 0
        let micros = event["timestamp"]?["microseconds"]?.integer ?? 0
        var time = time_t(seconds)
        var parts = tm()
        localtime_r(&time, &parts)
        var buffer = [UInt8](repeating: 0, count: 32)
        let length = buffer.withUnsafeMutableBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { strftime($0.baseAddress, $0.count, "%H:%M:%S", &parts) }
        }
        let fraction = String(micros)
        let padded = String(repeating: "0", count: max(0, 6 - fraction.count)) + fraction
        return "\(String(decoding: buffer[..<length], as: UTF8.self)).\(padded)"
    }
}
