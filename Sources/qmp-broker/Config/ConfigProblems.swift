/// Everything wrong with a configuration, found in one pass so an operator fixes it in one go.
struct ConfigProblems: Error, CustomStringConvertible {
    /// Where the configuration came from: the file, or "command line".
    var source: String
    var messages: [String] = []

    var isEmpty: Bool { messages.isEmpty }

    mutating func add(_ message: String) { messages.append(message) }

    var description: String {
        let count = messages.count == 1 ? "1 problem" : "\(messages.count) problems"
        return "\(source): \(count), the broker will not start:\n" + messages.map { "  - \($0)" }.joined(separator: "\n")
    }
}
