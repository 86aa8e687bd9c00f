/// The broker's own QMP client session with one VMM, as a value: connect → greeting →
/// `qmp_capabilities` (with `oob` when offered) → ready; any loss → back off and retry.
/// The `UpstreamLink` performs the actions.
struct UpstreamSession {
    enum Action: Equatable {
        case none
        /// Send `qmp_capabilities`, enabling `oob` when the VMM offered it.
        case negotiate(oob: Bool)
        /// Negotiation finished: clients may be greeted and commands flow.
        case ready
        /// An event line, to be sent to every negotiated client unchanged.
        case deliverEvent
        /// A reply to a command the broker sent (id-rewritten or internal).
        case deliverReply
        /// The VMM said something that is not QMP here; drop the connection and retry.
        case protocolViolation(String)
        /// A message that fits nothing; log it and carry on (one bad line must not cost the session).
        case ignore(String)
        /// Try connecting again after this many milliseconds.
        case reconnect(afterMilliseconds: Int)
    }

    private enum State: Equatable {
        case disconnected(failures: Int)
        case awaitingGreeting
        case negotiating
        case ready
    }

    private var state: State = .disconnected(failures: 0)
    /// The VMM's greeting line as it sent it; kept across reconnects so clients
    /// arriving while the VMM is away are still greeted like QEMU would greet them.
    private(set) var greeting: [UInt8]?
    private(set) var oobOffered = false

    static let initialBackoffMilliseconds = 50
    static let maximumBackoffMilliseconds = 1000

    var isReady: Bool { state == .ready }

    var isDisconnected: Bool {
        if case .disconnected = state { return true }
        return false
    }

    mutating func connected() {
        state = .awaitingGreeting
    }

    /// Connecting failed (socket missing or refused).
    mutating func connectFailed() -> Action {
        guard case .disconnected(let failures) = state else {
            state = .disconnected(failures: 1)
            return .reconnect(afterMilliseconds: Self.backoff(failures: 0))
        }
        state = .disconnected(failures: failures + 1)
        return .reconnect(afterMilliseconds: Self.backoff(failures: failures))
    }

    /// The connection closed. Returns whether it had been ready (clients must hear of it).
    mutating func closed() -> (wasReady: Bool, action: Action) {
        let wasReady = state == .ready
        state = .disconnected(failures: 1)
        return (wasReady, .reconnect(afterMilliseconds: Self.initialBackoffMilliseconds))
    }

    /// A message from the VMM.
    mutating func received(_ line: UpstreamLine) -> Action {
        switch state {
        case .disconnected:
            return .none
        case .awaitingGreeting:
            guard line.has("QMP"), let message = try? JSON.parse(line.bytes), let qmp = message["QMP"],
                  qmp.kind == .object else {
                return .protocolViolation("expected the QMP greeting, got \(Self.excerpt(line))")
            }
            greeting = Array(line.bytes)
            oobOffered = qmp["capabilities"]?.elements.contains { $0.string == "oob" } ?? false
            state = .negotiating
            return .negotiate(oob: oobOffered)
        case .negotiating:
            if line.has("event") { return .deliverEvent }
            guard line.has("return") else {
                return .protocolViolation("qmp_capabilities failed: \(Self.excerpt(line))")
            }
            state = .ready
            return .ready
        case .ready:
            if line.has("event") { return .deliverEvent }
            if line.has("return") || line.has("error") { return .deliverReply }
            return .ignore("unexpected message from the VMM: \(Self.excerpt(line))")
        }
    }

    static func excerpt(_ line: UpstreamLine) -> String {
        String(decoding: line.bytes.prefix(200), as: UTF8.self).trimmingLineEnd()
    }

    static func backoff(failures: Int) -> Int {
        min(maximumBackoffMilliseconds, initialBackoffMilliseconds << min(failures, 10))
    }
}

extension String {
    /// Without the `\r\n` QEMU ends its lines with (one grapheme in Swift).
    func trimmingLineEnd() -> String {
        var text = self
        while let last = text.last, last == "\r\n" || last == "\n" || last == "\r" { text.removeLast() }
        return text
    }
}
