import ArgumentParser
import RecoveryDrill
import Glibc
import QMPBroker
import QMPWire
import UnixSignals

/// `qmp-broker demo`: the embedded drill against a real QEMU (see `RecoveryDemo`).
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a real QEMU, drill host errors, a guest link reset and host recovery, print the timeline.")

    @Flag(help: "Print the raw events as JSON lines instead of the timeline.")
    var json = false

    func run() throws {
        let demo = RecoveryDemo(options: .init(json: json, colour: isatty(1) != 0 && !json))
        // Ctrl-C: QEMU runs in its own process group, so clean up before leaving.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let cleanUp = Task {
            for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) {
                demo.cleanUp()
                Glibc.exit(130)
            }
        }
        let passed = try demo.run { line in
            print(line)
            fflush(nil)
        }
        cleanUp.cancel()
        if !passed { throw ExitCode(1) }
    }
}
