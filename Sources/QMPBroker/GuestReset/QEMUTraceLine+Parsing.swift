extension QEMUTraceLine {
    /// Parses one line (with or without its line end); nil for anything that is not one of
    /// the events `QEMUTraceLine.Event` names.
    public static func parse(_ line: String) -> QEMUTraceLine? {
        var line = line
        return line.withUTF8 { parse($0) }
    }

    public static func parse(_ line: ArraySlice<UInt8>) -> QEMUTraceLine? {
        line.withUnsafeBufferPointer { parse($0) }
    }

    /// The hand parser: one pass over the bytes, no regex, allocates only the strings it returns.
    public static func parse(_ line: UnsafeBufferPointer<UInt8>) -> QEMUTraceLine? {
        var cursor = TraceCursor(line)
        // Tolerate up to two leading tokens that are not the event (a wall-clock stamp that
        // newer QEMUs put in front of every qemu_log line), but only if they start with a digit.
        for _ in 0..<3 {
            guard let token = cursor.nextToken() else { return nil }
            var name = token
            var origin: Origin?
            if let (prefix, nameStart) = parseOrigin(token) {
                origin = prefix
                name = token[nameStart...]
            }
            if let kind = EventName(name) {
                return parseArguments(of: kind, cursor.rest).map { QEMUTraceLine(origin: origin, event: $0) }
            }
            guard origin == nil, let first = token.first, TraceCursor.isDigit(first) else { return nil }
        }
        return nil
    }

    /// `TID@SECONDS.MICROSECONDS:` glued to the event name (`-msg timestamp=on`); returns the
    /// prefix and where the name starts.
    private static func parseOrigin(_ token: Slice<UnsafeBufferPointer<UInt8>>) -> (Origin, Int)? {
        guard let at = token.firstIndex(of: UInt8(ascii: "@")),
              let dot = token[at...].firstIndex(of: UInt8(ascii: ".")),
              let colon = token[dot...].firstIndex(of: UInt8(ascii: ":")), colon + 1 < token.endIndex,
              let thread = decimal(token[..<at]), thread <= Int64(Int32.max),
              let seconds = decimal(token[(at + 1)..<dot]),
              let micros = decimal(token[(dot + 1)..<colon]), micros < 1_000_000
        else { return nil }
        return (Origin(threadID: Int32(thread), seconds: seconds, microseconds: Int32(micros)), colon + 1)
    }

    private static func decimal(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard TraceCursor.isDigit(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func parseArguments(of kind: EventName, _ rest: Slice<UnsafeBufferPointer<UInt8>>) -> Event? {
        switch kind {
        case .configWrite: parseConfigAccess(rest, arrow: "<-").map(Event.configWrite)
        case .configRead: parseConfigAccess(rest, arrow: "->").map(Event.configRead)
        case .hotReset: parseHotReset(rest)
        case .hotResetResult: parseHotResetResult(rest)
        case .resetEnterBegin: isSystemBus(rest) ? .systemReset(.begin) : nil
        case .resetExitEnd: isSystemBus(rest) ? .systemReset(.end) : nil
        }
    }

    /// `%s %02x:%02x.%x @0x%x <- 0x%x`, read from the end so a model name could hold spaces.
    private static func parseConfigAccess(_ rest: Slice<UnsafeBufferPointer<UInt8>>, arrow: StaticString) -> PCIConfigAccess? {
        var cursor = TraceCursor(rest)
        guard let valueToken = cursor.previousToken(), let value = TraceHex.prefixed(valueToken),
              let arrowToken = cursor.previousToken(), TraceCursor.equals(arrowToken, arrow),
              let offsetToken = cursor.previousToken(), offsetToken.first == UInt8(ascii: "@"),
              let offset = TraceHex.prefixed(offsetToken.dropFirst()), offset <= 0xFFF,
              let addressToken = cursor.previousToken(), let address = GuestPCIAddress.parse(addressToken)
        else { return nil }
        let model = cursor.rest
        guard !model.isEmpty else { return nil }
        return PCIConfigAccess(model: String(decoding: model, as: UTF8.self), address: address,
                               offset: UInt16(offset), value: value)
    }

    /// ` (%s) %s`: the vfio device's name (its host address) and `one` or `multi`.
    private static func parseHotReset(_ rest: Slice<UnsafeBufferPointer<UInt8>>) -> Event? {
        var cursor = TraceCursor(rest)
        guard let nameToken = cursor.nextToken(), nameToken.count > 2,
              nameToken.first == UInt8(ascii: "("), nameToken.last == UInt8(ascii: ")"),
              let scopeToken = cursor.nextToken(), cursor.rest.isEmpty,
              let scope = VFIOHotResetScope(rawValue: String(decoding: scopeToken, as: UTF8.self))
        else { return nil }
        return .vfioHotReset(host: String(decoding: nameToken.dropFirst().dropLast(), as: UTF8.self), scope: scope)
    }

    /// `%s hot reset: %s`: the device's name, then `Success` or strerror text (may hold spaces).
    private static func parseHotResetResult(_ rest: Slice<UnsafeBufferPointer<UInt8>>) -> Event? {
        var cursor = TraceCursor(rest)
        guard let nameToken = cursor.nextToken(),
              let hot = cursor.nextToken(), TraceCursor.equals(hot, "hot"),
              let reset = cursor.nextToken(), TraceCursor.equals(reset, "reset:"),
              !cursor.rest.isEmpty
        else { return nil }
        return .vfioHotResetResult(host: String(decoding: nameToken, as: UTF8.self),
                                   result: String(decoding: cursor.rest, as: UTF8.self))
    }

    /// `obj=%p(%s) ...` where the type name is `System`. `%p` may print `(nil)`, so the type
    /// is the last parenthesised part of the token.
    private static func isSystemBus(_ rest: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var cursor = TraceCursor(rest)
        guard let object = cursor.nextToken(), object.last == UInt8(ascii: ")"),
              let open = object.lastIndex(of: UInt8(ascii: "(")) else { return false }
        return TraceCursor.equals(object[(open + 1)..<(object.endIndex - 1)], "System")
    }
}

/// The trace event names the parser knows, matched on bytes.
private enum EventName: CaseIterable {
    case configWrite, configRead, hotReset, hotResetResult, resetEnterBegin, resetExitEnd

    var text: StaticString {
        switch self {
        case .configWrite: "pci_cfg_write"
        case .configRead: "pci_cfg_read"
        case .hotReset: "vfio_pci_hot_reset"
        case .hotResetResult: "vfio_pci_hot_reset_result"
        case .resetEnterBegin: "resettable_phase_enter_begin"
        case .resetExitEnd: "resettable_phase_exit_end"
        }
    }

    init?(_ token: Slice<UnsafeBufferPointer<UInt8>>) {
        guard let found = Self.allCases.first(where: { TraceCursor.equals(token, $0.text) }) else { return nil }
        self = found
    }
}
