import BrokerTesting
import Glibc
import QMPBroker

/// A real qemu-system-x86_64 (q35, TCG, paused) with its QMP socket, plus an optional
/// second QMP monitor for talking to QEMU directly and a qtest socket for guest-side writes.
final class QEMUInstance {
    let directory: TemporaryDirectory
    let qmpSocket: String
    let directSocket: String?
    let process: ChildProcess
    var logPath: String { directory.file("qemu.log") }

    init(in directory: TemporaryDirectory, name: String = "qemu", build: QEMUBuild = .debian7_2,
         directMonitor: Bool = false, configure: (inout QEMUCommandLine) -> Void = { _ in }) throws {
        self.directory = directory
        qmpSocket = directory.file("\(name).qmp")
        directSocket = directMonitor ? directory.file("\(name)-direct.qmp") : nil
        var commandLine = QEMUCommandLine(qmpSocket: qmpSocket)
        commandLine.binary = build.binary
        guard access(build.binary, X_OK) == 0 || !build.binary.hasPrefix("/") else {
            throw QMPClient.Failure("\(build) is not at \(build.binary): run scripts/fetch-qemu10.sh (make test does)")
        }
        if let directSocket { commandLine.extra += ["-qmp", "unix:\(directSocket),server=on,wait=off"] }
        configure(&commandLine)
        unlink(qmpSocket)
        process = try ChildProcess(commandLine.arguments, outputPath: directory.file("qemu.log"))
        try waitForSocket(qmpSocket)
    }

    /// QEMU creates its sockets before it accepts; wait until the file exists (bounded).
    private func waitForSocket(_ path: String) throws {
        let deadline = Deadline(after: 20)
        var info = stat()
        while stat(path, &info) != 0 {
            guard !deadline.passed, process.isRunning else {
                throw QMPClient.Failure("QEMU did not create \(path): \(directory.read("qemu.log"))")
            }
            usleep(5_000)
        }
    }

    /// A client on QEMU's own second monitor, negotiated.
    func directClient() throws -> QMPClient {
        let client = try QMPClient(path: directSocket!)
        try client.negotiate()
        return client
    }

    func kill() {
        process.kill(signal: SIGKILL)
    }

    deinit { process.kill(signal: SIGKILL) }
}
