/// The token types QEMU's lexer hands to the streamer (`JSONTokenType`).
enum QMPTokenKind: UInt8 {
    case leftBrace, rightBrace, leftBracket, rightBracket, colon, comma
    case integer, float, keyword, string
    /// Bytes that fit no token (`JSON_ERROR`); its text is what QEMU calls "stray".
    case error
    /// A token cut off at `maxTokenSize`: QEMU passes its lexer state as the type,
    /// which the streamer treats like any other token (and rejects for its size).
    case oversized
}

/// QEMU 7.2's `json-lexer.c`: a table-driven state machine fed one byte at a time.
///
/// The table is QEMU's `json_lexer[][256]` with interpolation (`%d` etc., never
/// enabled for QMP) left out, so tokens, errors and resynchronisation after an
/// error (`IN_RECOVERY`) are byte-for-byte QEMU's. A token is handed on as a slice
/// of the bytes fed; only a token cut by the end of a read is copied, into a buffer
/// that is reused, so lexing allocates nothing per byte.
struct QMPLexer {
    private var state: UInt8 = S.start
    /// The start of the current token, from earlier reads.
    private var carried: [UInt8] = []
    private let maxTokenSize: Int

    init(maxTokenSize: Int) {
        self.maxTokenSize = maxTokenSize
    }

    /// Lexes `bytes`, calling `sink` for every token; `text` is valid only during the call.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ sink: (QMPTokenKind, UnsafeBufferPointer<UInt8>) -> Void) {
        let input = bytes.assumingMemoryBound(to: UInt8.self)
        // The current token is `carried` + input[tokenStart..<tokenEnd].
        var tokenStart = 0
        var tokenEnd = 0
        func emit(_ kind: QMPTokenKind) {
            let text = UnsafeBufferPointer(rebasing: input[tokenStart..<tokenEnd])
            if carried.isEmpty {
                sink(kind, text)
            } else {
                carried.append(contentsOf: text)
                carried.withUnsafeBufferPointer { sink(kind, $0) }
            }
        }
        func clear() {
            tokenStart = tokenEnd
            guard !carried.isEmpty else { return }
            // Keep a normal buffer; give back what a huge string token made it grow to.
            if carried.capacity > 1 << 16 { carried = [] } else { carried.removeAll(keepingCapacity: true) }
        }

        Self.table.withUnsafeBufferPointer { table in
            for index in input.indices {
                let byte = input[index]
                var consumed = false
                // A transition marked LOOKAHEAD ends the token without eating the
                // byte, which is then fed again from the start state.
                while !consumed {
                    let next = table[Int(state) &<< 8 | Int(byte)]
                    consumed = next & S.lookahead == 0
                    let newState = next & ~S.lookahead
                    if consumed { tokenEnd = index + 1 }
                    switch newState {
                    case S.firstToken...:
                        emit(QMPTokenKind(rawValue: newState - S.firstToken)!)
                        clear()
                        state = S.start
                    case S.start:
                        clear()
                        state = S.start
                    case S.error:
                        emit(.error)
                        clear()
                        state = S.recovery
                    case S.recovery:
                        clear()
                        state = S.recovery
                    default:
                        state = newState
                    }
                }
                // QEMU: "Do not let a single token grow to an arbitrarily large size".
                if carried.count + tokenEnd - tokenStart > maxTokenSize {
                    emit(.oversized)
                    clear()
                    state = S.start
                }
            }
        }
        carried.append(contentsOf: UnsafeBufferPointer(rebasing: input[tokenStart..<tokenEnd]))
    }
}

extension QMPLexer {
    /// State numbers; values from `firstToken` on are the token kinds (`JSON_MIN`...).
    fileprivate enum S {
        static let error: UInt8 = 0
        static let recovery: UInt8 = 1
        static let dqEscape: UInt8 = 2, dq: UInt8 = 3, sqEscape: UInt8 = 4, sq: UInt8 = 5
        static let zero: UInt8 = 6, expDigits: UInt8 = 7, expSign: UInt8 = 8, expE: UInt8 = 9
        static let mantissa: UInt8 = 10, mantissaDigits: UInt8 = 11, digits: UInt8 = 12, sign: UInt8 = 13
        static let keyword: UInt8 = 14
        static let start: UInt8 = 15
        static let count = 16
        static let firstToken: UInt8 = 16
        static let lookahead: UInt8 = 0x80

        static func token(_ kind: QMPTokenKind) -> UInt8 { firstToken + kind.rawValue }
    }

    /// `json_lexer[state][byte]`; unset entries are `IN_ERROR` (0), as in QEMU.
    fileprivate static let table: [UInt8] = {
        var table = [UInt8](repeating: S.error, count: S.count * 256)
        func set(_ state: UInt8, _ bytes: ClosedRange<UInt8>, _ next: UInt8) {
            for byte in bytes { table[Int(state) << 8 | Int(byte)] = next }
        }
        func set(_ state: UInt8, _ chars: String, _ next: UInt8) {
            for byte in chars.utf8 { table[Int(state) << 8 | Int(byte)] = next }
        }
        /// QEMU's TERMINAL(): any byte ends the token, unconsumed.
        func terminal(_ state: UInt8, _ kind: QMPTokenKind) { set(state, 0...0xFF, S.token(kind) | S.lookahead) }
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")

        // Error recovery: skip to a structural character, a control character other
        // than tab, or the impossible bytes 0xFE/0xFF, and lex that from the start.
        set(S.recovery, 0...0x1F, S.start | S.lookahead)
        set(S.recovery, 0x20...0xFD, S.recovery)
        set(S.recovery, 0xFE...0xFF, S.start | S.lookahead)
        set(S.recovery, "\t", S.recovery)
        set(S.recovery, "[]{}:,", S.start | S.lookahead)

        // Strings: any byte 0x20...0xFD; escapes are checked by the parser.
        set(S.dqEscape, 0x20...0xFD, S.dq)
        set(S.dq, 0x20...0xFD, S.dq)
        set(S.dq, "\\", S.dqEscape)
        set(S.dq, "\"", S.token(.string))
        set(S.sqEscape, 0x20...0xFD, S.sq)
        set(S.sq, 0x20...0xFD, S.sq)
        set(S.sq, "\\", S.sqEscape)
        set(S.sq, "'", S.token(.string))

        // Numbers.
        terminal(S.zero, .integer)
        set(S.zero, digits, S.error)
        set(S.zero, ".", S.mantissa)
        terminal(S.expDigits, .float)
        set(S.expDigits, digits, S.expDigits)
        set(S.expSign, digits, S.expDigits)
        set(S.expE, "-+", S.expSign)
        set(S.expE, digits, S.expDigits)
        terminal(S.mantissaDigits, .float)
        set(S.mantissaDigits, digits, S.mantissaDigits)
        set(S.mantissaDigits, "eE", S.expE)
        set(S.mantissa, digits, S.mantissaDigits)
        terminal(S.digits, .integer)
        set(S.digits, digits, S.digits)
        set(S.digits, "eE", S.expE)
        set(S.digits, ".", S.mantissa)
        set(S.sign, "0", S.zero)
        set(S.sign, UInt8(ascii: "1")...UInt8(ascii: "9"), S.digits)

        // Keywords: any [a-z]+; the parser rejects all but true, false, null.
        terminal(S.keyword, .keyword)
        set(S.keyword, UInt8(ascii: "a")...UInt8(ascii: "z"), S.keyword)

        set(S.start, "\"", S.dq)
        set(S.start, "'", S.sq)
        set(S.start, "0", S.zero)
        set(S.start, UInt8(ascii: "1")...UInt8(ascii: "9"), S.digits)
        set(S.start, "-", S.sign)
        set(S.start, "{", S.token(.leftBrace))
        set(S.start, "}", S.token(.rightBrace))
        set(S.start, "[", S.token(.leftBracket))
        set(S.start, "]", S.token(.rightBracket))
        set(S.start, ",", S.token(.comma))
        set(S.start, ":", S.token(.colon))
        set(S.start, UInt8(ascii: "a")...UInt8(ascii: "z"), S.keyword)
        set(S.start, " \t\r\n", S.start)
        return table
    }()
}
