/// QEMU 7.2's `json-streamer.c`: groups tokens into messages and enforces the limits.
///
/// A message ends as soon as no `{` or `[` is open, or either count goes negative
/// (a stray `}` or `]` is handed to the parser at once, which answers "expecting
/// value"). On a lexical error or a limit the message so far is dropped and the
/// counts start over from the next token: so after `[[[...` past the nesting
/// limit every remaining `]` is its own "expecting value" error, exactly as QEMU.
struct QMPStreamer {
    private let limits: QMPInputLimits
    private var braceCount = 0
    private var bracketCount = 0
    /// The tokens of the current message, as ranges of `text` (one buffer, reused).
    private var tokens: [QMPToken] = []
    private var text: [UInt8] = []

    init(limits: QMPInputLimits) {
        self.limits = limits
    }

    /// `json_message_process_token()`.
    mutating func process(_ kind: QMPTokenKind, _ token: UnsafeBufferPointer<UInt8>,
                          _ emit: (QMPInput, QMPMessageTokens?) -> Void) {
        switch kind {
        case .leftBrace: braceCount += 1
        case .rightBrace: braceCount -= 1
        case .leftBracket: bracketCount += 1
        case .rightBracket: bracketCount -= 1
        case .error:
            // "%s" stops at a NUL byte, hence the C-string prefix.
            let stray = token.prefix { $0 != 0 }
            return finish(emit, .error(QEMUText.render(Array("JSON parse error, stray '".utf8) + stray + [UInt8(ascii: "'")])))
        case .colon, .comma, .integer, .float, .keyword, .string, .oversized:
            break
        }

        // QEMU: "we limit total memory allocated per object and the maximum
        // recursion depth that a message can force". The +1 is QEMU's (its NUL).
        if text.count + token.count + 1 > limits.maxTokenSize {
            return finish(emit, .error("JSON token size limit exceeded"))
        }
        if tokens.count + 1 > limits.maxTokenCount {
            return finish(emit, .error("JSON token count limit exceeded"))
        }
        if bracketCount + braceCount > limits.maxNesting {
            return finish(emit, .error("JSON nesting depth limit exceeded"))
        }

        tokens.append(QMPToken(kind: kind, start: text.count, count: token.count))
        text.append(contentsOf: token)

        if (braceCount > 0 || bracketCount > 0) && braceCount >= 0 && bracketCount >= 0 {
            return
        }
        braceCount = 0
        bracketCount = 0
        text.withUnsafeBufferPointer { text in
            var parser = QMPParser(tokens: tokens, text: text)
            let result = parser.parseMessage()
            tokens.withUnsafeBufferPointer { tokens in emit(result, QMPMessageTokens(tokens: tokens, text: text)) }
        }
        clear()
    }

    private mutating func finish(_ emit: (QMPInput, QMPMessageTokens?) -> Void, _ result: QMPInput) {
        braceCount = 0
        bracketCount = 0
        clear()
        emit(result, nil)
    }

    private mutating func clear() {
        // Keep normal-sized buffers; give back what a huge message made them grow to.
        if text.capacity > 1 << 20 { text = [] } else { text.removeAll(keepingCapacity: true) }
        if tokens.capacity > 1 << 14 { tokens = [] } else { tokens.removeAll(keepingCapacity: true) }
    }
}

/// One token of the current message: its kind and where its bytes are.
struct QMPToken {
    var kind: QMPTokenKind
    var start: Int
    var count: Int
}
