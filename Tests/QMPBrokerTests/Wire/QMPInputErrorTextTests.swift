import Testing
@testable import QMPBroker

/// Every error text below is what QEMU 7.2.22 (`qemu-system-x86_64 -M none`) answered
/// for the same bytes on its QMP socket, as the `desc` of a `GenericError`.
struct QMPInputErrorTextTests {
    struct Case: CustomStringConvertible, Sendable {
        let input: [UInt8]
        let expected: [Read]
        var description: String { String(decoding: input, as: UTF8.self).debugDescription }

        init(_ input: [UInt8], _ expected: Read...) { (self.input, self.expected) = (input, expected) }
        init(_ input: String, _ expected: Read...) { (self.input, self.expected) = (Array(input.utf8), expected) }
    }

    /// Bytes no token can start with or contain: QEMU quotes the token so far.
    @Test(arguments: [
        Case("\u{01}", parseError("stray '\u{01}'")),
        Case([0xFF], parseError("stray '\u{FFFD}'")),
        Case([0x00], parseError("stray ''")),
        Case([0x7F], parseError("stray '\u{7F}'")),
        Case("%", parseError("stray '%'")),
        Case("/", parseError("stray '/'")),
        Case("-x ", parseError("stray '-x'")),
        Case("01", parseError("stray '01'")),
        Case("1.x", parseError("stray '1.x'")),
        Case("1ex", parseError("stray '1ex'")),
        Case("1e+x", parseError("stray '1e+x'")),
        Case("\"abc\n", parseError("stray '\"abc\n'")),
        Case("'abc\u{01}", parseError("stray ''abc\u{01}'")),
        Case("\"\\\u{01}", parseError("stray '\"\\\u{01}'")),
        // Quoted bytes are shown as QEMU's JSON writer shows them: invalid UTF-8 as U+FFFD,
        // nothing after a NUL. The bytes after the error are skipped by the recovery.
        Case([0xC3, 0xA9], parseError("stray '\u{FFFD}'")),
        Case([0xFE], parseError("stray '\u{FFFD}'")),
        Case([0x22, 0xC3, 0xA9, 0x0A], parseError("stray '\"é\n'")),
        Case([0x22, 0x61, 0x62, 0x00, 0x63, 0x64, 0x22], parseError("stray '\"ab'")),
    ])
    func lexicalErrors(_ test: Case) {
        #expect(read(test.input) == test.expected)
    }

    @Test(arguments: [
        Case(#"{"a" 1}"#, parseError("missing : in object pair")),
        Case("{1:2}", parseError("key is not a string in object")),
        Case(#"{"a":}"#, parseError("expecting value")),
        Case("[1 2]", parseError("expected separator in list")),
        Case(#"{"a":1 "b":2}"#, parseError("expected separator in dict")),
        Case("[1,]", parseError("expecting value")),
        Case(#"{"a":1,"a":2}"#, parseError("duplicate key")),
        Case("foo ", parseError("invalid keyword 'foo'")),
        Case("}", parseError("expecting value")),
        Case("]", parseError("expecting value")),
        Case(":", parseError("expecting value")),
        Case(",", parseError("expecting value")),
        Case(#"{{"a":1}:2}"#, parseError("key is not a string in object")),
        Case(#"{"a":1,}"#, parseError("expecting value")),
        Case("{,}", parseError("expecting value")),
        Case("[,1]", parseError("expecting value")),
        Case(#"{"a"}"#, parseError("missing : in object pair")),
        Case(#"{"a":1,"b"}"#, parseError("missing : in object pair")),
        // QEMU keeps the first error of a parse: the inner one.
        Case(#"[{"a" 1}]"#, parseError("missing : in object pair")),
    ])
    func syntaxErrors(_ test: Case) {
        #expect(read(test.input) == test.expected)
    }

    /// A closer that makes a count negative ends the message at once.
    @Test(arguments: [
        Case("[}", parseError("expecting value")),
        Case("{]", parseError("expecting value")),
        Case("[ } ]", parseError("expecting value"), parseError("expecting value")),
        Case("[1}]", parseError("expected separator in list"), parseError("expecting value")),
    ])
    func mismatchedClosers(_ test: Case) {
        #expect(read(test.input) == test.expected)
    }

    @Test(arguments: [
        Case(#""\u12""#, parseError(#"\u12" is not a valid Unicode character"#)),
        Case(#""\uD800""#, parseError(#"\uD800 is not a valid Unicode character"#)),
        Case(#""\uD800\u0041""#, parseError(#"\uD800 is not a valid Unicode character"#)),
        Case(#""\uDC00""#, parseError(#"\uDC00 is not a valid Unicode character"#)),
        Case(#""\uFFFF""#, parseError(#"\uFFFF is not a valid Unicode character"#)),
        Case(#""\uFDD0""#, parseError(#"\uFDD0 is not a valid Unicode character"#)),
        Case(#""\q""#, parseError("invalid escape sequence in string")),
        Case(#""\u""#, parseError(#"\u" is not a valid Unicode character"#)),
        Case(#""\uD800\uZZZZ""#, parseError(#"\uD800 is not a valid Unicode character"#)),
        Case([0x22, 0xC3, 0x28, 0x22], parseError("invalid UTF-8 sequence in string")),
        Case([0x22, 0xED, 0xA0, 0x80, 0x22], parseError("invalid UTF-8 sequence in string")),  // surrogate
        Case([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], parseError("invalid UTF-8 sequence in string")),  // > U+10FFFF
        Case([0x22, 0xE0, 0x80, 0xAF, 0x22], parseError("invalid UTF-8 sequence in string")),  // overlong
        Case([0x22, 0xEF, 0xBF, 0xBE, 0x22], parseError("invalid UTF-8 sequence in string")),  // noncharacter
    ])
    func stringErrors(_ test: Case) {
        #expect(read(test.input) == test.expected)
    }

    /// QEMU formats parse errors into a 1024-byte buffer: 1023 bytes after the prefix.
    @Test func longMessagesAreCutLikeQEMUs() {
        let fits = String(repeating: "a", count: 1005)
        #expect(read(fits + " ") == [parseError("invalid keyword '\(fits)'")])
        let cut = read(String(repeating: "a", count: 2000) + " ")
        #expect(cut == [parseError("invalid keyword '\(String(repeating: "a", count: 1006))")])
        if case .error(let text) = cut.first { #expect(text.utf8.count == 1041) }
    }
}
