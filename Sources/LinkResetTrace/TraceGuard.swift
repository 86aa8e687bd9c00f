import QMPWire

/// Which client commands would switch off the broker's link-reset watch, judged before
/// they go upstream while the watch is on. What reaches the same end in
/// QEMU 7.2, checked on Debian's 7.2.22 binary:
/// - QMP `trace-event-set-state` with `enable: false` and a name or pattern (`pci_*`, `*`)
///   that covers a watched event;
/// - HMP `trace-event NAME off` (same patterns), `log trace:-PATTERN` (the `-` disables);
/// - HMP `logfile PATH`: moves every trace line elsewhere. QEMU cannot be asked where its
///   log goes, so any `logfile` is refused while the broker watches.
/// Not harmful there: `log none` and other `-d` masks (LOG_TRACE stays set, lines still
/// arrive: measured); `trace-file` (simple backend only; "unknown command" on 7.2.22).
/// Everything else that might touch tracing is forwarded and the watch re-checked after it.
package enum TraceGuard {
    package enum Verdict: Equatable, Sendable {
        /// Answer the client with this error; nothing goes upstream.
        case refuse(QMPError)
        /// Forward, then re-check the watched events' state.
        case forwardThenVerify
        case forward
    }

    package static func verdict(command: String, arguments: JSON?, watched: [String]) -> Verdict {
        switch command {
        case "trace-event-set-state":
            guard let name = arguments?["name"]?.string, arguments?["enable"]?.bool == false else { return .forwardThenVerify }
            if let event = watched.first(where: { TracePattern.matches(name, $0) }) { return .refuse(.watchedEvent(event)) }
            return .forwardThenVerify
        case "human-monitor-command":
            guard let line = arguments?["command-line"]?.string else { return .forward }
            return hmpVerdict(HMPWords(line).words, watched: watched)
        default:
            return .forward
        }
    }

    private static func hmpVerdict(_ words: [String], watched: [String]) -> Verdict {
        guard let command = words.first else { return .forward }
        switch command {
        case "logfile":
            return .refuse(QMPError("QEMU's log is the trace log qmp-broker watches for guest link resets; "
                + "'logfile' cannot be used while the broker watches it"))
        case "trace-event":
            guard words.count >= 3, words[2] == "off" else { return .forwardThenVerify }
            if let event = watched.first(where: { TracePattern.matches(words[1], $0) }) { return .refuse(.watchedEvent(event)) }
            return .forwardThenVerify
        case "log":
            // `log` takes one comma-separated list; `trace:-PATTERN` disables.
            let items = words.dropFirst().joined(separator: " ").split(separator: ",").map(String.init)
            for item in items where item.hasPrefix("trace:-") {
                let pattern = String(item.dropFirst("trace:-".count))
                if let event = watched.first(where: { TracePattern.matches(pattern, $0) }) { return .refuse(.watchedEvent(event)) }
            }
            return .forwardThenVerify
        default:
            return .forward
        }
    }
}

extension QMPError {
    static func watchedEvent(_ name: String) -> QMPError {
        QMPError("Trace event '\(name)' is watched by qmp-broker for guest link resets and cannot be disabled while it watches")
    }
}

/// QEMU's trace-event patterns (`g_pattern_match_simple`): `*` any run, `?` one character.
enum TracePattern {
    static func matches(_ pattern: String, _ name: String) -> Bool {
        matches(Array(pattern.utf8)[...], Array(name.utf8)[...])
    }

    private static func matches(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        switch first {
        case UInt8(ascii: "*"):
            let rest = pattern.dropFirst()
            return name.indices.contains { matches(rest, name[$0...]) } || matches(rest, name[name.endIndex...])
        case UInt8(ascii: "?"):
            return !name.isEmpty && matches(pattern.dropFirst(), name.dropFirst())
        default:
            return name.first == first && matches(pattern.dropFirst(), name.dropFirst())
        }
    }
}

/// An HMP command line split as QEMU's monitor reads it: words separated by blanks, a
/// word in double quotes may hold blanks (`get_str`).
struct HMPWords {
    let words: [String]

    init(_ line: String) {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quoted = false
        for character in line {
            if quoted {
                if character == "\"" { quoted = false } else { current.append(character) }
            } else if character == "\"" {
                quoted = true
                inWord = true
            } else if character.isWhitespace {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        self.words = words
    }
}
