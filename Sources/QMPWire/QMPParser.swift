/// QEMU 7.2's `json-parser.c`: turns one message's tokens into a jansson value.
///
/// Recursive descent in QEMU's exact order of checks. QEMU keeps only the first
/// error of a parse (`parse_error()` ignores later ones), which is what throwing
/// gives for free: the innermost failure is the one reported.
struct QMPParser {
    private let tokens: [QMPToken]
    private let text: UnsafeBufferPointer<UInt8>
    private var next = 0
    /// Decoded string bytes, reused for every string of the message.
    private var scratch: [UInt8] = []

    init(tokens: [QMPToken], text: UnsafeBufferPointer<UInt8>) {
        self.tokens = tokens
        self.text = text
    }

    /// `json_parser_parse()`: the value, or QEMU's error text.
    mutating func parseMessage() -> QMPInput {
        do {
            return .value(try parseValue())
        } catch {
            return .error(error.description)
        }
    }

    private func peek() -> QMPToken? { next < tokens.count ? tokens[next] : nil }

    private mutating func pop() -> QMPToken? {
        guard next < tokens.count else { return nil }
        defer { next += 1 }
        return tokens[next]
    }

    private func bytes(of token: QMPToken) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: text[token.start..<token.start + token.count])
    }

    private mutating func parseValue() throws(QMPParseError) -> JSON {
        guard let token = peek() else { throw .premature }
        switch token.kind {
        case .leftBrace: return try parseObject()
        case .leftBracket: return try parseArray()
        case .integer, .float, .string: return try parseLiteral()
        case .keyword: return try parseKeyword()
        case .rightBrace, .rightBracket, .colon, .comma, .error, .oversized: throw QMPParseError("expecting value")
        }
    }

    private mutating func parseObject() throws(QMPParseError) -> JSON {
        _ = pop()  // {
        let object = JSON.object()
        guard let peek = peek() else { throw .premature }
        if peek.kind == .rightBrace {
            _ = pop()
            return object
        }
        try parsePair(into: object)
        guard var token = pop() else { throw .premature }
        while token.kind != .rightBrace {
            guard token.kind == .comma else { throw QMPParseError("expected separator in dict") }
            try parsePair(into: object)
            guard let following = pop() else { throw .premature }
            token = following
        }
        return object
    }

    private mutating func parsePair(into object: JSON) throws(QMPParseError) {
        guard let keyToken = peek() else { throw .premature }
        // QEMU parses the key as any value and only then insists on a string.
        guard keyToken.kind == .string else {
            _ = try parseValue()
            throw QMPParseError("key is not a string in object")
        }
        _ = pop()
        try decodeString(keyToken)
        guard let colon = pop() else { throw .premature }
        guard colon.kind == .colon else { throw QMPParseError("missing : in object pair") }
        let value = try parseValue()
        // The value reused `scratch`; decoding the key again cannot fail now.
        try decodeString(keyToken)
        try scratch.withUnsafeBufferPointer { key throws(QMPParseError) in
            guard !object.hasMember(utf8: key) else { throw QMPParseError("duplicate key") }
            object.setMember(utf8: key, value)
        }
    }

    private mutating func parseArray() throws(QMPParseError) -> JSON {
        _ = pop()  // [
        let array = JSON.array()
        guard let peek = peek() else { throw .premature }
        if peek.kind == .rightBracket {
            _ = pop()
            return array
        }
        array.append(try parseValue())
        guard var token = pop() else { throw .premature }
        while token.kind != .rightBracket {
            guard token.kind == .comma else { throw QMPParseError("expected separator in list") }
            array.append(try parseValue())
            guard let following = pop() else { throw .premature }
            token = following
        }
        return array
    }

    private mutating func parseKeyword() throws(QMPParseError) -> JSON {
        let word = bytes(of: pop()!)
        if word.elementsEqual("true".utf8) { return .bool(true) }
        if word.elementsEqual("false".utf8) { return .bool(false) }
        if word.elementsEqual("null".utf8) { return .null }
        throw QMPParseError(Array("invalid keyword '".utf8) + word + [UInt8(ascii: "'")])
    }

    private mutating func parseLiteral() throws(QMPParseError) -> JSON {
        let token = pop()!
        switch token.kind {
        case .string:
            try decodeString(token)
            return scratch.withUnsafeBufferPointer { JSON.string(utf8: $0) }
        case .integer:
            return QMPNumber.integer(bytes(of: token))
        default:
            return QMPNumber.float(bytes(of: token))
        }
    }

    /// `parse_string()` into `scratch`.
    private mutating func decodeString(_ token: QMPToken) throws(QMPParseError) {
        scratch.removeAll(keepingCapacity: true)
        try QMPStringLiteral.decode(bytes(of: token), into: &scratch)
    }
}

/// A parse error: QEMU's `parse_error()` text, "JSON parse error, " plus a message
/// cut to 1023 bytes (QEMU formats it into `char message[1024]`).
struct QMPParseError: Error, CustomStringConvertible {
    let message: [UInt8]

    init(_ message: [UInt8]) { self.message = message }
    init(_ message: String) { self.message = Array(message.utf8) }

    static var premature: QMPParseError { QMPParseError("premature EOI") }

    var description: String { QEMUText.render(Array("JSON parse error, ".utf8) + message.prefix(1023)) }
}
