import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Real third-party QMP clients against the broker: python `qemu.qmp` and `socat`.
@Suite(.serialized) struct ThirdPartyClientTests {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let broker: BrokerInstance

    init() throws {
        qemu = try QEMUInstance(in: directory)
        broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory)
    }

    static var compatScript: String {
        let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        let root = parts[..<parts.lastIndex(of: "Tests")!].joined(separator: "/")
        return "\(root)/Tests/Compat/qemu_qmp_client.py"
    }

    @Test func pythonQEMUQMPClientRunsCommandsAndReceivesEvents() throws {
        let output = directory.file("python.out")
        let python = try ChildProcess(["python3", Self.compatScript, broker.socketPath, "--expect-event", "STOP",
                                       "--fd-command"], outputPath: output)
        // Trigger the event once the client listens.
        let deadline = Deadline(after: 30)
        while !directory.read("python.out").contains("READY") {
            guard !deadline.passed, python.isRunning else { break }
            usleep(20_000)
        }
        let trigger = try broker.client()
        _ = try trigger.execute("cont")
        _ = try trigger.execute("stop")
        let status = python.wait(timeout: 30)
        let text = directory.read("python.out")
        #expect(status == 0, "qemu.qmp client output: \(text)")
        let result = try JSON.parse(String(text.split(separator: "\n").last ?? ""))
        #expect(result["status"]?["status"]?.string == "prelaunch")
        #expect(result["event"]?.string == "STOP")
        #expect(result["event_has_timestamp"]?.bool == true)
        #expect(result["getfd"]?.string == "ok")
        #expect(result["unknown_command_error"]?.string?.contains("no-such-command") == true)
    }

    @Test func socatWithSingleQuotedInput() throws {
        directory.write("socat.in", "{'execute':'qmp_capabilities'}\n{'execute':'query-status'}\n{'execute':'query-name'}\n")
        let output = directory.file("socat.out")
        let socat = try ChildProcess(["socat", "-t", "5", "-", "UNIX-CONNECT:\(broker.socketPath)"],
                                     outputPath: output, inputPath: directory.file("socat.in"))
        #expect(socat.wait(timeout: 20) == 0)
        // The broker's own events (BROKER_VMM_CONNECTED) may come in between: QMP allows events anywhere.
        let lines = directory.read("socat.out").split(separator: "\r\n").map(String.init)
            .filter { !$0.contains(#""event": "#) }
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.first?.hasPrefix(#"{"QMP": "#) == true)
        #expect(lines.dropFirst().first == #"{"return": {}}"#)
        #expect(lines.dropFirst(2).first == #"{"return": {"status": "prelaunch", "singlestep": false, "running": false}}"#)
        #expect(lines.dropFirst(3).first == #"{"return": {}}"#)
    }
}
