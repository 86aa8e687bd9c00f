/// QEMU's `util/unicode.c`: the "modified UTF-8" QEMU uses for its strings
/// (UTF-8, except U+0000 is written `C0 80` so C strings can hold it).
///
/// The parser uses it to validate string bytes; `QEMUText` uses it to show
/// error texts the way QEMU's JSON writer would.
enum ModifiedUTF8 {
    /// `mod_utf8_codepoint()`: decodes the sequence at `start`, reading bytes past
    /// the end as NUL (QEMU reads C strings). Returns -1 for an invalid sequence;
    /// `end` is where QEMU resumes (after the bytes it looked at).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> (codepoint: Int32, end: Int) {
        func byte(_ index: Int) -> UInt32 { index < bytes.count ? UInt32(bytes[index]) : 0 }
        let lead = byte(start)
        if lead == 0 { return (-1, start) }
        if lead < 0x80 { return (Int32(lead), start + 1) }
        // 0xFE, 0xFF are impossible; 10xxxxxx is an unexpected continuation byte.
        if lead >= 0xFE || lead & 0x40 == 0 { return (-1, start + 1) }

        var length = 0
        var mask: UInt32 = 0x80
        while lead & mask != 0 {
            length += 1
            mask >>= 1
        }
        var codepoint = lead & (mask - 1)
        var index = start + 1
        for _ in 1..<length {
            let next = byte(index)
            if next & 0xC0 != 0x80 { return (-1, index) }
            index += 1
            codepoint = codepoint << 6 | next & 0x3F
        }
        guard isValid(Int32(bitPattern: codepoint)) else { return (-1, index) }
        // Overlong forms are invalid, except C0 80, modified UTF-8's U+0000.
        let shortest: UInt32 = switch length {
        case 2: 0x80
        case 3: 0x800
        case 4: 0x10000
        case 5: 0x200000
        default: 0x4000000
        }
        if codepoint < shortest && !(codepoint == 0 && length == 2) { return (-1, index) }
        return (Int32(codepoint), index)
    }

    /// `is_valid_codepoint()`: in Unicode's range, not one of the 66 noncharacters,
    /// not a surrogate. Negative values (QEMU's "invalid") are invalid too.
    static func isValid(_ codepoint: Int32) -> Bool {
        if codepoint < 0 || codepoint > 0x10FFFF { return false }
        if (0xFDD0...0xFDEF).contains(codepoint) || codepoint & 0xFFFE == 0xFFFE { return false }
        return !(0xD800...0xDFFF).contains(codepoint)
    }

    /// Appends `codepoint` (valid) as standard UTF-8, with U+0000 as a real NUL byte:
    /// jansson holds counted strings and writes NUL as `\u0000`, as QEMU does for `C0 80`.
    static func append(_ codepoint: Int32, to bytes: inout [UInt8]) {
        let value = UInt32(codepoint)
        switch value {
        case 0..<0x80:
            bytes.append(UInt8(value))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | value >> 6))
            bytes.append(UInt8(0x80 | value & 0x3F))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | value >> 12))
            bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | value >> 18))
            bytes.append(UInt8(0x80 | value >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        }
    }
}

/// How QEMU shows a C string it built from raw input (an error text quoting bytes).
enum QEMUText {
    /// The text up to the first NUL, each invalid sequence shown as U+FFFD and
    /// `C0 80` as U+0000: what QEMU's JSON writer (`quoted_str()`) outputs.
    static func render(_ bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        bytes.withUnsafeBufferPointer { buffer in
            var index = 0
            while index < buffer.count && buffer[index] != 0 {
                let (codepoint, end) = ModifiedUTF8.decode(buffer, at: index)
                scalars.append(codepoint < 0 ? "\u{FFFD}" : Unicode.Scalar(UInt32(codepoint))!)
                index = end
            }
        }
        return String(scalars)
    }
}
