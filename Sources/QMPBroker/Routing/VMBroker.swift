import BrokerState
import EventLoop
import ErrorEvents
import Glibc
import LinkResetTrace
import Logging
import QMPSessions
import QMPWire

/// How one VM is served: where its VMM's monitor is and how its own socket looks.
public struct VMConfiguration: Sendable, Equatable {
    public var name: String
    public var upstreamPath: String
    public var socketPath: String
    public var socketMode: UInt32 = 0o660
    /// A second socket that accepts only `query-*` commands, if wanted.
    public var readOnlySocketPath: String?
    /// When non-empty, only peers whose uid or gid is listed may connect (SO_PEERCRED).
    public var allowedUIDs: Set<UInt32> = []
    public var allowedGIDs: Set<UInt32> = []
    /// A client whose unread events exceed this is disconnected; one whose unread replies
    /// exceed a quarter of it is not read until it has read them (it is slowed, not dropped).
    public var clientQueueBytes: Int = 4 << 20
    /// The VFIO devices to watch and how.
    public var recovery = VFIORecoverySettings()
    /// The regular file QEMU logs its trace events into (QEMU opens it itself, so the
    /// VMM's user and MAC profile must allow it); nil: guest link resets are not watched.
    public var traceLogPath: String?
    /// A file holding the VMM's pid (QEMU's `-pidfile`), for when the process that listens on
    /// the QMP socket is not the VMM; nil: SO_PEERCRED of the upstream socket.
    public var vmmPIDFile: String?
    /// The VMM must greet and answer `qmp_capabilities` within this, or it is dropped and retried.
    public var handshakeTimeoutMilliseconds = UpstreamSession.defaultHandshakeTimeoutMilliseconds
    /// A forwarded command the VMM has not answered after this gets a `GenericError`.
    public var commandTimeoutMilliseconds = 60_000
    /// Whether clients stay connected across VMM restarts without asking
    /// (`broker-stay-connected`); by default they read EOF when the VMM goes, as from QEMU.
    public var clientsStayConnected = false
    /// How many numbered events `query-broker-events` can replay.
    public var eventRingSize = 1024
    /// The trace log's mode and owner, for a QEMU that runs as another user than the broker.
    public var traceLogMode: UInt32 = 0o600
    public var traceLogOwner: FileOwner?

    public struct FileOwner: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32

        public init(uid: UInt32, gid: UInt32) {
            self.uid = uid
            self.gid = gid
        }
    }

    public init(name: String, upstreamPath: String, socketPath: String) {
        self.name = name
        self.upstreamPath = upstreamPath
        self.socketPath = socketPath
        self.traceLogPath = Self.absolute("\(Self.directory(of: socketPath))/\(name).trace.log")
    }

    private static func directory(of path: String) -> String {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory.isEmpty ? (path.hasPrefix("/") ? "" : ".") : directory
    }

    /// QEMU resolves a relative `logfile` against its own working directory, not the
    /// broker's: the broker's path is made absolute before it is handed over (issue 13 item 3).
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        let base = String(cString: cwd)
        let relative = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return base == "/" ? "/\(relative)" : "\(base)/\(relative)"
    }
}

/// Everything the broker does for one VM, on one event loop: the upstream link, the
/// downstream sockets and their clients, and the routing between them.
/// `@unchecked Sendable`: every mutable member is touched only on `loop` (the public
/// entry points go there with `loop.runAndWait`/`execute`).
public final class VMBroker: @unchecked Sendable {
    public let configuration: VMConfiguration
    public let loop: EventLoop
    let logger: Logger
    let upstream: UpstreamLink
    let board: BrokerStatusBoard
    let metrics: VMMetrics
    private var listeners: [UnixSocketListener] = []
    private var clients: [Int: ClientConnection] = [:]
    private var readOnlyClients: Set<Int> = []
    private var nextClientID = 0
    let localCommands: LocalCommands
    private(set) var recovery: VFIORecovery!
    private(set) var guestResets: GuestResetMonitor?
    /// Descriptors clients passed with `getfd`, kept (as duplicates) under their names so
    /// `vfio-eventfd-add` can take one by `fdname`, as QEMU's own commands do.
    private var namedFDs: [String: Int32] = [:]
    /// Every event sent to this VM's clients, numbered; the recent ones kept for replay.
    private(set) var events: EventRing

    public init(configuration: VMConfiguration, board: BrokerStatusBoard, store: StateStore? = nil,
                loop: EventLoop = EventLoopGroup.shared.next(), logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        var logger = logger
        logger[metadataKey: "vm"] = "\(configuration.name)"
        self.logger = logger
        self.board = board
        self.metrics = VMMetrics(vm: configuration.name)
        self.upstream = UpstreamLink(
            vmName: configuration.name, path: configuration.upstreamPath, loop: loop, logger: logger,
            handshakeTimeoutMilliseconds: configuration.handshakeTimeoutMilliseconds,
            commandTimeoutMilliseconds: configuration.commandTimeoutMilliseconds)
        self.events = EventRing(capacity: configuration.eventRingSize)
        self.localCommands = LocalCommands(board: board)
        ClientSessionCommands.register(in: localCommands)
        self.recovery = VFIORecovery(vm: self, settings: configuration.recovery, store: store, logger: logger)
        VFIOCommands.register(in: localCommands, recovery: recovery)
        HistoryCommand.register(in: localCommands, vm: configuration.name, store: store)
        if let path = configuration.traceLogPath {
            guestResets = GuestResetMonitor(vm: self, logPath: path, store: store, logger: logger)
        }
    }

    /// Opens the downstream socket(s) and starts attaching to the VMM.
    public func start() throws(SocketError) {
        let result: Result<Void, SocketError> = loop.runAndWait { [self] in
            do throws(SocketError) {
                try startOnQueue()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    private func startOnQueue() throws(SocketError) {
        do {
            board.update(configuration.name) {
                $0.upstream = configuration.upstreamPath
                $0.connected = false
            }
            listeners.append(try listen(at: configuration.socketPath, readOnly: false))
            if let path = configuration.readOnlySocketPath {
                listeners.append(try listen(at: path, readOnly: true))
            }
            upstream.onReady = { [unowned self] in upstreamReady() }
            upstream.onDisconnected = { [unowned self] in upstreamLost() }
            upstream.onEvent = { [unowned self] line in upstreamEvent(line) }
            upstream.start()
            recovery.start()
            metrics.restoredFlagged(recovery.orderedDevices.filter(\.machine.linkError).count)
        }
    }

    /// Stops accepting, closes every client and the upstream link.
    public func stop() {
        loop.runAndWait { [self] in
            listeners.forEach { $0.close() }
            listeners = []
            for client in clients.values { client.connection.close() }
            clients = [:]
            guestResets?.detach()
            upstream.stop()
            recovery.stop()
            namedFDs.values.forEach { _ = close($0) }
            namedFDs = [:]
            board.remove(configuration.name)
        }
    }

    private func listen(at path: String, readOnly: Bool) throws(SocketError) -> UnixSocketListener {
        try UnixSocketListener(path: path, mode: configuration.socketMode, loop: loop) { [unowned self] fd in
            accept(fd, readOnly: readOnly)
        }
    }

    // MARK: clients

    private func accept(_ fd: Int32, readOnly: Bool) {
        let connection = UnixStreamConnection(adopting: fd, loop: loop, maxQueuedBytes: configuration.clientQueueBytes)
        connection.readPauseThreshold = configuration.clientQueueBytes / 4
        if !isAllowed(connection.peerCredentials()) {
            logger.warning("refused a client not on the allow-list",
                           metadata: PeerCredentials.logMetadata(connection.peerCredentials()))
            connection.close()
            return
        }
        nextClientID += 1
        let client = ClientConnection(id: nextClientID, connection: connection, vm: self)
        client.staysConnected = configuration.clientsStayConnected
        clients[client.id] = client
        if readOnly { readOnlyClients.insert(client.id) }
        publishClientCount()
        var metadata = PeerCredentials.logMetadata(connection.peerCredentials())
        metadata["client"] = "\(client.id)"
        metadata["socket"] = readOnly ? "read-only" : "main"
        logger.info("client connected", metadata: metadata)
        client.start()
        // Greet only from a live VMM: its greeting names the QEMU that will answer. While the
        // VMM is away or its handshake is under way, the client waits, as on a QEMU socket
        // whose monitor has not started yet; a cached greeting could name another QEMU
        // (restarted after an upgrade) and promise a monitor that cannot answer.
        if upstream.isReady { greet(client) }
    }

    private func isAllowed(_ peer: PeerCredentials?) -> Bool {
        if configuration.allowedUIDs.isEmpty && configuration.allowedGIDs.isEmpty { return true }
        guard let peer else { return false }
        return configuration.allowedUIDs.contains(peer.uid) || configuration.allowedGIDs.contains(peer.gid)
    }

    private func greet(_ client: ClientConnection) {
        guard let greeting = upstream.greeting else { return }
        client.greet(greeting, oobOffered: upstream.oobOffered, localCommands: localCommands.names,
                     readOnly: readOnlyClients.contains(client.id))
    }

    func clientClosed(_ client: ClientConnection, reason: ConnectionCloseReason) {
        clients.removeValue(forKey: client.id)
        readOnlyClients.remove(client.id)
        publishClientCount()
        switch reason {
        case .outputOverflow:
            metrics.slowClientCut()
            logger.warning("disconnected a client that stopped reading (output queue full)",
                           metadata: ["client": "\(client.id)", "limit": "\(configuration.clientQueueBytes)"])
        case .error(let code):
            logger.info("client connection failed", metadata: ["client": "\(client.id)", "errno": "\(code)"])
        case .peerClosed, .local:
            logger.info("client gone", metadata: ["client": "\(client.id)"])
        }
    }

    private func publishClientCount() {
        let count = clients.count
        board.update(configuration.name) { $0.clients = count }
        metrics.clientCount(count)
    }

    // MARK: routing

    /// Sends a client's command upstream; the reply comes back with the client's own id.
    /// `completion` gets the reply's wire bytes.
    func forward(_ request: QMPRequest, fds: [Int32], from client: ClientConnection, completion: @escaping ([UInt8]) -> Void) {
        var verifyAfter = false
        if guestResets != nil {
            switch TraceGuard.verdict(command: request.command, arguments: request.arguments,
                                      watched: LinkResetTracing.traceEvents) {
            case .refuse(let error):
                logger.warning("refused a client command that would switch off the link-reset watch",
                               metadata: ["command": "\(request.command)", "client": "\(client.id)"])
                fds.forEach { _ = close($0) }
                return completion(request.errorReply(error).wireMessage())
            case .forwardThenVerify:
                verifyAfter = true
            case .forward:
                break
            }
        }
        noteForwarded(request, fds: fds)
        let clientID = request.id.map(QEMUJSONWriter.write)
        let transform = localCommands.replyTransform(for: request.command)
        let replied = metrics.commandForwarded()
        upstream.send(request.message, fds: fds) { result in
            replied()
            switch result {
            case .reply(let line):
                if request.command == "device_add" && line.has("return") { self.recovery.discover() }
                if verifyAfter { self.guestResets?.verify() }
                if let transform, line.has("return"), let reply = try? JSON.parse(line.bytes), let value = reply["return"] {
                    completion(request.successReply(transform(value)).wireMessage())
                } else {
                    completion(line.replacingID(with: clientID))
                }
            case .failed(let error):
                completion(request.errorReply(error).wireMessage())
            }
        }
    }

    /// What the broker must learn from commands it passes on.
    private func noteForwarded(_ request: QMPRequest, fds: [Int32]) {
        switch request.command {
        case "stop":
            recovery.clientRequestedStop()
        case "getfd":
            guard let name = request.arguments?["fdname"]?.string, let fd = fds.first else { return }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0 else { return }
            if let old = namedFDs.updateValue(copy, forKey: name) { close(old) }
        case "closefd":
            guard let name = request.arguments?["fdname"]?.string, let old = namedFDs.removeValue(forKey: name) else { return }
            close(old)
        default:
            break
        }
    }

    /// A descriptor passed earlier with `getfd` under `name`, handed over (the VMM keeps its own).
    func takeNamedFD(_ name: String) -> Int32? { namedFDs.removeValue(forKey: name) }

    func handleLocally(_ request: QMPRequest, from client: ClientConnection, completion: @escaping (JSON) -> Void) {
        localCommands.handle(request, vm: self, client: client, completion: completion)
    }

    /// Numbers an event and sends the same bytes to every negotiated client (or only to
    /// those staying across VMM restarts): serialised once, never copied per client.
    func broadcast(_ event: [UInt8], toStayingOnly: Bool = false) {
        let bytes = events.record(event)
        metrics.eventFannedOut()
        for client in clients.values where client.receivesEvents && (client.staysConnected || !toStayingOnly) {
            client.send(bytes)
        }
    }

    /// Emits one of the broker's own events to this VM's clients.
    public func emit(_ name: String, data: JSON? = nil) {
        broadcast(BrokerEvent.wireMessage(name, data: data))
        observe(name, data: data)
    }

    // MARK: upstream

    private func upstreamReady() {
        board.update(configuration.name) { $0.connected = true }
        metrics.upstream(connected: true)
        if let version = upstream.greeting.flatMap({ try? JSON.parse($0) })?["QMP"]?["version"]?["qemu"],
           let major = version["major"]?.integer, let minor = version["minor"]?.integer {
            recovery.qemuVersion = QEMUVersion(Int(major), Int(minor), Int(version["micro"]?.integer ?? 0))
        }
        for client in clients.values { greet(client) }
        broadcast(BrokerEvent.wireMessage("BROKER_VMM_CONNECTED", data: .qdict(["vm": .string(configuration.name)])),
                  toStayingOnly: true)
        upstream.execute("query-status") { [weak self] reply in
            guard case .reply(let line) = reply, let running = line.json?["return"]?["running"]?.bool else { return }
            self?.recovery.vmRunState(running: running)
        }
        recovery.attached()
        guestResets?.attach()
    }

    private func upstreamLost() {
        board.update(configuration.name) { $0.connected = false }
        metrics.upstream(connected: false)
        guestResets?.upstreamLost()
        recovery.detached()
        broadcast(BrokerEvent.wireMessage("BROKER_VMM_DISCONNECTED", data: .qdict(["vm": .string(configuration.name)])),
                  toStayingOnly: true)
        // As from QEMU: a client that did not ask to stay reads EOF once the error replies
        // to its pending commands (sent before this) have been written.
        for client in clients.values where client.isGreeted && !client.staysConnected {
            client.connection.closeAfterFlushing()
        }
    }

    private func upstreamEvent(_ line: UpstreamLine) {
        let name = line.plainString("event")
        // The broker's handle on a deleted vfio device goes before anyone hears of the
        // deletion: a client's immediate `device_add` of it would otherwise get EBUSY.
        if name == "DEVICE_DELETED", let data = line.json?["data"] {
            recovery.deviceDeleted(id: data["device"]?.string, path: data["path"]?.string)
        }
        broadcast(Array(line.bytes))
        guard let name else { return }
        if name == "RESET" { guestResets?.systemReset() }
        recovery.vmEvent(name)
    }
}
