import EventLoop
import Glibc
import Testing
@testable import QMPBroker

/// Collects what a listener accepts, on its event loop.
final class AcceptedDescriptors: @unchecked Sendable {
    let loop = testLoop("test.listener")
    private(set) var fds: [Int32] = []
    // Not lazy: the listener's loop and the test would race to create it (ThreadSanitizer).
    private let conditions: LoopConditions

    init() { conditions = LoopConditions(loop: loop) }

    func record(_ fd: Int32) {
        fds.append(fd)
        conditions.changed()
    }

    func wait(count: Int) async -> [Int32]? {
        guard await conditions.wait(until: { [self] in fds.count >= count }) else { return nil }
        return await runOnLoop(loop) { [self] in fds }
    }
}

private func fileStatus(_ path: String) -> stat? {
    var status = stat()
    return lstat(path, &status) == 0 ? status : nil
}

/// A socket file with nobody listening, as a crashed broker leaves behind.
private func makeStaleSocketFile(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { _ = Glibc.close(fd) }
    let bound = try UnixSocketAddress.with(path) { bind(fd, $0, $1) }
    try #require(bound == 0)
}

/// A blocking connect, to probe a listener from the test.
private func canConnect(to path: String) throws -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { _ = Glibc.close(fd) }
    return try UnixSocketAddress.with(path) { connect(fd, $0, $1) } == 0
}

@Suite("Transport: UnixSocketListener")
struct TransportListenerTests {
    @Test func replacesAStaleSocketFileAndSetsTheMode() async throws {
        let directory = SocketTestDirectory()
        defer { directory.remove() }
        let path = directory.file("qmp.sock")
        try makeStaleSocketFile(at: path)
        try #require(fileStatus(path) != nil)

        let accepted = AcceptedDescriptors()
        let listener = try TestListener(path: path, mode: 0o660, loop: accepted.loop) { accepted.record($0) }
        defer { listener.close() }
        let status = try #require(fileStatus(path))
        #expect(status.st_mode & S_IFMT == S_IFSOCK)
        #expect(status.st_mode & 0o7777 == 0o660)

        #expect(try canConnect(to: path))
        let fd = try #require(await accepted.wait(count: 1)?.first)
        defer { _ = Glibc.close(fd) }
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func refusesToTakeOverALiveSocket() async throws {
        let directory = SocketTestDirectory()
        defer { directory.remove() }
        let path = directory.file("qmp.sock")
        let accepted = AcceptedDescriptors()
        let first = try TestListener(path: path, mode: 0o600, loop: accepted.loop) { accepted.record($0) }
        defer { first.close() }

        #expect {
            _ = try TestListener(path: path, mode: 0o600, loop: accepted.loop) { _ in }
        } throws: { error in
            (error as? SystemCallError)?.errno == EADDRINUSE
        }
        #expect(try canConnect(to: path), "the first listener still serves the path")
        // One accepted connection from the liveness probe, one from canConnect.
        let fds = try #require(await accepted.wait(count: 2))
        for fd in fds { _ = Glibc.close(fd) }
    }

    @Test func closeUnlinksOnlyItsOwnSocketFile() throws {
        let directory = SocketTestDirectory()
        defer { directory.remove() }
        let path = directory.file("qmp.sock")
        let loop = testLoop("test.listener")

        let first = try TestListener(path: path, mode: 0o660, loop: loop) { _ = Glibc.close($0) }
        first.close()
        #expect(fileStatus(path) == nil)

        let replaced = try TestListener(path: path, mode: 0o660, loop: loop) { _ = Glibc.close($0) }
        _ = unlink(path)
        let successor = try TestListener(path: path, mode: 0o660, loop: loop) { _ = Glibc.close($0) }
        replaced.close()
        #expect(fileStatus(path) != nil, "the successor's socket file is not ours to remove")
        successor.close()
        #expect(fileStatus(path) == nil)
    }

    @Test func aPathTooLongForSockaddrFails() {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        #expect {
            _ = try TestListener(path: path, mode: 0o660, loop: testLoop("test")) { _ in }
        } throws: { error in
            (error as? SystemCallError)?.errno == ENAMETOOLONG
        }
    }
}
