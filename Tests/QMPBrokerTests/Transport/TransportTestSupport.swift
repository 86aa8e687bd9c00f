import EventLoop
import Glibc
import Synchronization
@testable import QMPBroker

/// Generous bound for anything a test waits on; a healthy run needs milliseconds.
let transportTestTimeout = 10.0

/// A fresh directory under /tmp (short, for sockaddr_un's 108-byte limit), removed by `remove()`.
struct SocketTestDirectory {
    let path: String

    init() {
        var template = Array("/tmp/qmpb-transport-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: \(SystemCallError.reason(forErrno: errno))")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Removes the directory and the files directly in it.
    func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { _ = unlink(file(name)) }
            }
            closedir(directory)
        }
        _ = rmdir(path)
    }
}

/// Tests suspended until a condition over state confined to `loop` holds: the callbacks
/// under test call `changed()`, so nothing polls or sleeps.
final class LoopConditions: @unchecked Sendable {
    private struct Waiter {
        let id: Int
        let condition: () -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }

    let loop: EventLoop
    private var waiters: [Waiter] = []
    private var nextID = 0

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// Resumes once `condition` holds (checked on the loop after each `changed()`), or with
    /// the condition's value at the timeout.
    func wait(timeout: Double = transportTestTimeout, until condition: @escaping @Sendable () -> Bool) async -> Bool {
        await withCheckedContinuation { continuation in
            loop.execute { [self] in
                if condition() {
                    continuation.resume(returning: true)
                    return
                }
                let id = nextID
                nextID += 1
                waiters.append(Waiter(id: id, condition: condition, continuation: continuation))
                loop.schedule(afterMilliseconds: Int(timeout * 1000)) { [self] in
                    guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
                    waiters.remove(at: index)
                    continuation.resume(returning: condition())
                }
            }
        }
    }

    /// Call on the loop after the state changed.
    func changed() {
        waiters.removeAll { waiter in
            guard waiter.condition() else { return false }
            waiter.continuation.resume(returning: true)
            return true
        }
    }
}

/// Records what one connection reports, for tests to wait on without sleeping.
/// Mutated only on the connection's loop; read through `wait(until:)` or `onLoop`.
final class SocketEndpoint: @unchecked Sendable {
    struct Read {
        /// Offset of the read's first byte in the stream.
        let offset: Int
        let count: Int
        let fds: [Int32]
    }

    let connection: UnixStreamConnection
    var received: [UInt8] = []
    var reads: [Read] = []
    var closeReasons: [ConnectionCloseReason] = []
    private let conditions: LoopConditions

    init(_ connection: UnixStreamConnection) {
        self.connection = connection
        conditions = LoopConditions(loop: connection.loop)
        connection.onRead = { [self] bytes, fds in
            reads.append(Read(offset: received.count, count: bytes.count, fds: fds))
            received.append(contentsOf: bytes)
            conditions.changed()
        }
        connection.onClose = { [self] reason in
            closeReasons.append(reason)
            conditions.changed()
        }
    }

    var loop: EventLoop { connection.loop }
    var receivedFDs: [Int32] { reads.flatMap(\.fds) }

    /// Runs `body` on the connection's loop, suspending (not blocking) the test meanwhile.
    func onLoop<Result: Sendable>(_ body: @escaping @Sendable (SocketEndpoint) -> Result) async -> Result {
        await runOnLoop(loop) { body(self) }
    }

    func wait(timeout: Double = transportTestTimeout, until condition: @escaping @Sendable (SocketEndpoint) -> Bool) async -> Bool {
        await conditions.wait(timeout: timeout) { condition(self) }
    }

    func start() async { await onLoop { $0.connection.start() } }

    @discardableResult
    func send(_ bytes: [UInt8], fds: [Int32] = []) async -> Bool {
        await onLoop { $0.connection.send(bytes, fds: fds) }
    }

    func close() async { await onLoop { $0.connection.close() } }
}

/// Runs `body` on `loop` and resumes with its result.
///
/// The test suspends meanwhile instead of blocking (no `runAndWait`, no semaphores): with
/// 2 cores a blocked test thread is one of the few threads Swift's cooperative pool has,
/// and the pool does not add more.
func runOnLoop<Result: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> Result) async -> Result {
    await withCheckedContinuation { continuation in
        loop.execute { continuation.resume(returning: body()) }
    }
}

/// A listener plus the server-side endpoints it accepted, on `serverLoop`.
final class SocketTestServer: @unchecked Sendable {
    let directory = SocketTestDirectory()
    let path: String
    let serverLoop: EventLoop
    let maxQueuedBytes: Int
    private var listener: UnixSocketListener?
    private var accepted: [SocketEndpoint] = []
    private let conditions: LoopConditions

    init(serverLoop: EventLoop, maxQueuedBytes: Int = 1 << 20) throws {
        self.serverLoop = serverLoop
        self.maxQueuedBytes = maxQueuedBytes
        conditions = LoopConditions(loop: serverLoop)
        path = directory.file("qmp.sock")
        try serverLoop.runAndWait { [self] () throws(SystemCallError) in
            listener = try UnixSocketListener(path: path, mode: 0o660, loop: serverLoop) { [self] fd in
                let endpoint = SocketEndpoint(UnixStreamConnection(adopting: fd, loop: serverLoop, maxQueuedBytes: maxQueuedBytes))
                endpoint.connection.start()
                accepted.append(endpoint)
                conditions.changed()
            }
        }
    }

    /// Connects a client on `clientLoop` and returns it with its accepted server side.
    func connectPair(clientLoop: EventLoop, clientMaxQueuedBytes: Int = 1 << 20, startClient: Bool = true) async throws -> (client: SocketEndpoint, server: SocketEndpoint) {
        let client = SocketEndpoint(try UnixStreamConnection.connect(toPath: path, loop: clientLoop, maxQueuedBytes: clientMaxQueuedBytes))
        if startClient { await client.start() }
        guard await conditions.wait(until: { [self] in !accepted.isEmpty }) else {
            throw TransportTestFailure("the listener accepted nothing")
        }
        let server = await runOnLoop(serverLoop) { [self] in accepted.removeFirst() }
        return (client, server)
    }

    /// Closes the listener and the accepted connections, then removes the directory; does not
    /// wait, so that it can run from `defer`.
    func shutDown() {
        serverLoop.execute { [self] in
            listener?.close()
            listener = nil
            for endpoint in accepted { endpoint.connection.close() }
            accepted = []
            directory.remove()
        }
    }
}

struct TransportTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A pipe whose read end does not block, to check a passed write end works and to see EOF
/// once every copy of the write end is closed (which proves no copy leaked).
struct DescriptorTestPipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "pipe: \(SystemCallError.reason(forErrno: errno))")
        readEnd = ends[0]
        writeEnd = ends[1]
        _ = fcntl(readEnd, F_SETFL, O_NONBLOCK)
        // Keep the ends out of any process another test might spawn, or EOF checks would hang on it.
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
    }

    func closeReadEnd() { _ = Glibc.close(readEnd) }

    /// Reads what is there: bytes, `[]` at EOF, nil when empty but still open somewhere.
    func readAvailable() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
        return count < 0 ? nil : Array(buffer[..<count])
    }
}

/// Bytes whose value depends on their position, so reordering or loss shows up in a compare.
func patternBytes(count: Int, seed: Int = 0) -> [UInt8] {
    // A plain loop: a `map` over millions of elements is slow in debug builds.
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        for index in 0..<count {
            buffer[index] = UInt8(truncatingIfNeeded: (index &* 31) ^ (index >> 9) ^ seed)
        }
        initialized = count
    }
}

func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
}

/// A loop of the test's own: tests that hold a loop (`LoopHold`) must never share it with
/// another test, or two holds could wait on each other. Its thread idles once the test ends.
func testLoop(_ label: String) -> EventLoop {
    EventLoop(name: label)
}

/// Keeps a loop busy until `release()`: what is sent meanwhile stays pending for it.
final class LoopHold: Sendable {
    private let released = Mutex(false)

    init(_ loop: EventLoop) {
        loop.execute { [self] in
            while !released.withLock({ $0 }) { usleep(1000) }
        }
    }

    func release() { released.withLock { $0 = true } }
}

/// A listener made and closed on its loop, for tests that drive it from outside.
struct TestListener: Sendable {
    let bound: LoopBound<UnixSocketListener>

    init(path: String, mode: UInt32, loop: EventLoop, onAccept: @escaping @Sendable (Int32) -> Void) throws(SystemCallError) {
        bound = try loop.runAndWait { () throws(SystemCallError) in
            LoopBound(try UnixSocketListener(path: path, mode: mode, loop: loop, onAccept: onAccept), loop: loop)
        }
    }

    func close() {
        bound.loop.runAndWait { [bound] in bound.value.close() }
    }
}
