import QMPWire

/// One message from the VMM, as the raw line QEMU wrote plus where its top-level
/// members are. QEMU's output is well-formed JSON, so a single pass that tracks strings
/// and nesting finds them; nothing is parsed or copied on the reply path, and the
/// client's reply is the VMM's own bytes with only the `id` value swapped.
package struct UpstreamLine: Sendable {
    package let bytes: ArraySlice<UInt8>
    /// Top-level members: key text range (without quotes) and value range, in order.
    private(set) var members: [(key: Range<Int>, value: Range<Int>)] = []

    /// Nil when the line is not a JSON object (garbage from a misbehaving peer).
    package init?(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        guard scan() else { return nil }
    }

    func value(of key: String) -> Range<Int>? {
        let wanted = key.utf8
        return members.first { bytes[$0.key].elementsEqual(wanted) }?.value
    }

    package func has(_ key: String) -> Bool { value(of: key) != nil }

    /// A top-level string member without escapes (event names), read without parsing.
    package func plainString(_ key: String) -> String? {
        guard let range = value(of: key), range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\""),
              !bytes[range].contains(UInt8(ascii: "\\")) else { return nil }
        return String(decoding: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)], as: UTF8.self)
    }

    /// The whole message parsed, for the rare consumers that need its content.
    package var json: JSON? { try? JSON.parse(bytes) }

    /// The broker's integer id, read straight from the bytes.
    package var brokerID: Int64? {
        guard let range = value(of: "id"), !range.isEmpty else { return nil }
        var result: Int64 = 0
        for byte in bytes[range] {
            guard byte >= 48 && byte <= 57 else { return nil }
            let (shifted, overflow) = result.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            result = shifted + Int64(byte - 48)
        }
        return result
    }

    /// The message as a client must see it: `id` replaced by `clientID` (already written
    /// QEMU's way), or removed with its separator when the client sent none.
    package func replacingID(with clientID: [UInt8]?) -> [UInt8] {
        guard let index = members.firstIndex(where: { bytes[$0.key].elementsEqual("id".utf8) }) else {
            return Array(bytes)
        }
        let member = members[index]
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + (clientID?.count ?? 0))
        if let clientID {
            result += bytes[bytes.startIndex..<member.value.lowerBound]
            result += clientID
            result += bytes[member.value.upperBound...]
            return result
        }
        // Drop `"id": N` with the `, ` before it, or after it when it comes first.
        let keyStart = member.key.lowerBound - 1
        if index > 0 {
            let previousEnd = members[index - 1].value.upperBound
            result += bytes[bytes.startIndex..<previousEnd]
            result += bytes[member.value.upperBound...]
        } else if index + 1 < members.count {
            result += bytes[bytes.startIndex..<keyStart]
            result += bytes[(members[index + 1].key.lowerBound - 1)...]
        } else {
            result += bytes[bytes.startIndex..<keyStart]
            result += bytes[member.value.upperBound...]
        }
        return result
    }

    private mutating func scan() -> Bool {
        var index = bytes.startIndex
        let end = bytes.endIndex
        func skipSpace() { while index < end, bytes[index] == 32 || bytes[index] == 9 { index += 1 } }
        /// Moves past a string starting at `index` (a quote); returns the range inside the quotes.
        func skipString() -> Range<Int>? {
            let start = index + 1
            index += 1
            while index < end {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return start..<(index - 1)
                default: index += 1
                }
            }
            return nil
        }
        /// Moves past one value; returns its range.
        func skipValue() -> Range<Int>? {
            let start = index
            var depth = 0
            while index < end {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString() != nil else { return nil }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return start..<index }
                    depth -= 1
                case UInt8(ascii: ","):
                    if depth == 0 { return start..<index }
                default: break
                }
                index += 1
            }
            return nil
        }
        skipSpace()
        guard index < end, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipSpace()
        if index < end, bytes[index] == UInt8(ascii: "}") { return true }
        while index < end {
            skipSpace()
            guard index < end, bytes[index] == UInt8(ascii: "\""), let key = skipString() else { return false }
            skipSpace()
            guard index < end, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            skipSpace()
            guard let value = skipValue() else { return false }
            var trimmed = value
            while trimmed.upperBound > trimmed.lowerBound, bytes[trimmed.upperBound - 1] == 32 {
                trimmed = trimmed.lowerBound..<(trimmed.upperBound - 1)
            }
            members.append((key, trimmed))
            guard index < end else { return false }
            if bytes[index] == UInt8(ascii: "}") { return true }
            index += 1  // the comma
        }
        return false
    }
}

extension LineSplitter {
    /// For the VMM's QMP output. A larger line means the peer is not a QMP server (QEMU's
    /// largest reply, the schema, is a few hundred KiB).
    package static var qmp: LineSplitter { LineSplitter(maximumLineLength: 64 << 20) }
}
