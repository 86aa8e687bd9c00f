import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// A client must not be able to tell the broker from QEMU: every answer here is compared
/// byte for byte with what the same QEMU says on a second, direct monitor.
@Suite(.serialized) struct QMPCompatibilityTests {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let broker: BrokerInstance

    init() throws {
        qemu = try QEMUInstance(in: directory, directMonitor: true)
        broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory)
    }

    /// Raw bytes of everything a fresh connection says within `quiet` seconds of sending `input`.
    func rawExchange(_ path: String, _ input: String, negotiate: Bool = false) throws -> (greeting: String, replies: String) {
        try rawExchange(path, Array(input.utf8), negotiate: negotiate)
    }

    func rawExchange(_ path: String, _ input: [UInt8], negotiate: Bool = false) throws -> (greeting: String, replies: String) {
        let client = try QMPClient(path: path, readGreeting: false)
        let greeting = try readLine(client.fd)
        if negotiate {
            try client.send(#"{"execute":"qmp_capabilities"}"#)
            _ = try readLine(client.fd)
        }
        try client.send(input)
        return (greeting, input.isEmpty ? "" : try readAvailable(client.fd, quiet: 0.3))
    }

    @Test func greetingIsQEMUsOwn() throws {
        let direct = try rawExchange(qemu.directSocket!, "").greeting
        let viaBroker = try rawExchange(broker.socketPath, "").greeting
        #expect(viaBroker == direct)
        #expect(direct.hasPrefix(#"{"QMP": {"version": {"qemu": "#))
        #expect(direct.hasSuffix("\r\n"))
    }

    @Test(arguments: [
        #"{"execute":"query-status"}"#,
        #"{"execute":"query-status","id":{"a":[1,2]}}"#,
        #"{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}"#,
        #"{"execute":"qmp_capabilities","arguments":{"enable":[5]}}"#,
        #"{"execute":"qmp_capabilities","arguments":{"foo":1}}"#,
        #"{"exec-oob":"qmp_capabilities","id":1}"#,
        "[1, 2]",
        #"{"execute":"qmp_capabilities","execute":"x"}"#,
    ])
    func beforeNegotiationAnswersLikeQEMU(input: String) throws {
        let direct = try rawExchange(qemu.directSocket!, input).replies
        let viaBroker = try rawExchange(broker.socketPath, input).replies
        #expect(!direct.isEmpty)
        #expect(viaBroker == direct, "input: \(input)")
    }

    @Test(arguments: [
        #"{"execute":"qmp_capabilities","id":7}"#,
        #"{"execute":"no-such-command","id":"x"}"#,
        #"{"execute":"query-status","arguments":{"x":1},"id":[null,true,1.5,"s",{"k":{}}]}"#,
        #"{"execute":5}"#,
        #"{"id":3}"#,
        #"{"execute":"query-status","arguments":[]}"#,
        #"{"exec-oob":"query-status","id":1}"#,
        "{'execute':'query-name','id':'single'}",
        "garbage{\"execute\":\"query-name\",\"id\":2}",
        "\u{01}{\"execute\":\"query-name\",\"id\":3}",
        #"{"execute":"query-name","id":"\u00e9\ud83d\ude00\t"}"#,
        "]{\"execute\":\"query-name\",\"id\":4}",
        #"{"execute":"query-name","id":9007199254740993}"#,
        #"{"execute":"query-name","id":-0.0}"#,
        #"{"execute":"query-name","id":{"b":1,"a":{"z":2,"y":[{"q":1,"p":2}]},"c":"\u007f"}}"#,
        #"{"execute":"query-name","id":0.1}"#,
        "{\"execute\": }}}} nonsense ' \u{7f}\n{\"execute\":\"query-name\",\"id\":\"after\"}",
        #"{"execute":"human-monitor-command","arguments":{"command-line":"info version"},"id":1}"#,
    ])
    func inCommandModeAnswersLikeQEMU(input: String) throws {
        let direct = try rawExchange(qemu.directSocket!, input, negotiate: true).replies
        let viaBroker = try rawExchange(broker.socketPath, input, negotiate: true).replies
        #expect(!direct.isEmpty)
        #expect(viaBroker == direct, "input: \(input)")
    }

    /// A NUL in a member name, escaped or as the overlong C0 80: QEMU names the whole member.
    @Test(arguments: [
        Array(#"{"execute":"query-status","a\u0000b":1}"#.utf8),
        Array(#"{"a\u0000b":1,"id":1}"#.utf8),
        Array(#"{"execute":"query-status",""#.utf8) + [0xC0, 0x80] + Array(#"":1}"#.utf8),
        Array(#"{"execute":"query-status","arguments":{"a\u0000b":1}}"#.utf8),
        Array(#"{"execute":"qu\u0000ery","id":{"k\u0000":2,"a":1,"k":3}}"#.utf8),
    ])
    func memberNamesWithNULAnswerLikeQEMU(input: [UInt8]) throws {
        let direct = try rawExchange(qemu.directSocket!, input, negotiate: true).replies
        let viaBroker = try rawExchange(broker.socketPath, input, negotiate: true).replies
        #expect(direct.contains("\\u0000"))
        #expect(viaBroker == direct)
    }

    @Test func connectionStaysUsableAfterGarbage() throws {
        let client = try broker.client()
        try client.send("{\"execute\": }}}} nonsense ' \u{7f}\n")
        try client.send(#"{"execute":"query-status","id":"after"}"#)
        var errors = 0
        while true {
            let reply = try client.nextReply(timeout: 5)
            if reply["id"]?.string == "after" {
                #expect(reply["return"]?["status"]?.string == "prelaunch")
                break
            }
            #expect(reply["error"]?["desc"]?.string?.hasPrefix("JSON parse error") == true)
            errors += 1
        }
        #expect(errors == 6)  // as QEMU 7.2 answers this input (see the differential case above)
    }
}

/// Reads one line (through `\n`) from a blocking socket, bounded by poll.
func readLine(_ fd: Int32, timeout: Double = 10) throws -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    let deadline = Deadline(after: timeout)
    while bytes.last != 0x0A {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(deadline.remaining * 1000)) > 0, read(fd, &byte, 1) == 1 else {
            throw QMPClient.Failure("no line within \(timeout) s (got \(String(decoding: bytes, as: UTF8.self)))")
        }
        bytes.append(byte)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Everything that arrives until the socket has been quiet for `quiet` seconds, once the
/// first bytes came (waited for up to `first` seconds: a loaded or sanitized run can take
/// longer than `quiet` to answer at all).
func readAvailable(_ fd: Int32, quiet: Double, first: Double = 10) throws -> String {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32((bytes.isEmpty ? first : quiet) * 1000)) > 0 else { break }
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
