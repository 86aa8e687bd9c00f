import CJansson
import Glibc

/// Writes JSON the way QEMU's `qobject/json-writer.c` does, so that anything the broker
/// says itself (errors, local replies, a client's id put back into a reply) is byte for
/// byte what QEMU would have said: `", "`/`": "` separators, integers as `%lld`, doubles
/// as `%.17g` (`-0`, `1e+20`), and every character outside printable ASCII as an
/// upper-case `\uXXXX` escape (surrogate pairs beyond the BMP). Members are written in
/// the object's own order: broker-built objects are made in QDict order (`JSON.qdict`),
/// and a client's id is put in that order when it is read (`QDictOrder.canonical`).
package enum QEMUJSONWriter {
    package static func write(_ value: JSON) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        append(value.raw, to: &bytes)
        return bytes
    }

    static func append(_ value: JSON, to bytes: inout [UInt8]) { append(value.raw, to: &bytes) }

    private static func append(_ raw: UnsafeMutablePointer<json_t>, to bytes: inout [UInt8]) {
        switch cj_typeof(raw) {
        case Int32(JSON_OBJECT.rawValue):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            var iterator = json_object_iter(raw)
            while let current = iterator {
                if !first { bytes += [44, 32] }
                first = false
                appendString(UnsafeRawPointer(json_object_iter_key(current)),
                             count: json_object_iter_key_len(current), to: &bytes)
                bytes += [58, 32]
                append(json_object_iter_value(current), to: &bytes)
                iterator = json_object_iter_next(raw, current)
            }
            bytes.append(UInt8(ascii: "}"))
        case Int32(JSON_ARRAY.rawValue):
            bytes.append(UInt8(ascii: "["))
            for index in 0..<json_array_size(raw) {
                if index > 0 { bytes += [44, 32] }
                append(json_array_get(raw, index), to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case Int32(JSON_STRING.rawValue):
            appendString(UnsafeRawPointer(json_string_value(raw)), count: json_string_length(raw), to: &bytes)
        case Int32(JSON_INTEGER.rawValue):
            bytes += String(json_integer_value(raw)).utf8
        case Int32(JSON_REAL.rawValue):
            appendDouble(json_real_value(raw), to: &bytes)
        case Int32(JSON_TRUE.rawValue):
            bytes += "true".utf8
        case Int32(JSON_FALSE.rawValue):
            bytes += "false".utf8
        default:
            bytes += "null".utf8
        }
    }

    private static func appendDouble(_ value: Double, to bytes: inout [UInt8]) {
        var buffer = [CChar](repeating: 0, count: 40)
        let count = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.17g", $0) }
        buffer.withUnsafeBytes { bytes += $0.prefix(Int(count)) }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func appendString(_ pointer: UnsafeRawPointer?, count: Int, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        guard let pointer else {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        let text = UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: UInt8.self), count: count)
        var index = 0
        while index < text.count {
            let byte = text[index]
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                bytes.append(byte)
                index += 1
                continue
            }
            let (scalar, length) = decodeScalar(text, at: index)
            index += length
            switch scalar {
            case 0x22: bytes += [92, 34]
            case 0x5C: bytes += [92, 92]
            case 0x08: bytes += [92, UInt8(ascii: "b")]
            case 0x0C: bytes += [92, UInt8(ascii: "f")]
            case 0x0A: bytes += [92, UInt8(ascii: "n")]
            case 0x0D: bytes += [92, UInt8(ascii: "r")]
            case 0x09: bytes += [92, UInt8(ascii: "t")]
            case 0x10000...:
                appendEscape(0xD800 + ((scalar - 0x10000) >> 10), to: &bytes)
                appendEscape(0xDC00 + ((scalar - 0x10000) & 0x3FF), to: &bytes)
            default:
                appendEscape(scalar, to: &bytes)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ unit: UInt32, to bytes: inout [UInt8]) {
        bytes += [92, UInt8(ascii: "u")]
        for shift in stride(from: 12, through: 0, by: -4) { bytes.append(hexDigits[Int((unit >> UInt32(shift)) & 0xF)]) }
    }

    /// jansson strings are valid UTF-8; an invalid byte (never expected) becomes U+FFFD as in QEMU.
    private static func decodeScalar(_ text: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32, Int) {
        let lead = UInt32(text[index])
        let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        guard index + length <= text.count, lead < 0x80 || lead >= 0xC2 else { return (0xFFFD, 1) }
        if length == 1 { return (lead, 1) }
        var scalar = lead & (0xFF >> UInt32(length + 1))
        for offset in 1..<length {
            let next = UInt32(text[index + offset])
            guard next & 0xC0 == 0x80 else { return (0xFFFD, 1) }
            scalar = scalar << 6 | next & 0x3F
        }
        return (scalar, length)
    }
}
