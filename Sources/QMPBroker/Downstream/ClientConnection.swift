import Glibc
import QMPSessions
import QMPWire

/// The I/O edge of one downstream client: feeds bytes to the reader, inputs to its
/// `ClientSession`, and hands what concerns the VM to it as actions. Replies leave in the
/// order QEMU would send them (`ReplyOrder`). Everything runs on the VM's loop, in its isolation.
final class ClientConnection {
    let id: Int
    let connection: UnixStreamConnection
    let credentials: PeerCredentials?
    private(set) var session: ClientSession?
    private var reader = QMPInputReader()
    private var order = ReplyOrder()
    /// Descriptors received with SCM_RIGHTS and not yet claimed: like QEMU's chardev,
    /// they belong to the next command that takes fds; newer ones replace older ones.
    private var receivedFDs: [Int32] = []
    /// The VM: commands and the close go to it.
    private weak var runner: (any VMActionRunner)?
    /// Whether the client came in on the read-only socket (`query-*` only).
    let readOnly: Bool

    init(id: Int, connection: UnixStreamConnection, credentials: PeerCredentials?, readOnly: Bool,
         runner: any VMActionRunner) {
        self.id = id
        self.connection = connection
        self.credentials = credentials
        self.readOnly = readOnly
        self.runner = runner
    }

    var receivesEvents: Bool { session?.receivesEvents ?? false }
    var isGreeted: Bool { session != nil }
    /// Stays connected across VMM restarts and gets `BROKER_VMM_*` events
    /// (`broker-stay-connected`, or the VM's `clients-stay-connected`); otherwise the
    /// client reads EOF when the VMM goes, as from QEMU.
    var staysConnected = false

    func start() {
        connection.onRead = { [weak self] bytes, fds in self?.received(bytes, fds: fds) }
        connection.onEndOfInput = { [weak self] in
            self?.inputEnded = true
            self?.closeIfFinished()
        }
        connection.onReadResumed = { [weak self] in self?.drainBufferedInput() }
        connection.onClose = { [weak self] reason in
            guard let self else { return }
            self.releaseFDs()
            self.runner?.runOnLoop(.clientClosed(self, reason))
        }
        connection.start()
    }

    /// Sends the VMM's greeting and starts negotiation; until then input waits in the socket.
    func greet(_ greeting: [UInt8], oobOffered: Bool, localCommands: Set<String>) {
        guard session == nil else { return }
        session = ClientSession(oobOffered: oobOffered, localCommands: localCommands, readOnly: readOnly)
        connection.send(greeting, requested: true)
        drainBufferedInput()
        closeIfFinished()
    }

    func send(_ bytes: [UInt8]) { connection.send(bytes) }

    /// Hands over the received descriptors to whoever consumes them (forwarded command or
    /// `vfio-eventfd-add`).
    func takeFDs() -> [Int32] {
        defer { receivedFDs = [] }
        return receivedFDs
    }

    // MARK: input

    /// Input not yet fed to the reader: everything before the greeting, and what was left
    /// of a read when its replies filled the output queue (reading is paused meanwhile).
    private var bufferedInput: [UInt8] = []
    /// Input is fed to the reader this much at a time, so that a pause takes effect within
    /// a few hundred replies (a byte of `]` is a whole reply) rather than a whole read.
    static let inputSliceBytes = 256
    /// The client half-closed (`echo … | socat`): answer what it sent, then close.
    private var inputEnded = false
    /// Commands sent on (to the VMM or a local handler) whose replies have not come back.
    private var outstanding = 0

    private func closeIfFinished() {
        guard inputEnded, session != nil, outstanding == 0, bufferedInput.isEmpty else { return }
        connection.closeAfterFlushing()
    }

    private func received(_ bytes: UnsafeRawBufferPointer, fds: [Int32]) {
        if !fds.isEmpty {
            releaseFDs()
            receivedFDs = fds
        }
        guard session != nil, bufferedInput.isEmpty else {
            // Not greeted yet (VMM never seen), or paused: keep input for later, in order.
            bufferedInput.append(contentsOf: bytes)
            return
        }
        let consumed = feed(bytes)
        if consumed < bytes.count { bufferedInput.append(contentsOf: bytes[consumed...]) }
    }

    /// Feeds input slice by slice until it is all in or the replies have paused reading;
    /// returns how many bytes went in.
    private func feed(_ bytes: UnsafeRawBufferPointer) -> Int {
        var start = 0
        while start < bytes.count && !connection.readPaused && connection.isOpen {
            let end = min(bytes.count, start + Self.inputSliceBytes)
            reader.feed(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) { input, tokens in self.handle(input, tokens) }
            start = end
        }
        return start
    }

    private func drainBufferedInput() {
        guard session != nil, !bufferedInput.isEmpty else { return }
        let input = bufferedInput
        bufferedInput = []
        let consumed = input.withUnsafeBytes { feed($0) }
        if consumed < input.count { bufferedInput = Array(input[consumed...]) }
        closeIfFinished()
    }

    private func handle(_ input: QMPInput, _ tokens: QMPMessageTokens?) {
        guard var session else { return }
        let action: ClientSession.Action
        switch input {
        case .value(let value): action = session.received(value)
        case .error(let desc): action = session.parseError(desc)
        }
        self.session = session
        switch action {
        case .reply(let reply):
            respond(reply.wireMessage(), slot: order.reserve())
        case .forward(var request):
            // The client's bytes go upstream with the broker's id spliced in: not re-serialised.
            request.membersWithoutID = tokens?.membersWithoutID()
            let slot = request.isOOB ? nil : order.reserve()
            outstanding += 1
            runner?.runOnLoop(.forward(request, fds: takeFDs(), slot: slot, client: self))
        case .handleLocally(let request):
            let slot = request.isOOB ? nil : order.reserve()
            outstanding += 1
            runner?.runOnLoop(.handleLocally(request, slot: slot, client: self))
        }
    }

    /// The reply to one of its commands, for `slot` (nil: out-of-band).
    func finish(_ bytes: [UInt8], slot: ReplyOrder.Slot?) {
        outstanding -= 1
        respond(bytes, slot: slot)
        closeIfFinished()
    }

    /// Sends a reply now (out-of-band) or when every earlier in-band reply has gone.
    private func respond(_ bytes: [UInt8], slot: ReplyOrder.Slot?) {
        guard let slot else {
            connection.send(bytes, requested: true)
            return
        }
        for ready in order.fill(slot, with: bytes) { connection.send(ready, requested: true) }
    }

    private func releaseFDs() {
        receivedFDs.forEach { _ = close($0) }
        receivedFDs = []
    }
}
