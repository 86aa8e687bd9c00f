import BrokerTesting
import Glibc
import QMPBroker
import QMPSessions
import QMPWire
import Testing
import VFIOWatch

/// The daemon's log as an operator reads it: millisecond UTC times, plain values, JSON on
/// request, peer credentials of clients, and a quiet normal shutdown.
@Suite(.serialized) struct LogFormatTests {
    func runAndStop(_ format: String, in directory: TemporaryDirectory) throws -> [String] {
        let qemu = try QEMUInstance(in: directory)
        let log = directory.file("broker-\(format).log")
        let broker = try BrokerProcess(
            arguments: ["run", "--socket-dir", directory.path, "--vm", "vm1=\(qemu.qmpSocket)", "--log-format", format],
            logPath: log)
        let client = try QMPClient(path: directory.file("vm1.qmp"))
        try client.negotiate()
        #expect(try client.execute("query-status")["return"] != nil)
        broker.process.kill(signal: SIGTERM)
        #expect(broker.process.wait(timeout: 20) == 0)
        _ = qemu
        return (PathReader.read(log) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func textLinesHaveMillisecondsAndPlainValues() throws {
        let directory = try TemporaryDirectory()
        let lines = try runAndStop("text", in: directory)
        #expect(!lines.isEmpty)
        for line in lines {
            // 2026-12-01T10:47:12.345Z level ...
            let stamp = line.prefix(24)
            #expect(stamp.count == 24 && stamp.hasSuffix("Z") && stamp.dropFirst(19).first == ".", "\(line)")
            #expect(!line.contains("Optional(") && !line.contains("UpstreamLine(") && !line.contains("PeerCredentials("), "\(line)")
        }
        let connected = try #require(lines.first { $0.contains("client connected") })
        #expect(connected.contains(" pid=") && connected.contains(" uid=\(getuid()) ") && connected.contains(" socket=main "),
                "\(connected)")
        #expect(!lines.contains { $0.contains("lost the VMM") }, "\(lines)")
    }

    @Test func jsonLinesAreObjects() throws {
        let directory = try TemporaryDirectory()
        let lines = try runAndStop("json", in: directory)
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try JSON.parse(line)
            #expect(object["time"]?.string?.hasSuffix("Z") == true && object["level"]?.string != nil
                    && object["message"]?.string != nil, "\(line)")
        }
        #expect(lines.contains { (try? JSON.parse($0))?["message"]?.string == "client connected" })
    }
}
