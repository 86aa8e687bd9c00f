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

/// Everything the broker does for one VM: the upstream link, the downstream sockets and
/// their clients, recovery and the link-reset watcher. An actor whose executor is its event
/// loop. Its parts are non-Sendable values in its isolation, so the compiler checks that
/// nothing else touches them. They never call each other: each input of a part returns
/// `VMAction`s, and what their own descriptors and timers produce is handed over (through
/// `VMActionRunner`, which enters the actor with `assumeIsolated`: no hop, no lock). Either
/// way `run(_:)` runs them, and every reply goes back to its part as an input.
package actor VMBroker {
    package nonisolated let configuration: VMConfiguration
    package nonisolated let loop: EventLoop
    package nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    nonisolated let logger: Logger
    let upstream: UpstreamLink
    nonisolated let board: BrokerStatusBoard
    let metrics: VMMetrics
    private var listeners: [UnixSocketListener] = []
    private var clients: [Int: ClientConnection] = [:]
    private var nextClientID = 0
    /// Whether the clients hold back output until the current VMM read is handled.
    private var clientsCorked = false
    let localCommands: LocalCommands
    /// What the broker answers itself; fixed once the VM is made.
    nonisolated let localCommandNames: Set<String>
    let recovery: VFIORecovery
    let linkResetWatcher: LinkResetWatcher?
    /// Descriptors clients passed with `getfd`, kept (as duplicates) under their names so
    /// `vfio-eventfd-add` can take one by `fdname`, as QEMU's own commands do.
    private var namedFDs: [String: Int32] = [:]
    /// Bounds the wait for the VMM's answers to the detach at stop.
    private let detachDeadline: LoopTimer
    private enum Lifecycle {
        case created
        case running
        /// Stopping: the VMM answers the watch's detach; then `finished`.
        case detaching(finished: @Sendable () -> Void)
        case stopped
    }

    private var lifecycle = Lifecycle.created
    var isRunning: Bool {
        if case .running = lifecycle { return true }
        return false
    }

    /// The multi-step exchanges with the VMM under way (`exchange`), cancelled at stop.
    private var exchanges: [Int: Task<Void, Never>] = [:]
    private var nextExchange = 0

    /// Starts a multi-step exchange with the VMM: an async method in the VM's isolation that
    /// checks its state again after every `await` (the VMM may have gone, the device been
    /// removed). It runs on the VM's loop, never on the shared pool, and is cancelled at stop.
    func exchange(_ body: @escaping @Sendable (isolated VMBroker) async -> Void) {
        guard isRunning else { return }
        nextExchange += 1
        let key = nextExchange
        // The loop is serial: the task cannot end before it is kept here.
        exchanges[key] = Task(executorPreference: loop) {
            await body(self)
            await self.exchangeEnded(key)
        }
    }

    private func exchangeEnded(_ key: Int) { exchanges[key] = nil }
    /// Every event sent to this VM's clients, numbered; the recent ones kept for replay.
    private(set) var events: EventRing

    package init(configuration: VMConfiguration, board: BrokerStatusBoard, store: StateStore? = nil,
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
        recovery = VFIORecovery(vmName: configuration.name, settings: configuration.recovery, store: store, loop: loop,
                                logger: logger)
        VFIOCommands.register(in: localCommands)
        HistoryCommand.register(in: localCommands, vm: configuration.name, store: store)
        localCommandNames = localCommands.names
        linkResetWatcher = configuration.traceLogPath.map { path in
            LinkResetWatcher(
                vmName: configuration.name, logPath: path, access: TraceLogAccess(configuration), store: store,
                loop: loop, board: board, checkMilliseconds: configuration.linkResetCheckMilliseconds, logger: logger)
        }
    }

    /// Opens the downstream socket(s) and starts attaching to the VMM. From any thread but
    /// the VM's loop: it waits for the loop.
    package nonisolated func start() throws(SystemCallError) {
        try loop.runAndWait { [self] () throws(SystemCallError) in
            // `assumeIsolated` forgets typed errors: the Result keeps SystemCallError.
            try assumeIsolated { vm in Result { () throws(SystemCallError) in try vm.startOnLoop() } }.get()
        }
    }

    private func startOnLoop() throws(SystemCallError) {
        guard case .created = lifecycle else { return }
        lifecycle = .running
        // The parts hand what their own descriptors and timers produce to the VM.
        upstream.runner = self
        recovery.outbox.runner = self
        linkResetWatcher?.outbox.runner = self
        do {
            board.update(configuration.name) {
                $0.upstream = configuration.upstreamPath
                $0.connected = false
            }
            listeners.append(try listen(at: configuration.socketPath, readOnly: false))
            if let path = configuration.readOnlySocketPath {
                listeners.append(try listen(at: path, readOnly: true))
            }
            upstream.start()
            run(recovery.handle(.start))
            metrics.restoredFlagged(recovery.orderedDevices.filter(\.machine.linkError).count)
            publishProtection()
        } catch {
            // A socket that cannot be opened fails the start: let go of what was set up.
            letGo()
            throw error
        }
    }

    /// Stops accepting, closes every client, undoes the tracing attach (each command
    /// answered, within `detachTimeoutMilliseconds`), then closes the upstream link. From
    /// any thread but the VM's loop: it waits.
    package nonisolated func stop() {
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
        loop.execute { [self] in assumeIsolated { $0.run($0.recovery.handle(.uevent(event))) } }
    }

    /// A `ras:aer_event` record, from the process's one subscription, for this VM's devices;
    /// `emittedAt`: when the kernel emitted it (monotonic nanoseconds), if known.
    nonisolated func deliver(_ event: AERTraceEvent, emittedAt: UInt64? = nil) {
        loop.execute { [self] in assumeIsolated { $0.run($0.recovery.handle(.aerTraceEvent(event, emittedAt: emittedAt))) } }
    }

    /// The kernel dropped `ras:aer_event` records.
    nonisolated func aerTraceRecordsLost(_ count: UInt64) {
        loop.execute { [self] in assumeIsolated { $0.run($0.recovery.handle(.aerTraceRecordsLost(count))) } }
    }

    /// Whether the process hears `ras:aer_event` (the poll slows down while it does).
    nonisolated func hearsAERTracepoint(_ heard: Bool) {
        loop.execute { [self] in assumeIsolated { $0.run($0.recovery.handle(.aerTracepoint(heard: heard))) } }
    }

    /// Applies a reloaded device list without touching the clients; one line per change.
    nonisolated func reconcile(_ devices: [VFIORecoverySettings.DeviceConfiguration]) -> [String] {
        loop.runAndWait { [self] in
            assumeIsolated { vm in
                let reload = vm.recovery.handleReload(devices)
                vm.run(reload.actions)
                return reload.changes
            }
        }
    }

    private func stopOnLoop(then finished: @escaping @Sendable () -> Void) {
        guard isRunning else { return finished() }
        listeners.forEach { $0.close() }
        listeners = []
        for client in clients.values { client.connection.close() }
        clients = [:]
        guard let linkResetWatcher, upstream.isReady else {
            letGo()
            return finished()
        }
        // The VMM answers the detach before its socket closes; one that does not, in time,
        // is let go of anyway.
        lifecycle = .detaching(finished: finished)
        detachDeadline.arm(afterMilliseconds: Self.detachTimeoutMilliseconds) { self.detachEnded() }
        run(linkResetWatcher.detach())
    }

    func detachEnded() {
        guard case .detaching(let finished) = lifecycle else { return }
        detachDeadline.cancel()
        letGo()
        finished()
    }

    /// Lets go of everything at once (a failed start, or after the detach).
    private func letGo() {
        lifecycle = .stopped
        // Their awaits end as the link fails what is pending; each checks `isRunning` after.
        exchanges.values.forEach { $0.cancel() }
        exchanges = [:]
        listeners.forEach { $0.close() }
        listeners = []
        for client in clients.values { client.connection.close() }
        clients = [:]
        if let linkResetWatcher { run(linkResetWatcher.detach()) }
        upstream.stop()
        run(recovery.handle(.stop))
        // What the parts' descriptors still hold (a close reported late, lines left in a
        // read buffer) reaches no one: a stopped VM publishes nothing again.
        upstream.runner = nil
        recovery.outbox.runner = nil
        linkResetWatcher?.outbox.runner = nil
        metrics.removeProtection()
        namedFDs.values.forEach { _ = close($0) }
        namedFDs = [:]
        board.remove(configuration.name)
    }

    private func listen(at path: String, readOnly: Bool) throws(SystemCallError) -> UnixSocketListener {
        try UnixSocketListener(path: path, mode: configuration.socketMode, loop: loop) { fd in
            self.accept(fd, readOnly: readOnly)
        }
    }

    // MARK: clients

    private func accept(_ fd: Int32, readOnly: Bool) {
        let connection = UnixStreamConnection(adopting: fd, loop: loop, maxQueuedBytes: configuration.clientQueueBytes)
        connection.readPauseThreshold = configuration.clientQueueBytes / 4
        let credentials = connection.peerCredentials()
        if !isAllowed(credentials) {
            logger.warning("refused a client not on the allow-list", metadata: PeerCredentials.logMetadata(credentials))
            connection.close()
            return
        }
        nextClientID += 1
        let client = ClientConnection(id: nextClientID, connection: connection, credentials: credentials,
                                      readOnly: readOnly, runner: self)
        client.staysConnected = configuration.clientsStayConnected
        clients[client.id] = client
        publishClientCount()
        var metadata = PeerCredentials.logMetadata(credentials)
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
        client.greet(greeting, oobOffered: upstream.oobOffered, localCommands: localCommandNames)
    }

    func clientClosed(_ client: ClientConnection, reason: ConnectionCloseReason) {
        clients.removeValue(forKey: client.id)
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
        if linkResetWatcher != nil {
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
        if let members = request.membersWithoutID {
            upstream.send(members: members, fds: fds, as: command)
        } else {
            upstream.send(request.message, fds: fds, as: command)
        }
    }

    /// A reply to a command with no continuation: a client's, or one of the broker's own.
    func upstreamReplied(_ command: PendingCommand, _ result: UpstreamReply) {
        switch command.requester {
        case .client(let number):
            clientReplied(command, result, client: clients[number])
        case .broker(.learnRunState):
            guard case .reply(let line) = result, let running = line.json?["return"]?["running"]?.bool else { return }
            run(recovery.handle(.vmEvent(.runStateLearnt(running: running))))
        case .broker(.stopVM):
            if case .failed(let error) = result { logger.error("stop failed", metadata: ["reason": "\(error.desc)"]) }
        case .broker(.linkResetWatch(let exchange)), .broker(.linkResetCanary(let exchange)):
            if let linkResetWatcher { run(linkResetWatcher.answered(exchange: exchange, result)) }
        case .broker(.usdtCanary):
            if let linkResetWatcher { run(linkResetWatcher.usdtCanaryAnswered(result)) }
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
                case .takeOverAddedVFIODevice(let id, let host):
                    if succeeded { run(recovery.handle(.vfioDeviceAdded(id: id, host: host))) }
                case .rediscover: if succeeded { run(.discoverDevices) }
                case .verifyLinkResetWatch: if let linkResetWatcher { run(linkResetWatcher.verify()) }
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
            run(recovery.handle(.clientRequestedStop))
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

    /// A command the broker answers itself; the reply takes the client's `slot`.
    func handleLocally(_ request: QMPRequest, slot: ReplyOrder.Slot?, from client: ClientConnection) {
        localCommands.handle(request, vm: self, client: client) { [weak client] reply in
            client?.finish(reply.wireMessage(), slot: slot)
        }
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

    func uncorkClients() {
        guard clientsCorked else { return }
        clientsCorked = false
        for client in clients.values { client.connection.uncork() }
    }

    /// Emits one of the broker's own events to this VM's clients.
    package func emit(_ name: String, data: JSON? = nil) {
        broadcast(BrokerEvent.wireMessage(name, data: data))
        observe(name, data: data)
    }

    // MARK: upstream

    func upstreamReady() {
        board.update(configuration.name) { $0.connected = true }
        metrics.upstream(connected: true)
        var version: QEMUVersion?
        if let qemu = upstream.greeting.flatMap({ try? JSON.parse($0) })?["QMP"]?["version"]?["qemu"],
           let major = qemu["major"]?.integer, let minor = qemu["minor"]?.integer {
            version = QEMUVersion(Int(major), Int(minor), Int(qemu["micro"]?.integer ?? 0))
        }
        let vmm = VMMProcess(pidFile: configuration.vmmPIDFile, peer: upstream.peerPID)
        run(recovery.handle(.vmmAttached(vmm, version)))
        for client in clients.values { greet(client) }
        broadcast(BrokerEvent.wireMessage("BROKER_VMM_CONNECTED", data: .qdict(["vm": .string(configuration.name)])),
                  toStayingOnly: true)
        run(.command("query-status", purpose: .learnRunState))
        if let linkResetWatcher { run(linkResetWatcher.attach(vmm)) }
        exchange { vm in
            for device in vm.recovery.orderedDevices { await vm.learnPlacement(of: device) }
            await vm.discoverDevices()
        }
    }

    func upstreamLost() {
        board.update(configuration.name) { $0.connected = false }
        metrics.upstream(connected: false)
        if let linkResetWatcher { run(linkResetWatcher.upstreamLost()) }
        run(recovery.handle(.vmmDetached))
        broadcast(BrokerEvent.wireMessage("BROKER_VMM_DISCONNECTED", data: .qdict(["vm": .string(configuration.name)])),
                  toStayingOnly: true)
        // As from QEMU: a client that did not ask to stay reads EOF once the error replies
        // to its pending commands (sent before this) have been written.
        for client in clients.values where client.isGreeted && !client.staysConnected {
            client.connection.closeAfterFlushing()
        }
    }

    func upstreamEvent(_ line: UpstreamLine) {
        let event = UpstreamEvent(line)
        // The broker's handle on a deleted vfio device goes before anyone hears of the
        // deletion: a client's immediate `device_add` of it would otherwise get EBUSY.
        if case .deviceDeleted(let id, let path) = event { run(recovery.handle(.deviceDeleted(id: id, path: path))) }
        broadcastUpstream(Array(line.bytes))
        if event == .reset, let linkResetWatcher { run(linkResetWatcher.systemReset()) }
        if let runEvent = event.runEvent { run(recovery.handle(.vmEvent(runEvent))) }
    }
}
