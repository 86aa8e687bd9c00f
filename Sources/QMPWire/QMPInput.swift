/// What the reader produced from the byte stream.
///
/// `error` carries QEMU's exact `desc` text, e.g. `JSON parse error, stray '\u{01}'`,
/// `JSON parse error, invalid keyword 'foo'` or `JSON token size limit exceeded`.
/// Non-ASCII and invalid bytes in it are already rendered the way QEMU's JSON writer
/// renders them (invalid UTF-8 becomes U+FFFD, text stops at a NUL byte).
package enum QMPInput {
    case value(JSON)
    case error(String)
}

/// The streamer's security limits (QEMU hard-codes them in `json-lexer.c` and
/// `json-streamer.c`); smaller values exist so tests can hit them quickly.
package struct QMPInputLimits: Equatable, Sendable {
    /// Bytes in one token (lexer) and in all tokens of one message (streamer).
    package var maxTokenSize: Int
    /// Tokens in one message.
    package var maxTokenCount: Int
    /// Open `{` plus open `[` at any point of one message.
    package var maxNesting: Int

    package init(maxTokenSize: Int, maxTokenCount: Int, maxNesting: Int) {
        self.maxTokenSize = maxTokenSize
        self.maxTokenCount = maxTokenCount
        self.maxNesting = maxNesting
    }

    /// QEMU's `MAX_TOKEN_SIZE` (64 MiB), `MAX_TOKEN_COUNT` (2 Mi) and `MAX_NESTING` (1024).
    package static let qemu = QMPInputLimits(maxTokenSize: 64 << 20, maxTokenCount: 2 << 20, maxNesting: 1 << 10)
}

/// Reads QEMU's JSON dialect from a byte stream exactly as QEMU 7.2's monitor does:
/// `json-lexer.c` → `json-streamer.c` → `json-parser.c`.
///
/// Messages need no separator, may arrive split at any byte and several per read;
/// after garbage the reader reports an error and resynchronises like QEMU, so the
/// connection stays usable. It only frames and parses: whether a value is a valid
/// QMP command is the session's business.
package struct QMPInputReader: Sendable {
    private var lexer: QMPLexer
    private var streamer: QMPStreamer

    package init(limits: QMPInputLimits = .qemu) {
        lexer = QMPLexer(maxTokenSize: limits.maxTokenSize)
        streamer = QMPStreamer(limits: limits)
    }

    /// Feeds bytes as they arrive from a socket; calls `emit` for every complete
    /// top-level value or error, in order.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (QMPInput) -> Void) {
        lexer.feed(bytes) { kind, text in streamer.process(kind, text) { input, _ in emit(input) } }
    }

    /// `feed`, also handing over each message's tokens (for splicing an id into them);
    /// they are valid only during the call.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (QMPInput, QMPMessageTokens?) -> Void) {
        lexer.feed(bytes) { kind, text in streamer.process(kind, text, emit) }
    }
}

extension QMPInputReader {
    /// Convenience for tests and callers holding an array.
    package mutating func feed(_ bytes: [UInt8], _ emit: (QMPInput) -> Void) {
        bytes.withUnsafeBytes { feed($0, emit) }
    }
}
