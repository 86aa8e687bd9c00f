import EventLoop
import Glibc
import QMPBroker
import QMPWire
import Synchronization

/// An in-process QMP peer playing QEMU's side of the broker's upstream socket, with no
/// QEMU: it greets like QEMU 7.2, answers `qmp_capabilities` and what the broker asks at
/// attach (`query-status`, `qom-list`/`qom-get`, `query-pci`, `trace-event-*-state`,
/// `human-monitor-command`), `stop`/`cont` with QEMU's events, and anything else from its
/// `VMMScript` (canned, delayed or held replies). Every command read is logged with the
/// CLOCK_MONOTONIC time its bytes arrived. Like QEMU's monitor it serves one connection
/// at a time; the next waits in the backlog until the current one closes.
///
/// Served by a `ScriptedVMMGroup` (one thread for many peers); every member is safe to
/// use from any thread.
package final class ScriptedVMM: Sendable {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// The socket the broker connects to (its `upstreamPath`); nil for a socketpair peer.
    package let path: String?
    let group: ScriptedVMMGroup
    let listener: Int32
    let listenerToken: UInt64
    let state: Mutex<State>
    let link = Mutex(Link())

    struct State {
        var script: VMMScript
        var running: Bool
        var traceEvents: [String: Bool] = [:]
        /// Where QEMU's log goes (`logfile`): trace lines the VMM itself writes land there.
        var logPath: String?
        var received: [ReceivedCommand] = []
        var held: [ReceivedCommand] = []
        var connections = 0
    }

    /// The connection and everything only the reading side touches.
    struct Link {
        var fd: Int32 = -1
        var token: UInt64 = 0
        var number = 0
        var reader = QMPInputReader()
        /// Every descriptor received, closed with the VMM.
        var descriptors: [Int32] = []
        /// Received since the last complete command: they go with the next one.
        var unclaimedDescriptors: [Int32] = []
        var closed = false
        /// Bytes the socket did not take yet, sent when it is writable again.
        var output: [UInt8] = []
        var waitingToWrite = false
    }

    init(group: ScriptedVMMGroup, path: String, script: VMMScript) throws(Failure) {
        self.group = group
        self.path = path
        state = Mutex(State(script: script, running: script.running))
        listener = try Self.listeningSocket(at: path)
        listenerToken = group.makeToken()
        group.register(listener, token: listenerToken, self, .listener)
    }

    init(group: ScriptedVMMGroup, connected fd: Int32, script: VMMScript) {
        self.group = group
        path = nil
        listener = -1
        listenerToken = 0
        state = Mutex(State(script: script, running: script.running))
        adopt(fd)
    }

    // MARK: scripting

    /// Replaces the reply to every later `name` command.
    package func reply(to name: String, with reply: ScriptedReply) {
        state.withLock { $0.script.replies[name] = reply }
    }

    /// Goes back to the built-in answer for `name`.
    package func removeReply(to name: String) {
        _ = state.withLock { $0.script.replies.removeValue(forKey: name) }
    }

    package func updateScript(_ change: @Sendable (inout VMMScript) -> Void) {
        state.withLock { change(&$0.script) }
    }

    /// Sends an event now, with QEMU's timestamp member; `data` is JSON text.
    package func emit(_ event: String, data: String? = nil) {
        sendOnCurrentConnection(Self.eventBytes(event, data: data))
    }

    /// Sends bytes as they are (nothing added), QMP or not.
    package func sendRaw(_ text: String) {
        sendOnCurrentConnection(Array(text.utf8))
    }

    /// Answers the held commands named `name` (all held ones when nil) with `reply`, oldest
    /// first; those of a closed connection are dropped. Returns how many were answered.
    @discardableResult
    package func answerHeld(_ name: String? = nil, with reply: ScriptedReply = .empty) -> Int {
        let answering = state.withLock { state in
            let (matching, rest) = (state.held.filter { name == nil || $0.name == name },
                                    state.held.filter { name != nil && $0.name != name })
            state.held = rest
            return matching
        }
        for command in answering {
            for output in render(reply, for: command) { send(output.bytes, onConnection: command.connection) }
        }
        return answering.count
    }

    // MARK: what happened

    /// Every command read so far, in order (all connections).
    package var commands: [ReceivedCommand] { state.withLock { $0.received } }

    package var commandNames: [String] { commands.map(\.name) }

    /// The log so far, emptied: for long runs (a benchmark) that must not grow it forever.
    /// `waitForCommand(after:)` counts from the log as it is after this.
    package func takeCommands() -> [ReceivedCommand] {
        state.withLock { state in
            defer { state.received = [] }
            return state.received
        }
    }

    /// Connections accepted so far.
    package var connections: Int { state.withLock { $0.connections } }

    /// Whether `query-status` would now say running.
    package var isRunning: Bool { state.withLock { $0.running } }

    /// The first command named `name` among those read after the first `after`; waits for it
    /// up to `timeout` seconds. Use `commands.count` before acting as `after`.
    package func waitForCommand(_ name: String, after: Int = 0, timeout: Double = 10) -> ReceivedCommand? {
        waitFor(timeout: timeout) { received in received.dropFirst(after).first { $0.name == name } }
    }

    /// Waits until `condition` holds for the commands read so far, up to `timeout` seconds.
    @discardableResult
    package func waitUntil(timeout: Double = 10, _ condition: @escaping ([ReceivedCommand]) -> Bool) -> Bool {
        waitFor(timeout: timeout) { condition($0) ? true : nil } ?? false
    }

    /// Polls the log every half millisecond: the loop thread is never blocked by a waiter.
    private func waitFor<Found>(timeout: Double, _ find: ([ReceivedCommand]) -> Found?) -> Found? {
        let deadline = MonotonicClock.nanoseconds() + UInt64(timeout * 1e9)
        while true {
            if let found = state.withLock({ find($0.received) }) { return found }
            guard MonotonicClock.nanoseconds() < deadline else { return nil }
            usleep(500)
        }
    }

    // MARK: ending

    /// Closes the current connection, as a VMM that dies or restarts would; a listening
    /// peer then accepts the next one.
    package func disconnect() {
        link.withLock { link in
            if link.fd >= 0 { shutdown(link.fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Stops listening and serving, removes the socket file, closes received descriptors.
    package func close() {
        link.withLock { link in
            guard !link.closed else { return }
            link.closed = true
            dropConnection(&link)
            link.descriptors.forEach { _ = Glibc.close($0) }
            link.descriptors = []
            if listener >= 0 {
                group.unregister(listener, token: listenerToken)
                Glibc.close(listener)
            }
        }
        if let path { unlink(path) }
    }
}
