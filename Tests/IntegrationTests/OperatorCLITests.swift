import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing
import VFIOWatch

/// `qmp-broker events` and `qmp-broker cmd` as an operator runs them, against a broker
/// in front of a real QEMU, the VM looked up by name in --socket-dir.
@Suite(.serialized) struct OperatorCLITests {
    @Test func cmdAndEventsByVMName() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let broker = try BrokerProcess(arguments: ["run", "--socket-dir", directory.path, "--vm", "vm1=\(qemu.qmpSocket)"],
                                       logPath: directory.file("broker.log"))
        let ready = try QMPClient(path: directory.file("vm1.qmp"))
        try ready.negotiate()

        let status = try BrokerCLI.run(["cmd", "--socket-dir", directory.path, "vm1", #"{"execute":"query-status"}"#],
                                       in: directory)
        #expect(status.exitCode == 0)
        #expect(try JSON.parse(status.output)["return"]?["status"]?.string == "prelaunch", "\(status.output)")
        let pretty = try BrokerCLI.run(["cmd", "--socket-dir", directory.path, "--pretty", "vm1",
                                        #"{"execute":"query-status"}"#], in: directory)
        #expect(pretty.output.contains("\n  \"return\": {"), "\(pretty.output)")
        let hmp = try BrokerCLI.run(["cmd", "--socket-dir", directory.path, "--hmp", "vm1", "info status"], in: directory)
        #expect(hmp.output == "VM status: paused (prelaunch)\n", "\(hmp.output)")
        let refused = try BrokerCLI.run(["cmd", "--socket-dir", directory.path, "vm1", #"{"execute":"no-such"}"#], in: directory)
        #expect(refused.exitCode == 1 && refused.output.contains("error: CommandNotFound: The command no-such has not been found"))

        // Only RESUME, with a full UTC timestamp; the STOP before it is filtered out.
        let log = directory.file("events.out")
        let events = try ChildProcess([BrokerProcess.binary, "events", "--socket-dir", directory.path, "--event", "RESUME",
                                       "--count", "1", "vm1"], outputPath: log)
        usleep(300_000)  // let it negotiate; a missed RESUME fails the count below, not silently
        _ = try ready.execute("cont")
        _ = try ready.execute("stop")
        _ = try ready.execute("cont")
        #expect(events.wait(timeout: 20) == 0)
        let line = PathReader.read(log) ?? ""
        #expect(line.split(separator: "\n").count == 1 && line.contains("Z RESUME"), "\(line)")
        #expect(line.dropFirst(26).hasPrefix("Z RESUME") && line.prefix(4).allSatisfy(\.isNumber), "\(line)")

        let quiet = try BrokerCLI.run(["events", "--socket-dir", directory.path, "--event", "NEVER", "--timeout", "0.5", "vm1"],
                                      in: directory)
        #expect(quiet.exitCode == 0 && quiet.output.isEmpty)

        let waiting = try ChildProcess([BrokerProcess.binary, "events", directory.file("vm1.qmp")],
                                       outputPath: directory.file("gone.out"))
        // Killed only once it is connected: a loaded machine starts it slowly.
        let deadline = Deadline(after: 10)
        while !deadline.passed,
              try ready.execute("query-broker")["return"]?["vms"]?[0]?["clients"]?.integer != 2 { usleep(20_000) }
        broker.process.kill(signal: SIGTERM)
        let exit = try #require(waiting.wait(timeout: 20))
        #expect((exit >> 8) & 0xff == 1, "\(directory.read("gone.out"))")
        #expect(directory.read("gone.out").contains("was closed"))
        _ = qemu
    }
}
