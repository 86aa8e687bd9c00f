import QMPWire

/// The broker's own QMP client session with one VMM, as a value: connect → greeting →
/// `qmp_capabilities` (with `oob` when offered) → ready; any loss → back off and retry.
/// The `UpstreamLink` performs the actions and owns the timers.
///
/// Timing lives here, not in the edge: the handshake (greeting and the answer to
/// `qmp_capabilities`) must finish within `handshakeTimeoutMilliseconds`, or the VMM is
/// dropped as if it had said something wrong. Failures in a row (a refused connect, a
/// handshake that timed out or went wrong, a loss before ready) double the backoff up to
/// its cap; only a session that became ready starts the count again.
package struct UpstreamSession: Sendable {
    package enum Action: Equatable, Sendable {
        case none
        /// Send `qmp_capabilities`, enabling `oob` when the VMM offered it.
        case negotiate(oob: Bool)
        /// Negotiation finished: clients may be greeted and commands flow.
        case ready
        /// An event line, to be sent to every negotiated client unchanged.
        case deliverEvent
        /// A reply to a command the broker sent (id-rewritten or internal).
        case deliverReply
        /// The VMM said something that is not QMP here (or nothing in time); drop the
        /// connection and retry.
        case protocolViolation(String)
        /// A message that fits nothing; log it and carry on (one bad line must not cost the session).
        case ignore(String)
        /// Try connecting again after this many milliseconds.
        case reconnect(afterMilliseconds: Int)
        /// Call `handshakeTimedOut(attempt:)` after this many milliseconds unless the
        /// session is ready by then.
        case startHandshakeTimer(attempt: Int, milliseconds: Int)
    }

    private enum State: Equatable {
        case disconnected
        case awaitingGreeting
        case negotiating
        case ready
    }

    private var state: State = .disconnected
    /// Failures since the last session that became ready: the backoff's exponent.
    private var failures = 0
    /// Counts connections, so that a timer from an earlier one is recognised and ignored.
    private(set) var attempt = 0
    /// The greeting of the current (or last) session, sent to clients once it is ready.
    package private(set) var greeting: [UInt8]?
    package private(set) var oobOffered = false

    let handshakeTimeoutMilliseconds: Int
    static let initialBackoffMilliseconds = 50
    static let maximumBackoffMilliseconds = 1000
    /// QEMU greets at once and answers `qmp_capabilities` in microseconds; even a VMM
    /// still starting under load has done both within a second or two.
    package static let defaultHandshakeTimeoutMilliseconds = 10_000

    package init(handshakeTimeoutMilliseconds: Int = Self.defaultHandshakeTimeoutMilliseconds) {
        self.handshakeTimeoutMilliseconds = handshakeTimeoutMilliseconds
    }

    package var isReady: Bool { state == .ready }

    /// The socket connected: the greeting must follow in time.
    package mutating func connected() -> Action {
        state = .awaitingGreeting
        attempt += 1
        return .startHandshakeTimer(attempt: attempt, milliseconds: handshakeTimeoutMilliseconds)
    }

    /// Connecting failed (socket missing or refused).
    package mutating func connectFailed() -> Action {
        state = .disconnected
        return retry()
    }

    /// The connection closed. Returns whether it had been ready (clients must hear of it).
    package mutating func closed() -> (wasReady: Bool, action: Action) {
        let wasReady = state == .ready
        // A session that worked resets the count: a VMM restart is retried at once.
        if wasReady { failures = 0 }
        state = .disconnected
        return (wasReady, retry())
    }

    /// The handshake timer of connection `attempt` fired.
    package mutating func handshakeTimedOut(attempt: Int) -> Action {
        guard attempt == self.attempt else { return .none }
        switch state {
        case .awaitingGreeting:
            return .protocolViolation("no QMP greeting within \(handshakeTimeoutMilliseconds) ms")
        case .negotiating:
            return .protocolViolation("no answer to qmp_capabilities within \(handshakeTimeoutMilliseconds) ms")
        case .disconnected, .ready:
            return .none
        }
    }

    /// A line that is not a JSON object.
    package func receivedGarbage(_ excerpt: String) -> Action {
        switch state {
        case .awaitingGreeting, .negotiating:
            return .protocolViolation("expected the QMP handshake, got \(excerpt)")
        case .ready:
            return .ignore("VMM sent a line that is not a JSON object: \(excerpt)")
        case .disconnected:
            return .none
        }
    }

    /// A message from the VMM.
    package mutating func received(_ line: UpstreamLine) -> Action {
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

    private mutating func retry() -> Action {
        defer { failures += 1 }
        return .reconnect(afterMilliseconds: Self.backoff(failures: failures))
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
    package func trimmingLineEnd() -> String {
        var text = self
        while let last = text.last, last == "\r\n" || last == "\n" || last == "\r" { text.removeLast() }
        return text
    }
}
