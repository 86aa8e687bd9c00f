/// Which lines of the broker's trace log someone else asked for. While the broker is
/// attached, everything QEMU logs goes into the broker's file: the trace events the broker
/// switched on, and also an operator's own trace events (`virsh qemu-monitor-command --hmp
/// 'trace-event NAME on'`), `-d` output and anything else `qemu_log` writes. Those others
/// belong on QEMU's own stderr (libvirt's `/var/log/libvirt/qemu/NAME.log`), so the broker
/// passes them on; its own lines stay in its file.
///
/// A line is the broker's when its event name is one the broker switched on and the VMM
/// did not have on before the attach (then someone else asked for it too). The name is the
/// first token (`pci_cfg_write ...`), or what follows `TID@SECONDS.MICROSECONDS:` (QEMU's
/// `-msg timestamp=on`, which libvirt always passes), after at most two leading tokens that
/// start with a digit (a wall-clock stamp) and the NUL bytes QEMU ≥ 8 leaves after a
/// truncation. A line of NUL bytes alone is nobody's and is dropped.
package struct TraceLinePassThrough: Sendable {
    private let ownEvents: Set<[UInt8]>

    package init(brokerEvents: [String], previouslyEnabled: Set<String>) {
        ownEvents = Set(brokerEvents.filter { !previouslyEnabled.contains($0) }.map { Array($0.utf8) })
    }

    /// Whether `line` (without its `\n`) should go on to QEMU's own stderr.
    package func passesOn(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let name = Self.eventName(in: line) else {
            return line.contains { $0 != 0 }
        }
        return !ownEvents.contains(name)
    }

    /// The trace event's name at the head of `line`, or nil when the line has no
    /// name-shaped token where QEMU puts it (such a line is not a trace line).
    package static func eventName(in line: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var index = 0
        while index < line.count && line[index] == 0 { index += 1 }
        for _ in 0..<3 {
            while index < line.count && line[index] == UInt8(ascii: " ") { index += 1 }
            let start = index
            while index < line.count && line[index] != UInt8(ascii: " ") { index += 1 }
            guard start < index else { return nil }
            var token = Array(line[start..<index])
            if let at = token.firstIndex(of: UInt8(ascii: "@")), let colon = token[at...].firstIndex(of: UInt8(ascii: ":")),
               token[..<at].allSatisfy(isDigit) {
                token = Array(token[(colon + 1)...])
                return isName(token) ? token : nil
            }
            if isName(token) { return token }
            guard let first = token.first, isDigit(first) else { return nil }
        }
        return nil
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// QEMU's trace event names: a lower-case letter, then letters, digits and `_`.
    private static func isName(_ token: [UInt8]) -> Bool {
        guard let first = token.first, first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z") else { return false }
        return token.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || isDigit(byte) || byte == UInt8(ascii: "_")
        }
    }
}
