import BrokerTesting
import Glibc
import QMPBroker
import VFIOWatch

/// The tiny Debian guest (scripts/build-guest.sh: the distribution kernel and a busybox
/// initramfs) booted under QEMU TCG by scripts/boot-guest.sh, with a second root port
/// `rp1` (00:1d.0) and an e1000e `nic0` below it.
final class GuestMachine {
    static var repository: String {
        let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        return parts[..<parts.lastIndex(of: "Tests")!].joined(separator: "/")
    }

    let directory: TemporaryDirectory
    let qmpSocket: String
    let serialLog: String
    let process: ChildProcess

    /// Builds the guest if the cache lacks it (downloads two Debian packages once).
    static func build() throws {
        let log = "/tmp/qmp-broker-guest-build.log"
        let builder = try ChildProcess(["\(repository)/scripts/build-guest.sh"], outputPath: log)
        guard builder.wait(timeout: 900) == 0 else {
            throw QMPClient.Failure("scripts/build-guest.sh failed: \(tail(of: log))")
        }
    }

    init(in directory: TemporaryDirectory) throws {
        self.directory = directory
        qmpSocket = directory.file("guest.qmp")
        serialLog = directory.file("serial.log")
        process = try ChildProcess(["\(Self.repository)/scripts/boot-guest.sh", "--nic", qmpSocket, serialLog],
                                   outputPath: directory.file("qemu.log"))
    }

    deinit { process.kill(signal: SIGKILL) }

    var serial: String { directory.read("serial.log") }

    /// Waits for the `occurrence`-th line containing `text` on the guest console.
    @discardableResult
    func waitForConsole(_ text: String, occurrence: Int = 1, timeout: Double) throws -> String {
        let deadline = Deadline(after: timeout)
        while !deadline.passed {
            let log = serial
            if log.consoleLines.filter({ $0.contains(text) }).count >= occurrence { return log }
            guard process.isRunning else { break }
            usleep(2_000)  // fine enough to time injection → guest log
        }
        throw QMPClient.Failure("guest console never showed '\(text)' (#\(occurrence)) within \(timeout) s; last lines:\n"
                                + Self.tail(serial))
    }

    func consoleCount(_ text: String) -> Int { serial.consoleLines.filter { $0.contains(text) }.count }

    static func tail(_ text: String, lines: Int = 25) -> String {
        text.consoleLines.suffix(lines).joined(separator: "\n")
    }

    static func tail(of path: String) -> String { tail(PathReader.read(path) ?? "") }
}

extension String {
    /// Console lines: the serial log ends lines with `\r\n`, one Character in Swift.
    var consoleLines: [Substring] { split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) }
}
