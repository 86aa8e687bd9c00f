import BrokerState
import EventLoop
import ErrorEvents
import Glibc
import KernelTracepoint
import LinkResetTrace
import Logging
import QMPSessions
import QMPWire
import VFIOWatch

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
    /// How often QEMU's trace state is re-checked, and a broken watch retried, when no client
    /// command gave cause: each check is a few round trips, so with many VMs it is what an
    /// idle broker spends its time on.
    public var linkResetCheckMilliseconds = 30_000
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

/// Everything the broker does for one VM: the upstream link, the downstream sockets and
/// their clients, and the routing between them. An actor whose executor is its event loop:
/// descriptor handlers on that loop enter it with `assumeIsolated` (no hop, no lock), and
/// the parts it owns (links, connections, recovery, the trace follower) are non-Sendable
/// values in its isolation, so the compiler checks that nothing else touches them.
public actor VMBroker {
    public nonisolated let configuration: VMConfiguration
    public nonisolated let loop: EventLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    nonisolated let logger: Logger
    let upstream: UpstreamLink
    nonisolated let board: BrokerStatusBoard
    let metrics: VMMetrics
    private var listeners: [UnixSocketListener] = []
    private var clients: [Int: ClientConnection] = [:]
    private var readOnlyClients: Set<Int> = []
    private var nextClientID = 0
    /// Whether the clients hold back output until the current VMM read is handled.
    private var clientsCorked = false
    let localCommands: LocalCommands
    /// What the broker answers itself; fixed once the VM is made.
    nonisolated let localCommandNames: Set<String>
    let recovery: VFIORecovery
    let guestResets: GuestResetMonitor?
    /// Descriptors clients passed with `getfd`, kept (as duplicates) under their names so
    /// `vfio-eventfd-add` can take one by `fdname`, as QEMU's own commands do.
    private var namedFDs: [String: Int32] = [:]
    /// Bounds the wait for the VMM's answers to the detach at stop, and who waits for the stop.
    private let detachDeadline: LoopTimer
    private var stopFinished: (@Sendable () -> Void)?
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
        self.detachDeadline = LoopTimer(loop: loop)
        self.localCommands = LocalCommands(board: board)
        ClientSessionCommands.register(in: localCommands)
        // The parts get capabilities, not the VM: commands to the VMM here; what needs the
        // VM itself (events to its clients, routing between parts) is wired in `startOnLoop`.
        let commands = CommandSink(
            execute: { [upstream, metrics] command, arguments, purpose, continuation in
                // The broker's own stops and conts are what the stopped-VM alert counts.
                if case .stopVM = purpose { metrics.brokerStop() }
                if case .contVM = purpose { metrics.brokerCont() }
                return upstream.execute(command, arguments: arguments, for: purpose, then: continuation)
            },
            isReady: { [upstream] in upstream.isReady },
            vmmPID: { [upstream, pidFile = configuration.vmmPIDFile] in VMMProcess.pid(pidFile: pidFile, peer: upstream.peerPID) })
        let recovery = VFIORecovery(
            vmName: configuration.name, settings: configuration.recovery, store: store, loop: loop,
            commands: commands, logger: logger)
        self.recovery = recovery
        VFIOCommands.register(in: localCommands)
        HistoryCommand.register(in: localCommands, vm: configuration.name, store: store)
        localCommandNames = localCommands.names
        guestResets = configuration.traceLogPath.map { path in
            GuestResetMonitor(
                vmName: configuration.name, logPath: path, access: TraceLogAccess(configuration), store: store,
                loop: loop, board: board, commands: commands,
                watched: { recovery.orderedDevices.map { .init(id: $0.id, host: $0.host.description) } },
                checkMilliseconds: configuration.linkResetCheckMilliseconds, logger: logger)
        }
    }

    /// Opens the downstream socket(s) and starts attaching to the VMM. From any thread but
    /// the VM's loop: it waits for the loop.
    public nonisolated func start() throws(SocketError) {
        try loop.runAndWait { [self] () throws(SocketError) in
            // `assumeIsolated` forgets typed errors: the Result keeps SocketError.
            try assumeIsolated { vm in Result { () throws(SocketError) in try vm.startOnLoop() } }.get()
        }
    }

    private func startOnLoop() throws(SocketError) {
        // The parts report to the VM, which routes: events go to the clients, a guest link
        // reset to recovery, recovery's new devices to the trace follower.
        let events = EventSink { name, data in self.emit(name, data: data) }
        recovery.events = events
        recovery.refreshTopology = { self.guestResets?.refreshTopology() }
        recovery.placementWanted = { id in
            self.run { vm in
                if let device = vm.recovery.devices[id] { await vm.learnPlacement(of: device) }
            }
        }
        recovery.protectionChanged = { self.publishProtection() }
        guestResets?.watchPublished = { self.publishProtection() }
        guestResets?.topologyWanted = { self.run { await $0.readTopology() } }
        guestResets?.events = events
        guestResets?.reportLinkReset = { device, origin, late in
            self.recovery.guestLinkReset(id: device, origin: origin, late: late)
        }
        do {
            board.update(configuration.name) {
                $0.upstream = configuration.upstreamPath
                $0.connected = false
            }
            listeners.append(try listen(at: configuration.socketPath, readOnly: false))
            if let path = configuration.readOnlySocketPath {
                listeners.append(try listen(at: path, readOnly: true))
            }
            upstream.onReady = { self.upstreamReady() }
            upstream.onDisconnected = { self.upstreamLost() }
            upstream.onEvent = { line in self.upstreamEvent(line) }
            upstream.onReadHandled = { self.uncorkClients() }
            upstream.onReply = { command, reply in self.upstreamReplied(command, reply) }
            upstream.start()
            recovery.start()
            metrics.restoredFlagged(recovery.orderedDevices.filter(\.machine.linkError).count)
            publishProtection()
        } catch {
            // A socket that cannot be opened fails the start: let go of what was set up,
            // the routes above included (they hold the VM).
            stopOnLoop()
            throw error
        }
    }

    /// Stops accepting, closes every client, undoes the tracing attach (each command
    /// answered, within `detachTimeoutMilliseconds`), then closes the upstream link. From
    /// any thread but the VM's loop: it waits.
    public nonisolated func stop() {
        let stopped = Semaphore()
        beginStop { stopped.signal() }
        stopped.wait()
    }

    /// `stop` without waiting: `finished` runs on the loop once the VM has let go of everything.
    nonisolated func beginStop(_ finished: @escaping @Sendable () -> Void) {
        loop.execute { [self] in assumeIsolated { $0.stopOnLoop(then: finished) } }
    }

    /// How long a stopping VM waits for the VMM to answer the detach commands.
    static let detachTimeoutMilliseconds = 2000

    /// A kernel uevent, from the process's one netlink socket (or a drill), for this VM's devices.
    nonisolated func deliver(_ event: UEvent) {
        loop.execute { [self] in assumeIsolated { $0.recovery.uevent(event) } }
    }

    /// A `ras:aer_event` record, from the process's one subscription, for this VM's devices;
    /// `emittedAt`: when the kernel emitted it (monotonic nanoseconds), if known.
    nonisolated func deliver(_ event: AERTraceEvent, emittedAt: UInt64? = nil) {
        loop.execute { [self] in assumeIsolated { $0.recovery.aerTraceEvent(event, emittedAt: emittedAt) } }
    }

    /// The kernel dropped `ras:aer_event` records.
    nonisolated func aerTraceRecordsLost(_ count: UInt64) {
        loop.execute { [self] in assumeIsolated { $0.recovery.aerTraceRecordsLost(count) } }
    }

    /// Whether the process hears `ras:aer_event` (the poll slows down while it does).
    nonisolated func hearsAERTracepoint(_ heard: Bool) {
        loop.execute { [self] in assumeIsolated { $0.recovery.aerTracepoint(heard: heard) } }
    }

    /// Applies a reloaded device list without touching the clients; one line per change.
    nonisolated func reconcile(_ devices: [VFIORecoverySettings.DeviceConfiguration]) -> [String] {
        loop.runAndWait { [self] in assumeIsolated { $0.recovery.reconcile(devices) } }
    }

    private func stopOnLoop(then finished: @escaping @Sendable () -> Void) {
        listeners.forEach { $0.close() }
        listeners = []
        for client in clients.values { client.connection.close() }
        clients = [:]
        guard let guestResets, upstream.isReady, stopFinished == nil else {
            stopOnLoop()
            return finished()
        }
        // The VMM answers the detach before its socket closes; one that does not, in time,
        // is let go of anyway.
        stopFinished = finished
        detachDeadline.arm(afterMilliseconds: Self.detachTimeoutMilliseconds) { self.detachEnded() }
        guestResets.detach { self.detachEnded() }
    }

    private func detachEnded() {
        guard let finished = stopFinished else { return }
        stopFinished = nil
        detachDeadline.cancel()
        stopOnLoop()
        finished()
    }

    /// Lets go of everything at once (a failed start, or after the detach).
    private func stopOnLoop() {
        listeners.forEach { $0.close() }
        listeners = []
        for client in clients.values { client.connection.close() }
        clients = [:]
        guestResets?.detach()
        upstream.stop()
        recovery.stop()
        metrics.removeProtection()
        namedFDs.values.forEach { _ = close($0) }
        namedFDs = [:]
        board.remove(configuration.name)
        unwire()
    }

    /// The parts' routes hold the VM (they are its isolation's closures); a stopped VM lets
    /// go of them so that it and its parts can be freed.
    private func unwire() {
        upstream.onReady = {}
        upstream.onDisconnected = {}
        upstream.onEvent = { _ in }
        upstream.onReadHandled = {}
        upstream.onReply = { _, _ in }
        recovery.events = EventSink { _, _ in }
        recovery.refreshTopology = {}
        recovery.placementWanted = { _ in }
        recovery.protectionChanged = {}
        guestResets?.watchPublished = {}
        guestResets?.topologyWanted = {}
        guestResets?.events = EventSink { _, _ in }
        guestResets?.reportLinkReset = { _, _, _ in }
    }

    private func listen(at path: String, readOnly: Bool) throws(SocketError) -> UnixSocketListener {
        try UnixSocketListener(path: path, mode: configuration.socketMode, loop: loop) { fd in
            self.accept(fd, readOnly: readOnly)
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
        let client = ClientConnection(id: nextClientID, connection: connection, routes: ClientRoutes(
            forward: { request, fds, slot, client in self.forward(request, fds: fds, slot: slot, from: client) },
            handleLocally: { request, client, completion in self.handleLocally(request, from: client, completion: completion) },
            closed: { client, reason in self.clientClosed(client, reason: reason) }))
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
        client.greet(greeting, oobOffered: upstream.oobOffered, localCommands: localCommandNames,
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

    /// Sends a client's command upstream; the reply comes back with the client's own id,
    /// into `slot` of its reply order (`upstreamReplied`).
    func forward(_ request: QMPRequest, fds: [Int32], slot: ReplyOrder.Slot?, from client: ClientConnection) {
        var followUps: [PendingCommand.FollowUp] = []
        if guestResets != nil {
            switch TraceGuard.verdict(command: request.command, arguments: request.arguments,
                                      watched: LinkResetTracing.traceEvents) {
            case .refuse(let error):
                logger.warning("refused a client command that would switch off the link-reset watch",
                               metadata: ["command": "\(request.command)", "client": "\(client.id)"])
                fds.forEach { _ = close($0) }
                return client.finish(request.errorReply(error).wireMessage(), slot: slot)
            case .forwardThenVerify:
                followUps.append(.verifyLinkResetWatch)
            case .forward:
                break
            }
        }
        if request.command == "cont", let refusal = recovery.resumeRefusal {
            logger.error("refused a client's cont: a flagged device failed host recovery",
                         metadata: ["client": "\(client.id)", "reason": "\(refusal.desc)"])
            fds.forEach { _ = close($0) }
            return client.finish(request.errorReply(refusal).wireMessage(), slot: slot)
        }
        if request.command == "device_add" {
            followUps.insert(.rediscover, at: 0)
            if let added = VFIODiscovery.addedVFIODevice(request.arguments) {
                followUps.insert(.takeOverAddedVFIODevice(id: added.id, host: added.host), at: 0)
            }
        }
        if localCommands.replyTransform(for: request.command) != nil { followUps.append(.transformReply) }
        noteForwarded(request, fds: fds)
        let command = PendingCommand(client: client.id, command: request.command, id: request.id,
                                     idBytes: request.id.map(QEMUJSONWriter.write), slot: slot,
                                     followUps: followUps, sentAt: metrics.commandForwarded())
        upstream.send(request.message, fds: fds, as: command)
    }

    /// A reply to a command with no continuation: a client's, or one of the broker's own.
    private func upstreamReplied(_ command: PendingCommand, _ result: UpstreamReply) {
        switch command.requester {
        case .client(let number):
            clientReplied(command, result, client: clients[number])
        case .broker(.learnRunState):
            guard case .reply(let line) = result, let running = line.json?["return"]?["running"]?.bool else { return }
            recovery.vmEvent(.runStateLearnt(running: running))
        case .broker(.stopVM):
            if case .failed(let error) = result { logger.error("stop failed", metadata: ["reason": "\(error.desc)"]) }
        case .broker(.linkResetWatch(let exchange)):
            guestResets?.answered(exchange: exchange, result)
        case .broker(.contVM), .broker(.learnPlacement), .broker(.discovery), .broker(.injection), .broker(.pciTopology):
            break  // nothing to learn, or handled by the exchange's own continuation
        }
    }

    /// The client's reply with its own id, after what the command asks of the broker.
    /// A client that went away meanwhile gets nothing; the follow-ups still run.
    private func clientReplied(_ command: PendingCommand, _ result: UpstreamReply, client: ClientConnection?) {
        metrics.commandReplied(sentAt: command.sentAt)
        switch result {
        case .reply(let line):
            let succeeded = line.has("return")
            for followUp in command.followUps {
                switch followUp {
                case .takeOverAddedVFIODevice(let id, let host): if succeeded { recovery.vfioDeviceAdded(id: id, host: host) }
                case .rediscover: if succeeded { run { await $0.discoverDevices() } }
                case .verifyLinkResetWatch: guestResets?.verify()
                case .transformReply: break
                }
            }
            guard let client else { return }
            if command.followUps.contains(.transformReply), succeeded,
               let transform = localCommands.replyTransform(for: command.command),
               let reply = try? JSON.parse(line.bytes), let value = reply["return"] {
                client.finish(QMPRequest.successReply(transform(value), id: command.clientID).wireMessage(), slot: command.slot)
            } else {
                client.finish(line.replacingID(with: command.clientIDBytes), slot: command.slot)
            }
        case .failed(let error):
            client?.finish(error.reply(id: command.clientID).wireMessage(), slot: command.slot)
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

    /// Events from the VMM: held back per client until the whole read is handled, so a
    /// burst costs one `sendmsg` per client, not one per event (same bytes, same order).
    private func broadcastUpstream(_ event: [UInt8]) {
        if !clientsCorked {
            clientsCorked = true
            for client in clients.values { client.connection.cork() }
        }
        broadcast(event)
    }

    private func uncorkClients() {
        guard clientsCorked else { return }
        clientsCorked = false
        for client in clients.values { client.connection.uncork() }
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
        upstream.execute("query-status", for: .learnRunState)
        guestResets?.attach()
        run { vm in
            for device in vm.recovery.orderedDevices { await vm.learnPlacement(of: device) }
            await vm.discoverDevices()
        }
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
        let event = UpstreamEvent(line)
        // The broker's handle on a deleted vfio device goes before anyone hears of the
        // deletion: a client's immediate `device_add` of it would otherwise get EBUSY.
        if case .deviceDeleted(let id, let path) = event { recovery.deviceDeleted(id: id, path: path) }
        broadcastUpstream(Array(line.bytes))
        if event == .reset { guestResets?.systemReset() }
        if let runEvent = event.runEvent { recovery.vmEvent(runEvent) }
    }
}
