/// Hex digits as QEMU prints them in trace lines (`%02x`, `0x%x`), read straight from the
/// line's bytes: no Foundation, no allocation on the parse path.
enum TraceHex {
    /// The value of 1...maxDigits hex digits (either case), or nil.
    static func value(_ digits: TraceBytes, maxDigits: Int) -> UInt32? {
        guard !digits.isEmpty, digits.count <= maxDigits else { return nil }
        var result: UInt32 = 0
        var index = digits.start
        while index < digits.end {
            guard let digit = digit(digits[index]) else { return nil }
            result = result << 4 | digit
            index += 1
        }
        return result
    }

    /// `0x` followed by 1...8 hex digits, as QEMU's `0x%x` prints.
    static func prefixed(_ token: TraceBytes) -> UInt32? {
        guard token.count > 2, token[token.start] == UInt8(ascii: "0"),
              token[token.start + 1] | 0x20 == UInt8(ascii: "x") else { return nil }
        return value(token.dropFirst(2), maxDigits: 8)
    }

    static func digit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    static func padded(_ value: some BinaryInteger, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
