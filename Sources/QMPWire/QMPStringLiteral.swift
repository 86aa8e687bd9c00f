/// QEMU's `parse_string()`: decodes one string token, quotes included.
///
/// Escapes are JSON's plus `\'`; `\u` takes surrogate pairs; raw bytes must be
/// modified UTF-8 (control characters never get here: the lexer rejects them).
/// U+0000 (`\u0000` or raw `C0 80`) becomes a NUL byte, which jansson keeps and
/// writes back as `\u0000`, just as QEMU writes its `C0 80`.
enum QMPStringLiteral {
    static func decode(_ string: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) throws(QMPParseError) {
        let quote = string[0]
        // QEMU reads a C string: past the token's end there is a NUL.
        func at(_ index: Int) -> UInt8 { index < string.count ? string[index] : 0 }

        var index = 1
        while index < string.count && string[index] != quote {
            let byte = string[index]
            if byte == UInt8(ascii: "\\") {
                let escape = index
                index += 2
                switch at(escape + 1) {
                case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                    output.append(at(escape + 1))
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0C)
                case UInt8(ascii: "n"): output.append(0x0A)
                case UInt8(ascii: "r"): output.append(0x0D)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    var codepoint = hex4(string, at: index)
                    index += 4
                    if (0xD800...0xDBFF).contains(codepoint) && at(index) == UInt8(ascii: "\\")
                        && at(index + 1) == UInt8(ascii: "u") {
                        let trailing = hex4(string, at: index + 2)
                        if (0xDC00...0xDFFF).contains(trailing) {
                            codepoint = (0x10000 + ((codepoint & 0x3FF) << 10)) | (trailing & 0x3FF)
                            index += 6
                        } else {
                            codepoint = -1
                        }
                    }
                    guard ModifiedUTF8.isValid(codepoint) else {
                        // QEMU prints "%.*s" of the escape as far as it read, up to the NUL.
                        let shown = string[escape..<min(index, string.count)]
                        throw QMPParseError(Array(shown) + Array(" is not a valid Unicode character".utf8))
                    }
                    ModifiedUTF8.append(codepoint, to: &output)
                default:
                    throw QMPParseError("invalid escape sequence in string")
                }
            } else if byte < 0x80 {
                // Plain ASCII stands for itself: copy the whole run at once.
                var end = index + 1
                while end < string.count, string[end] < 0x80, string[end] != quote, string[end] != UInt8(ascii: "\\") {
                    end += 1
                }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: string[index..<end]))
                index = end
            } else {
                let (codepoint, end) = ModifiedUTF8.decode(string, at: index)
                guard codepoint >= 0 else { throw QMPParseError("invalid UTF-8 sequence in string") }
                if codepoint == 0 {
                    output.append(0)
                } else {
                    output.append(contentsOf: string[index..<end])
                }
                index = end
            }
        }
    }

    /// QEMU's `cvt4hex()`: four hex digits, or -1 at the first non-digit (the end counts as NUL).
    private static func hex4(_ string: UnsafeBufferPointer<UInt8>, at start: Int) -> Int32 {
        var value: Int32 = 0
        for index in start..<start + 4 {
            let char = index < string.count ? string[index] : 0
            let digit: UInt8
            switch char {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = char - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = char - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = char - UInt8(ascii: "A") + 10
            default: return -1
            }
            value = value << 4 | Int32(digit)
        }
        return value
    }
}
