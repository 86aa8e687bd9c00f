import BrokerTesting
import Glibc
import Testing

/// The four mistakes of issue 20 that used to start a broker protecting less than its
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
}
