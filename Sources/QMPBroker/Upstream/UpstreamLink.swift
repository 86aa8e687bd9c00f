import EventLoop
import Glibc
import Logging
import QMPSessions
import QMPWire

/// What a command sent upstream gets back.
enum UpstreamReply {
    /// The VMM's reply message (`return` or `error`) as it wrote it, the broker's id still in it.
    case reply(UpstreamLine)
    /// The VMM could not be asked, or went away before answering.
    case failed(QMPError)
}

/// The I/O edge of one VMM's QMP socket: connects (and reconnects with capped
/// backoff), runs `UpstreamSession`'s actions, and routes replies by broker id.
/// Everything runs on the VM's loop.
final class UpstreamLink {
    typealias ReplyHandler = (UpstreamReply) -> Void

    let vmName: String
    let path: String
    let loop: EventLoop
    private let logger: Logger
    private var session: UpstreamSession
    private var framer = LineSplitter.qmp
    private var connection: UnixStreamConnection?
    private var pending = PendingCommands()
    /// The awaited ones among them (the broker's own exchanges), by id.
    private var continuations: [Int64: ReplyHandler] = [:]
    private let reconnectTimer: LoopTimer
    private let handshakeTimer: LoopTimer
    /// Armed while a command with a deadline waits; fires at the earliest one.
    private let commandTimer: LoopTimer
    /// A command the VMM has not answered after this long gets an error reply.
    let commandTimeoutMilliseconds: Int
    private var stopped = false
    private var connectFailures = ConnectFailureLog()

    /// The VM: it hears the link's `upstream*` actions (ready, lost, each event line, each
    /// read handled, each reply with no continuation).
    weak var runner: (any VMActionRunner)?

    static let maximumQueuedBytes = 64 << 20

    /// The timeouts come from `VMConfiguration`, which holds their defaults.
    init(vmName: String, path: String, loop: EventLoop, logger: Logger,
         handshakeTimeoutMilliseconds: Int, commandTimeoutMilliseconds: Int) {
        self.session = UpstreamSession(handshakeTimeoutMilliseconds: handshakeTimeoutMilliseconds)
        self.commandTimeoutMilliseconds = commandTimeoutMilliseconds
        self.vmName = vmName
        self.path = path
        self.loop = loop
        reconnectTimer = LoopTimer(loop: loop)
        handshakeTimer = LoopTimer(loop: loop)
        commandTimer = LoopTimer(loop: loop)
        self.logger = logger
    }

    var isReady: Bool { session.isReady }
    var greeting: [UInt8]? { session.greeting }
    var oobOffered: Bool { session.oobOffered }
    /// The VMM's process, from SO_PEERCRED of the current connection.
    var peerPID: pid_t? { connection?.peerCredentials()?.pid }

    func start() {
        stopped = false
        connect()
    }

    func stop() {
        stopped = true
        reconnectTimer.cancel()
        connection?.close()
        handshakeTimer.cancel()
        commandTimer.cancel()
    }

    /// Sends a command with a broker id in place of the client's; the outcome goes to
    /// `continuation`, or to the VM (`upstreamReplied`) when there is none. `message` is owned by the
    /// caller and modified (its `id`).
    @discardableResult
    func send(_ message: JSON, fds: [Int32] = [], as command: PendingCommand, continuation: ReplyHandler? = nil) -> Int64? {
        send(fds: fds, as: command, continuation: continuation) { id in
            message["id"] = .integer(id)
            return message.wireMessage()
        }
    }

    /// Sends a client's command as it wrote it, its members after the broker's id:
    /// `{"id": N, ` + `members` (`QMPMessageTokens.membersWithoutID`).
    @discardableResult
    func send(members: [UInt8], fds: [Int32] = [], as command: PendingCommand) -> Int64? {
        send(fds: fds, as: command, continuation: nil) { id in Self.message(id: id, members: members) }
    }

    /// `{"id": N, ` + `members` + CRLF.
    private static func message(id: Int64, members: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(members.count + 32)
        bytes.append(contentsOf: idPrefix)
        bytes.append(contentsOf: String(id).utf8)
        bytes.append(contentsOf: idSeparator)
        bytes.append(contentsOf: members)
        bytes.append(contentsOf: [13, 10])
        return bytes
    }

    private func send(fds: [Int32], as command: PendingCommand, continuation: ReplyHandler?,
                      encode: (Int64) -> [UInt8]) -> Int64? {
        guard session.isReady, let connection else {
            fds.forEach { _ = close($0) }
            deliver(.failed(QMPError("VMM '\(vmName)' is not connected")), to: command, continuation: continuation)
            return nil
        }
        var command = command
        command.deadline = Self.now() + UInt64(commandTimeoutMilliseconds)
        let id = pending.register(command)
        if let continuation { continuations[id] = continuation }
        connection.send(encode(id), fds: fds)
        if !commandTimer.isArmed { armCommandTimer() }
        return id
    }

    private static let idPrefix = Array(#"{"id": "#.utf8)
    private static let idSeparator = Array(", ".utf8)

    /// Holds back writes to the VMM until `uncork`: several commands, one `sendmsg`.
    func cork() { connection?.cork() }
    func uncork() { connection?.uncork() }

    /// Monotonic milliseconds.
    static func now() -> UInt64 { MonotonicClock.milliseconds() }

    private func armCommandTimer() {
        guard let deadline = pending.nextDeadline else {
            commandTimer.cancel()
            return
        }
        let delay = Int(deadline > Self.now() ? deadline - Self.now() : 0)
        commandTimer.arm(afterMilliseconds: delay) { [weak self] in self?.commandTimerFired() }
    }

    /// Commands past their deadline get an error; a reply that comes later is dropped.
    private func commandTimerFired() {
        let expired = pending.expire(now: Self.now())
        if !expired.isEmpty {
            logger.warning("VMM did not answer in time; replied with an error",
                           metadata: ["commands": "\(expired.count)", "timeout-ms": "\(commandTimeoutMilliseconds)"])
        }
        let error = QMPError("VMM '\(vmName)' did not reply within \(commandTimeoutMilliseconds) ms")
        for entry in expired { deliver(.failed(error), to: entry) }
        armCommandTimer()
    }

    /// A command the broker itself issues (`stop`, `cont`, `query-pci`, HMP), for `purpose`.
    @discardableResult
    func execute(_ command: String, arguments: JSON? = nil, for purpose: BrokerPurpose,
                 then continuation: ReplyHandler? = nil) -> Int64? {
        // Internal commands need no client id; whoever handles the reply parses what it needs.
        guard let arguments else {
            // `stop` races the guest: no JSON value is built or serialised for it.
            // The broker's own command names are QEMU's: nothing in them to escape.
            assert(!command.utf8.contains { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 })
            let members = Array(#""execute": ""#.utf8) + Array(command.utf8) + Array(#""}"#.utf8)
            return execute(command, members: members, for: purpose, then: continuation)
        }
        let message = JSON.object(["execute": .string(command), "arguments": arguments])
        return send(message, as: PendingCommand(broker: purpose, command: command), continuation: continuation)
    }

    /// One of the broker's own commands, already encoded: `members` follow `{"id": N, `.
    @discardableResult
    func execute(_ command: String, members: [UInt8], for purpose: BrokerPurpose,
                 then continuation: ReplyHandler? = nil) -> Int64? {
        send(fds: [], as: PendingCommand(broker: purpose, command: command), continuation: continuation) { id in
            Self.message(id: id, members: members)
        }
    }

    private func deliver(_ reply: UpstreamReply, to entry: PendingCommands.Entry) {
        deliver(reply, to: entry.command, continuation: continuations.removeValue(forKey: entry.id))
    }

    /// An awaited command's reply resumes its exchange; any other goes to the VM, by purpose.
    private func deliver(_ reply: UpstreamReply, to command: PendingCommand, continuation: ReplyHandler?) {
        if let continuation { return continuation(reply) }
        runner?.runOnLoop(.upstreamReplied(command, reply))
    }

    private func connect() {
        guard !stopped else { return }
        do {
            let connection = try UnixStreamConnection.connect(
                toPath: path, loop: loop, maxQueuedBytes: Self.maximumQueuedBytes)
            self.connection = connection
            framer.reset()
            perform(session.connected())
            connection.onRead = { [weak self] bytes, fds in self?.received(bytes, fds: fds) }
            connection.onClose = { [weak self] reason in self?.closed(reason) }
            connection.start()
            logger.debug("connected to VMM socket", metadata: ["path": "\(path)"])
            connectFailures.reset()
        } catch {
            if connectFailures.shouldLog(errno: error.errno, now: Deadline.now()) {
                logger.warning("cannot connect to the VMM's QMP socket; retrying", metadata: [
                    "path": "\(path)", "errno": "\(error.errno)", "error": "\(SystemCallError.reason(forErrno: error.errno))",
                    "attempts": "\(connectFailures.failuresSinceLogged)",
                ])
                connectFailures.logged()
            }
            perform(session.connectFailed())
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer, fds: [Int32]) {
        fds.forEach { _ = close($0) }  // QEMU never sends fds on QMP; never leak them
        let dropped = framer.droppedLines
        framer.feed(bytes) { raw in
            guard let line = UpstreamLine(ArraySlice(raw)) else {
                perform(session.receivedGarbage(String(decoding: raw.prefix(200), as: UTF8.self).trimmingLineEnd()))
                return
            }
            perform(session.received(line), line: line)
        }
        if framer.droppedLines != dropped {
            logger.error("VMM sent an over-long line; reconnecting")
            connection?.close()
        }
        runner?.runOnLoop(.upstreamReadHandled)
    }

    private func perform(_ action: UpstreamSession.Action, line: UpstreamLine? = nil) {
        switch action {
        case .none:
            break
        case .negotiate(let oob):
            let message = JSON.object(["execute": .string("qmp_capabilities")])
            if oob { message["arguments"] = .object(["enable": .strings(["oob"])]) }
            connection?.send(message.wireMessage())
        case .ready:
            handshakeTimer.cancel()
            logger.info("attached to VMM", metadata: ["vm": "\(vmName)", "path": "\(path)"])
            runner?.runOnLoop(.upstreamReady)
        case .deliverEvent:
            if let line { runner?.runOnLoop(.upstreamEvent(line)) }
        case .deliverReply:
            guard let line, let entry = pending.resolve(line.brokerID) else {
                logger.warning("VMM reply to a command that timed out, or with an id the broker did not send; dropped")
                return
            }
            deliver(.reply(line), to: entry)
        case .protocolViolation(let reason):
            logger.error("VMM socket does not speak QMP as expected; reconnecting", metadata: ["reason": "\(reason)"])
            connection?.close()
        case .ignore(let reason):
            logger.warning("\(reason)")
        case .reconnect(let milliseconds):
            scheduleReconnect(afterMilliseconds: milliseconds)
        case .startHandshakeTimer(let attempt, let milliseconds):
            handshakeTimer.arm(afterMilliseconds: milliseconds) { [weak self] in
                guard let self else { return }
                perform(session.handshakeTimedOut(attempt: attempt))
            }
        }
    }

    private func closed(_ reason: ConnectionCloseReason) {
        connection = nil
        handshakeTimer.cancel()
        let (wasReady, action) = session.closed()
        let lost = QMPError("VMM '\(vmName)' disconnected before replying")
        for entry in pending.drain() { deliver(.failed(lost), to: entry) }
        if wasReady && stopped {
            // The broker itself is going: nothing was lost.
            logger.debug("closed the VMM connection", metadata: ["vm": "\(vmName)"])
            runner?.runOnLoop(.upstreamLost)
        } else if wasReady {
            logger.warning("lost the VMM", metadata: ["vm": "\(vmName)", "reason": "\(reason)"])
            runner?.runOnLoop(.upstreamLost)
        }
        perform(action)
    }

    private func scheduleReconnect(afterMilliseconds milliseconds: Int) {
        guard !stopped else { return }
        reconnectTimer.arm(afterMilliseconds: milliseconds) { [weak self] in self?.connect() }
    }
}
