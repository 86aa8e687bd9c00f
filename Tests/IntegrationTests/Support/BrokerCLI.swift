import BrokerTesting
import Glibc
import QMPBroker
import VFIOWatch

/// One run of the built `qmp-broker` binary to its end, as an operator's shell would.
struct BrokerCLI {
    let exitCode: Int32
    let output: String

    struct DidNotFinish: Error {
        let arguments: [String]
    }

    /// Runs `qmp-broker ARGUMENTS...` with stdout and stderr in one file of `directory`.
    static func run(_ arguments: [String], in directory: TemporaryDirectory, timeout: Double = 60) throws -> BrokerCLI {
        let log = directory.file("cli-\(UInt32.random(in: 0...UInt32.max)).out")
        let process = try ChildProcess([BrokerProcess.binary] + arguments, outputPath: log)
        guard let status = process.wait(timeout: timeout) else {
            process.kill(signal: SIGKILL)
            throw DidNotFinish(arguments: arguments)
        }
        let exitCode = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return BrokerCLI(exitCode: exitCode, output: PathReader.read(log) ?? "")
    }
}
