import QMPWire

/// Reads QAPI schema text (QEMU's `scripts/qapi` language): JSON in QEMU's dialect,
/// single-quoted strings, `#` comments, one top-level expression after another.
enum QAPISource {
    static func expressions(_ source: [UInt8]) throws(QAPISchemaError) -> [JSON] {
        let (text, complete) = withoutComments(source)
        var reader = QMPInputReader()
        var expressions: [JSON] = []
        var failure: String?
        reader.feed(text) { input in
            switch input {
            case .value(let json): expressions.append(json)
            case .error(let text): failure = failure ?? text
            }
        }
        if let failure { throw QAPISchemaError("schema does not parse: \(failure)") }
        // The reader would wait for the rest of an unfinished expression; a file has no rest.
        guard complete else { throw QAPISchemaError("schema ends inside an expression") }
        return expressions
    }

    /// Removes `#` to the end of the line outside strings (doc blocks `##` included),
    /// keeping the newline so that tokens on either side stay apart; `complete` says
    /// whether every string, `{` and `[` was closed.
    static func withoutComments(_ source: [UInt8]) -> (text: [UInt8], complete: Bool) {
        var text: [UInt8] = []
        text.reserveCapacity(source.count)
        var inString = false
        var inComment = false
        var depth = 0
        for byte in source {
            if inComment {
                guard byte == UInt8(ascii: "\n") else { continue }
                inComment = false
            } else if byte == UInt8(ascii: "'") {
                inString.toggle()
            } else if !inString {
                switch byte {
                case UInt8(ascii: "#"):
                    inComment = true
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
            }
            text.append(byte)
        }
        return (text, !inString && depth == 0)
    }
}

/// Why the broker's schema file cannot be used.
package struct QAPISchemaError: Error, CustomStringConvertible, Sendable {
    package let description: String
    init(_ description: String) { self.description = description }
}
