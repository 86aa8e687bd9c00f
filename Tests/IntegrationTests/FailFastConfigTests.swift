import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// The four mistakes that used to start a broker protecting less than its
/// command line said: each now stops `run` (exit 78, nothing served) and `check-config`,
/// naming the flag or key. Through the built binary.
@Suite struct FailFastConfigTests {
    private static let config = """
        socket-dir = "SOCKETS"
        [[vm]]
        name = "vm1"
        qmp = "SOCKETS/vm1.qemu"
        [[vm.device]]
        id = "hostdev0"
        host = "0000:3b:00.0"
        """

    private func goodConfig(in directory: TemporaryDirectory) -> String {
        directory.write("broker.toml", Self.config.replacingOccurrences(of: "SOCKETS", with: directory.file("sockets")))
        return directory.file("broker.toml")
    }

    /// `run` refuses with the message, serves nothing; `check-config` prints it and fails.
    private func expectRefused(run: [String], check: [String], saying message: String,
                               in directory: TemporaryDirectory) throws {
        let ran = try BrokerCLI.run(["run"] + run, in: directory)
        #expect(ran.exitCode == 78, "\(ran.output)")
        #expect(ran.output.contains(message), "\(ran.output)")
        #expect(access(directory.file("sockets/vm1.qmp"), F_OK) != 0)
        let checked = try BrokerCLI.run(["check-config"] + check, in: directory)
        #expect(checked.exitCode == 1, "\(checked.output)")
        #expect(checked.output.contains(message), "\(checked.output)")
    }

    @Test func aDirectoryGivenAsConfigIsRefusedWithOrWithoutVM() throws {
        let directory = TemporaryDirectory.forTest()
        let message = "--config \(directory.path): is a directory, not a TOML file"
        try expectRefused(run: ["--config", directory.path, "--vm", "vm1=\(directory.file("sockets/vm1.qemu"))",
                                "--socket-dir", directory.file("sockets")],
                          check: [directory.path], saying: message, in: directory)
        let alone = try BrokerCLI.run(["run", "--config", directory.path], in: directory)
        #expect(alone.exitCode == 78)
        #expect(alone.output.contains(message), "\(alone.output)")
        #expect(!alone.output.contains("missing --socket-dir"), "\(alone.output)")
    }

    @Test func bytesThatAreNotUTF8InAStringValueAreRefused() throws {
        let directory = TemporaryDirectory.forTest()
        let file = goodConfig(in: directory)
        // "vm1" followed by a lone continuation byte and a truncated two-byte sequence.
        var bytes = Array(Self.config.replacingOccurrences(of: "SOCKETS", with: directory.file("sockets")).utf8)
        let name = Array("name = \"vm1".utf8)
        let at = try #require((0...(bytes.count - name.count)).first { Array(bytes[$0..<($0 + name.count)]) == name })
        bytes.insert(contentsOf: [0x80, 0xC3], at: at + name.count)
        let stream = try #require(fopen(file, "w"))
        #expect(fwrite(bytes, 1, bytes.count, stream) == bytes.count)
        fclose(stream)
        try expectRefused(run: ["--config", file], check: [file],
                          saying: "line 3: the value of `name` is not valid UTF-8", in: directory)
    }

    @Test func anEventFDForADeviceThatIsNotConfiguredIsRefused() throws {
        let directory = TemporaryDirectory.forTest()
        let file = goodConfig(in: directory)
        try expectRefused(run: ["--config", file, "--eventfd", "vm1/d/fatal=77"],
                          check: [file, "--eventfd", "vm1/d/fatal=77"],
                          saying: "--eventfd vm1/d/fatal=77: device 'd' is not a [[vm.device]] of VM 'vm1'", in: directory)
    }

    // A high number: the runner's descriptors reach the child only without CLOEXEC, and a low one might.
    @Test func anEventFDNamingAClosedDescriptorIsRefused() throws {
        let directory = TemporaryDirectory.forTest()
        let file = goodConfig(in: directory)
        try expectRefused(run: ["--config", file, "--eventfd", "vm1/hostdev0/fatal=1017"],
                          check: [file, "--eventfd", "vm1/hostdev0/fatal=1017"],
                          saying: "--eventfd vm1/hostdev0/fatal=1017: descriptor 1017 is not open in this process", in: directory)
    }

    /// The descriptors are checked when they are taken, at start: a reload after the device
    /// (and with it the eventfd) is gone is accepted, and the VM is not restarted for it.
    @Test func aReloadDoesNotCheckTheEventFDsTakenAtStartAgain() throws {
        let directory = TemporaryDirectory.forTest()
        let qemu = try QEMUInstance(in: directory)
        directory.write("broker.toml", Self.config.replacingOccurrences(of: "SOCKETS/vm1.qemu", with: qemu.qmpSocket)
            .replacingOccurrences(of: "SOCKETS", with: directory.file("sockets")))
        let eventFD = makeEventFD()
        let broker = try ChildProcess([BrokerProcess.binary, "run", "--config", directory.file("broker.toml"),
                                       "--eventfd", "vm1/hostdev0/any=7"],
                                      outputPath: directory.file("broker.log"), passing: [7: eventFD])
        close(eventFD)
        defer { broker.kill(signal: SIGKILL) }
        let deadline = Deadline(after: 20)
        var client: QMPClient?
        while client == nil && !deadline.passed {
            client = try? QMPClient(path: directory.file("sockets/vm1.qmp"))
            if client == nil { usleep(20_000) }
        }
        let connected = try #require(client, "\(directory.read("broker.log"))")
        try connected.negotiate()
        #expect(try connected.execute("vfio-device-del", arguments: .object(["id": .string("hostdev0")]))["return"] != nil)
        kill(broker.pid, SIGHUP)
        let reloaded = Deadline(after: 20)
        while !directory.read("broker.log").contains("configuration reloaded") && !reloaded.passed { usleep(20_000) }
        let log = directory.read("broker.log")
        #expect(log.contains("configuration reloaded"), "\(log)")
        #expect(!log.contains("reload refused") && !log.contains("restarted"), "\(log)")
        #expect(try connected.execute("query-status")["return"] != nil)  // the same connection
    }
}
