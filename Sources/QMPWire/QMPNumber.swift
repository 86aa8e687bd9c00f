/// QEMU's number literals as jansson values (`parse_literal()`).
///
/// QEMU keeps an integer as int64 if it fits, else as uint64 if it fits, else as
/// a double (`strtod`); a float token is always a double. jansson has no uint64,
/// so integers in (INT64_MAX, UINT64_MAX] become reals: the value survives only
/// to 53 bits and is written back as a real (QEMU would echo the exact integer).
/// jansson has no infinity either: an overflowing literal such as `1e999`, which
/// QEMU keeps as inf (and writes back as the non-JSON `inf`), becomes ±DBL_MAX.
enum QMPNumber {
    static func integer(_ text: UnsafeBufferPointer<UInt8>) -> JSON {
        let negative = text.first == UInt8(ascii: "-")
        let digits = UnsafeBufferPointer(rebasing: text[(negative ? 1 : 0)...])
        if let value = int64(digits, negative: negative) { return .integer(value) }
        if !negative, let value = uint64(digits) { return .real(Double(value)) }
        return float(text)
    }

    static func float(_ text: UnsafeBufferPointer<UInt8>) -> JSON {
        // The lexer only lets through -?digits[.digits][e[+-]digits], which Swift's
        // correctly rounded parser reads exactly like glibc's strtod.
        let value = Double(String(decoding: text, as: UTF8.self)) ?? 0
        return .real(value.isFinite ? value : (value < 0 ? -Double.greatestFiniteMagnitude : .greatestFiniteMagnitude))
    }

    /// Accumulates towards the sign so that INT64_MIN parses.
    private static func int64(_ digits: UnsafeBufferPointer<UInt8>, negative: Bool) -> Int64? {
        var value: Int64 = 0
        for char in digits {
            let digit = Int64(char &- UInt8(ascii: "0"))
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflow || carry { return nil }
            value = sum
        }
        return value
    }

    private static func uint64(_ digits: UnsafeBufferPointer<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for char in digits {
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = shifted.addingReportingOverflow(UInt64(char &- UInt8(ascii: "0")))
            if overflow || carry { return nil }
            value = sum
        }
        return value
    }
}
