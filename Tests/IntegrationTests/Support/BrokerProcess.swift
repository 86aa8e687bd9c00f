import BrokerTesting
import Glibc
import QMPBroker

/// The real `qmp-broker run` binary (built by `swift build`), for what only a separate
/// process shows: SIGKILL, restart, the CLI and its config file.
final class BrokerProcess {
    static var binary: String {
        let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        let root = parts[..<parts.lastIndex(of: "Tests")!].joined(separator: "/")
        return getenv("QMP_BROKER_BIN").map { String(cString: $0) } ?? "\(root)/.build/debug/qmp-broker"
    }

    let process: ChildProcess
    let logPath: String

    init(arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        process = try ChildProcess([Self.binary] + arguments, outputPath: logPath, environment: environment)
    }

    func kill() { process.kill(signal: SIGKILL) }

    deinit { process.kill(signal: SIGKILL) }
}
