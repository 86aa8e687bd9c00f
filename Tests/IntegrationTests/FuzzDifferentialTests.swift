import BrokerTesting
import Foundation
import Glibc
import QMPBroker
import Testing
import VFIOWatch

/// The fuzzer's differential mode: each input of the corpus is sent to the same QEMU
/// directly and through the broker, and the replies must be the same bytes. The committed
/// seeds run in every suite; `make fuzz-diff` adds the corpus a fuzzing run grew
/// (`QMP_DIFF_CORPUS`, default .build/fuzz/corpus), which libFuzzer's in-process target
/// cannot compare with QEMU itself.
@Suite(.serialized) struct FuzzDifferentialTests {
    /// Inputs whose answers differ by design: the broker's own commands, and inputs that are
    /// QEMU's output rather than a client's (the framer's seeds).
    static let byDesign: Set<String> = ["broker", "event", "greeting", "replies"]

    static let inputs: [String] = {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        var files = fileNames(in: "\(root)/Fuzz/seeds").filter { !byDesign.contains($0) }.map { "\(root)/Fuzz/seeds/\($0)" }
        let extra = getenv("QMP_DIFF_CORPUS").map { String(cString: $0) }
        if let extra { files += fileNames(in: extra).map { "\(extra)/\($0)" } }
        return files.sorted()
    }()

    @Test func theSeedsAreThere() {
        #expect(Self.inputs.count >= 10)
        #expect(Self.brokerCommands.contains("query-broker") && Self.brokerCommands.contains("vfio-device-add"))
    }

    @Test func everyInputIsAnsweredAsQEMUAnswersIt() throws {
        let directory = TemporaryDirectory.forTest()
        let qemu = try QEMUInstance(in: directory, directMonitor: true)
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory)
        var differences: [String] = []
        for path in Self.inputs {
            guard let text = PathReader.read(path) else { continue }
            let input = Array(text.utf8)
            let direct = try Self.replies(qemu.directSocket!, input)
            let viaBroker = try Self.replies(broker.socketPath, input)
            guard direct.count == viaBroker.count else {
                differences.append("\(path): \(direct.count) replies from QEMU, \(viaBroker.count) from the broker")
                continue
            }
            for (qemuLine, brokerLine) in zip(direct, viaBroker) where qemuLine != brokerLine && !Self.isBrokersOwn(qemuLine) {
                differences.append("\(path):\n  QEMU:   \(qemuLine)\n  broker: \(brokerLine)")
            }
        }
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
        withExtendedLifetime((qemu, broker, directory)) {}
    }

    /// The replies of a fresh connection to `input`, one per line, events left out (the
    /// broker numbers them).
    static func replies(_ path: String, _ input: [UInt8]) throws -> [String] {
        let client = try QMPClient(path: path, readGreeting: false)
        _ = try readLine(client.fd)
        try client.send(input)
        return try readAvailable(client.fd, quiet: 0.3).components(separatedBy: "\r\n")
            .filter { !$0.isEmpty && !$0.contains(#""event": "#) }
    }

    /// The commands the broker answers itself (schemas/), which QEMU does not know.
    static let brokerCommands: [String] = {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let schema = PathReader.read("\(root)/schemas/qmp-broker.json") ?? ""
        return schema.components(separatedBy: "'command': '").dropFirst().compactMap { $0.split(separator: "'").first.map(String.init) }
    }()

    /// QEMU's answer to one of the broker's own commands: by design not what the broker says.
    static func isBrokersOwn(_ qemuLine: String) -> Bool {
        brokerCommands.contains { qemuLine.contains("\"The command \($0) has not been found\"") }
    }
}

/// The regular files of a directory, by name; none if it cannot be read.
func fileNames(in directory: String) -> [String] {
    guard let handle = opendir(directory) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if entry.pointee.d_type == UInt8(DT_REG) { names.append(name) }
    }
    return names
}
