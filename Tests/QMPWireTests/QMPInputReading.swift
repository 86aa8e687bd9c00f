@testable import QMPWire

/// What a reader emitted, in a form tests can compare: values as compact JSON text.
enum ReaderOutput: Equatable, CustomStringConvertible {
    case value(String)
    case error(String)

    var description: String {
        switch self {
        case .value(let text): "value \(text)"
        case .error(let text): "error \(text)"
        }
    }
}

/// Feeds `input` to a fresh reader in chunks cut at `cuts` (offsets), collecting what it emits.
func readAll(_ input: [UInt8], cuts: [Int] = [], limits: QMPInputLimits = .qemu) -> [ReaderOutput] {
    var reader = QMPInputReader(limits: limits)
    var reads: [ReaderOutput] = []
    var start = 0
    for end in cuts + [input.count] {
        reader.feed(Array(input[start..<end])) { reads.append(ReaderOutput($0)) }
        start = end
    }
    return reads
}

func readAll(_ input: String, cuts: [Int] = [], limits: QMPInputLimits = .qemu) -> [ReaderOutput] {
    readAll(Array(input.utf8), cuts: cuts, limits: limits)
}

/// QEMU's error text for a message: every parse error is prefixed like this.
func jsonParseError(_ message: String) -> ReaderOutput { .error("JSON parse error, \(message)") }

extension ReaderOutput {
    init(_ input: QMPInput) {
        switch input {
        case .value(let json): self = .value(json.compactString())
        case .error(let text): self = .error(text)
        }
    }
}
