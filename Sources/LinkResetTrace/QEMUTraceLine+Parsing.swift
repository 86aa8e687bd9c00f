import QMPWire

extension QEMUTraceLine {
    /// Parses one line (with or without its line end); nil for anything that is not one of
    /// the events `QEMUTraceLine.Event` names.
    package static func parse(_ line: String) -> QEMUTraceLine? {
        var line = line
        return line.withUTF8 { parse($0) }
    }

    package static func parse(_ line: ArraySlice<UInt8>) -> QEMUTraceLine? {
        line.withUnsafeBufferPointer { parse($0) }
    }

    /// The hand parser: one pass over the bytes, no regex, allocates only the strings it
    /// returns. Foreign lines are rejected at their first token, mostly by its length.
    package static func parse(_ line: UnsafeBufferPointer<UInt8>) -> QEMUTraceLine? {
        guard let base = line.baseAddress else { return nil }
        // QEMU ≥ 8 opens its log without O_APPEND: after someone else truncates the file, its
        // next line lands at the old offset behind a run of NUL bytes. The line still counts.
        var start = 0
        while start < line.count && base[start] == 0 { start += 1 }
        var cursor = TraceCursor(TraceBytes(base: base, start: start, end: line.count))
        // Tolerate up to two leading tokens that are not the event (a wall-clock stamp that
        // newer QEMUs put in front of every qemu_log line), but only if they start with a digit.
        for _ in 0..<3 {
            guard let token = cursor.nextToken() else { return nil }
            var name = token
            var origin: Origin?
            if let (prefix, nameStart) = parseOrigin(token) {
                origin = prefix
                name = token.suffix(from: nameStart)
            }
            if let kind = EventName(name) {
                return parseArguments(of: kind, cursor.rest).map { QEMUTraceLine(origin: origin, event: $0) }
            }
            guard origin == nil, let first = token.first, TraceBytes.isDigit(first) else { return nil }
        }
        return nil
    }

    /// `TID@SECONDS.MICROSECONDS:` glued to the event name (`-msg timestamp=on`); returns the
    /// prefix and where the name starts.
    private static func parseOrigin(_ token: TraceBytes) -> (Origin, Int)? {
        guard let at = token.firstIndex(of: UInt8(ascii: "@")),
              let dot = token.suffix(from: at).firstIndex(of: UInt8(ascii: ".")),
              let colon = token.suffix(from: dot).firstIndex(of: UInt8(ascii: ":")), colon + 1 < token.end,
              let thread = decimal(token.prefix(upTo: at)), thread <= Int64(Int32.max),
              let seconds = decimal(token.slice(at + 1, dot)),
              let micros = decimal(token.slice(dot + 1, colon)), micros < 1_000_000
        else { return nil }
        return (Origin(threadID: Int32(thread), seconds: seconds, microseconds: Int32(micros)), colon + 1)
    }

    private static func decimal(_ digits: TraceBytes) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        var index = digits.start
        while index < digits.end {
            guard TraceBytes.isDigit(digits[index]) else { return nil }
            value = value * 10 + Int64(digits[index] - UInt8(ascii: "0"))
            index += 1
        }
        return value
    }

    private static func parseArguments(of kind: EventName, _ rest: TraceBytes) -> Event? {
        switch kind {
        case .configWrite: parseConfigAccess(rest, arrow: "<-").map(Event.configWrite)
        case .configRead: parseConfigAccess(rest, arrow: "->").map(Event.configRead)
        case .hotReset: parseHotReset(rest)
        case .hotResetResult: parseHotResetResult(rest)
        case .resetEnterBegin: isSystemBus(rest) ? .systemReset(.begin) : nil
        case .resetExitEnd: isSystemBus(rest) ? .systemReset(.end) : nil
        case .qmpCommandInBand: rest.isEmpty ? nil : .qmpCommandInBand(id: rest.string)
        }
    }

    /// `%s %02x:%02x.%x @0x%x <- 0x%x`, read from the end so a model name could hold spaces.
    private static func parseConfigAccess(_ rest: TraceBytes, arrow: StaticString) -> PCIConfigAccess? {
        var cursor = TraceCursor(rest)
        guard let valueToken = cursor.previousToken(), let value = TraceHex.prefixed(valueToken),
              let arrowToken = cursor.previousToken(), arrowToken.equals(arrow),
              let offsetToken = cursor.previousToken(), offsetToken.first == UInt8(ascii: "@"),
              let offset = TraceHex.prefixed(offsetToken.dropFirst()), offset <= 0xFFF,
              let addressToken = cursor.previousToken(), let address = GuestPCIAddress.parse(addressToken),
              !cursor.rest.isEmpty
        else { return nil }
        return PCIConfigAccess(model: cursor.rest.string, address: address, offset: UInt16(offset), value: value)
    }

    /// ` (%s) %s`: the vfio device's name (its host address) and `one` or `multi`.
    private static func parseHotReset(_ rest: TraceBytes) -> Event? {
        var cursor = TraceCursor(rest)
        guard let nameToken = cursor.nextToken(), nameToken.count > 2,
              nameToken.first == UInt8(ascii: "("), nameToken.last == UInt8(ascii: ")"),
              let scopeToken = cursor.nextToken(), cursor.rest.isEmpty
        else { return nil }
        let scope: VFIOHotResetScope
        if scopeToken.equals("one") {
            scope = .one
        } else if scopeToken.equals("multi") {
            scope = .multi
        } else {
            return nil
        }
        return .vfioHotReset(host: nameToken.dropFirst().dropLast().string, scope: scope)
    }

    /// `%s hot reset: %s`: the device's name, then `Success` or strerror text (may hold spaces).
    private static func parseHotResetResult(_ rest: TraceBytes) -> Event? {
        var cursor = TraceCursor(rest)
        guard let nameToken = cursor.nextToken(),
              let hot = cursor.nextToken(), hot.equals("hot"),
              let reset = cursor.nextToken(), reset.equals("reset:"),
              !cursor.rest.isEmpty
        else { return nil }
        return .vfioHotResetResult(host: nameToken.string, result: cursor.rest.string)
    }

    /// `obj=%p(%s) ...` where the type name is `System`. `%p` may print `(nil)`, so the type
    /// is the last parenthesised part of the token.
    private static func isSystemBus(_ rest: TraceBytes) -> Bool {
        var cursor = TraceCursor(rest)
        guard let object = cursor.nextToken(), object.last == UInt8(ascii: ")"),
              let open = object.lastIndex(of: UInt8(ascii: "(")) else { return false }
        return object.slice(open + 1, object.end - 1).equals("System")
    }
}

/// The trace event names the parser knows, matched on bytes: by length first, so most
/// foreign tokens are rejected without comparing a byte.
private enum EventName {
    case configWrite, configRead, hotReset, hotResetResult, resetEnterBegin, resetExitEnd, qmpCommandInBand

    init?(_ token: TraceBytes) {
        switch token.count {
        case 13 where token.equals("pci_cfg_write"): self = .configWrite
        case 12 where token.equals("pci_cfg_read"): self = .configRead
        case 18 where token.equals("vfio_pci_hot_reset"): self = .hotReset
        case 25 where token.equals("vfio_pci_hot_reset_result"): self = .hotResetResult
        case 28 where token.equals("resettable_phase_enter_begin"): self = .resetEnterBegin
        case 25 where token.equals("resettable_phase_exit_end"): self = .resetExitEnd
        case 23 where token.equals("monitor_qmp_cmd_in_band"): self = .qmpCommandInBand
        default: return nil
        }
    }
}

extension LineSplitter {
    /// For the bytes read from QEMU's log file. QEMU flushes after every message
    /// (`qemu_log_unlock` calls `fflush`), so a read normally ends on a line end, but a read
    /// racing a write can stop mid-line. No trace line we parse comes near 4 KiB: a longer
    /// one is dropped and counted, and reading goes on.
    package static var traceLog: LineSplitter { LineSplitter(maximumLineLength: 4096) }
}
