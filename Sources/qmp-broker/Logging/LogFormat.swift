import ArgumentParser
import Glibc

/// How `run` writes its log: plain text with millisecond UTC times, one JSON object per
/// line, or journald's native protocol with fields (VM=, DEVICE=, ...).
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
    case journal

    /// Under systemd ($JOURNAL_STREAM names our stderr) journal, else text.
    static func automatic(environment: [String: String]) -> LogFormat {
        guard let stream = environment["JOURNAL_STREAM"] else { return .text }
        var status = stat()
        guard fstat(2, &status) == 0 else { return .text }
        return stream == "\(status.st_dev):\(status.st_ino)" && access(JournalSocket.path, W_OK) == 0 ? .journal : .text
    }
}
