@testable import QMPWire
import Testing

/// Every error text below is what QEMU 7.2.22 (`qemu-system-x86_64 -M none`) answered
/// for the same bytes on its QMP socket, as the `desc` of a `GenericError`.
struct QMPInputErrorTextTests {
    struct Case: CustomStringConvertible, Sendable {
        let input: [UInt8]
        let expected: [ReaderOutput]
        var description: String { String(decoding: input, as: UTF8.self).debugDescription }

        init(_ input: [UInt8], _ expected: ReaderOutput...) { (self.input, self.expected) = (input, expected) }
        init(_ input: String, _ expected: ReaderOutput...) { (self.input, self.expected) = (Array(input.utf8), expected) }
    }

    /// Bytes no token can start with or contain: QEMU quotes the token so far.
    @Test(arguments: [
        Case("\u{01}", jsonParseError("stray '\u{01}'")),
        Case([0xFF], jsonParseError("stray '\u{FFFD}'")),
        Case([0x00], jsonParseError("stray ''")),
        Case([0x7F], jsonParseError("stray '\u{7F}'")),
        Case("%", jsonParseError("stray '%'")),
        Case("/", jsonParseError("stray '/'")),
        Case("-x ", jsonParseError("stray '-x'")),
        Case("01", jsonParseError("stray '01'")),
        Case("1.x", jsonParseError("stray '1.x'")),
        Case("1ex", jsonParseError("stray '1ex'")),
        Case("1e+x", jsonParseError("stray '1e+x'")),
        Case("\"abc\n", jsonParseError("stray '\"abc\n'")),
        Case("'abc\u{01}", jsonParseError("stray ''abc\u{01}'")),
        Case("\"\\\u{01}", jsonParseError("stray '\"\\\u{01}'")),
        // Quoted bytes are shown as QEMU's JSON writer shows them: invalid UTF-8 as U+FFFD,
        // nothing after a NUL. The bytes after the error are skipped by the recovery.
        Case([0xC3, 0xA9], jsonParseError("stray '\u{FFFD}'")),
        Case([0xFE], jsonParseError("stray '\u{FFFD}'")),
        Case([0x22, 0xC3, 0xA9, 0x0A], jsonParseError("stray '\"é\n'")),
        Case([0x22, 0x61, 0x62, 0x00, 0x63, 0x64, 0x22], jsonParseError("stray '\"ab'")),
    ])
    func lexicalErrors(_ test: Case) {
        #expect(readAll(test.input) == test.expected)
    }

    @Test(arguments: [
        Case(#"{"a" 1}"#, jsonParseError("missing : in object pair")),
        Case("{1:2}", jsonParseError("key is not a string in object")),
        Case(#"{"a":}"#, jsonParseError("expecting value")),
        Case("[1 2]", jsonParseError("expected separator in list")),
        Case(#"{"a":1 "b":2}"#, jsonParseError("expected separator in dict")),
        Case("[1,]", jsonParseError("expecting value")),
        Case(#"{"a":1,"a":2}"#, jsonParseError("duplicate key")),
        Case("foo ", jsonParseError("invalid keyword 'foo'")),
        Case("}", jsonParseError("expecting value")),
        Case("]", jsonParseError("expecting value")),
        Case(":", jsonParseError("expecting value")),
        Case(",", jsonParseError("expecting value")),
        Case(#"{{"a":1}:2}"#, jsonParseError("key is not a string in object")),
        Case(#"{"a":1,}"#, jsonParseError("expecting value")),
        Case("{,}", jsonParseError("expecting value")),
        Case("[,1]", jsonParseError("expecting value")),
        Case(#"{"a"}"#, jsonParseError("missing : in object pair")),
        Case(#"{"a":1,"b"}"#, jsonParseError("missing : in object pair")),
        // QEMU keeps the first error of a parse: the inner one.
        Case(#"[{"a" 1}]"#, jsonParseError("missing : in object pair")),
    ])
    func syntaxErrors(_ test: Case) {
        #expect(readAll(test.input) == test.expected)
    }

    /// A closer that makes a count negative ends the message at once.
    @Test(arguments: [
        Case("[}", jsonParseError("expecting value")),
        Case("{]", jsonParseError("expecting value")),
        Case("[ } ]", jsonParseError("expecting value"), jsonParseError("expecting value")),
        Case("[1}]", jsonParseError("expected separator in list"), jsonParseError("expecting value")),
    ])
    func mismatchedClosers(_ test: Case) {
        #expect(readAll(test.input) == test.expected)
    }

    @Test(arguments: [
        Case(#""\u12""#, jsonParseError(#"\u12" is not a valid Unicode character"#)),
        Case(#""\uD800""#, jsonParseError(#"\uD800 is not a valid Unicode character"#)),
        Case(#""\uD800\u0041""#, jsonParseError(#"\uD800 is not a valid Unicode character"#)),
        Case(#""\uDC00""#, jsonParseError(#"\uDC00 is not a valid Unicode character"#)),
        Case(#""\uFFFF""#, jsonParseError(#"\uFFFF is not a valid Unicode character"#)),
        Case(#""\uFDD0""#, jsonParseError(#"\uFDD0 is not a valid Unicode character"#)),
        Case(#""\q""#, jsonParseError("invalid escape sequence in string")),
        Case(#""\u""#, jsonParseError(#"\u" is not a valid Unicode character"#)),
        Case(#""\uD800\uZZZZ""#, jsonParseError(#"\uD800 is not a valid Unicode character"#)),
        Case([0x22, 0xC3, 0x28, 0x22], jsonParseError("invalid UTF-8 sequence in string")),
        Case([0x22, 0xED, 0xA0, 0x80, 0x22], jsonParseError("invalid UTF-8 sequence in string")),  // surrogate
        Case([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], jsonParseError("invalid UTF-8 sequence in string")),  // > U+10FFFF
        Case([0x22, 0xE0, 0x80, 0xAF, 0x22], jsonParseError("invalid UTF-8 sequence in string")),  // overlong
        Case([0x22, 0xEF, 0xBF, 0xBE, 0x22], jsonParseError("invalid UTF-8 sequence in string")),  // noncharacter
    ])
    func stringErrors(_ test: Case) {
        #expect(readAll(test.input) == test.expected)
    }

    /// QEMU formats parse errors into a 1024-byte buffer: 1023 bytes after the prefix.
    @Test func longMessagesAreCutLikeQEMUs() {
        let fits = String(repeating: "a", count: 1005)
        #expect(readAll(fits + " ") == [jsonParseError("invalid keyword '\(fits)'")])
        let cut = readAll(String(repeating: "a", count: 2000) + " ")
        #expect(cut == [jsonParseError("invalid keyword '\(String(repeating: "a", count: 1006))")])
        if case .error(let text) = cut.first { #expect(text.utf8.count == 1041) }
    }
}
