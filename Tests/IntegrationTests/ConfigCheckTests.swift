import BrokerTesting
import Glibc
import QMPBroker
import Testing
import VFIOWatch

/// A config mistake stops the broker before it serves anything, with every problem named
/// (`run` and `check-config` through the built binary, checked by message text).
@Suite struct ConfigCheckTests {
    static let badConfig = """
        socket-dir = "SOCKETS"
        sysfs-poll-ms = "fast"
        allow_inject = true

        [[vm]]
        name = "vm1"
        qmp = "SOCKETS/vm1.qemu"
        allowed-uids = [-1, 4294967296, 107]

        [[vm.device]]
        id = "hostdev0"
        host = "3b:00"
        polcy = "stop"
        policy = "halt"

        [[vm.device]]
        id = "hostdev1"
        host = "0000:3b:00.1"
        error-trigger = "magic"

        [[vm]]
        name = "vm2"
        qmp = "SOCKETS/vm2.qemu"
        [[vm.device]]
        id = "gpu"
        host = "0000:3b:00.1"
        """

    static func expectedProblems(_ file: String) -> [String] { ["\(file): 9 problems, the broker will not start:"] + problems }

    static let problems = [
        "  - top level: unknown key `allow_inject`: did you mean `allow-inject`?",
        "  - top level: key `sysfs-poll-ms` expects an integer, got the string \"fast\"",
        "  - [[vm.device]] 'hostdev0' of [[vm]] 'vm1': unknown key `polcy`: did you mean `policy`?",
        "  - [[vm]] 'vm1': `allowed-uids` must be in 0...4294967294, got -1",
        "  - [[vm]] 'vm1': `allowed-uids` must be in 0...4294967294, got 4294967296",
        "  - [[vm.device]] 'hostdev0' of [[vm]] 'vm1': `host` must be a PCI address like 0000:3b:00.0, got \"3b:00\"",
        "  - [[vm.device]] 'hostdev0' of [[vm]] 'vm1': unknown policy \"halt\"; expected one of report, forward, stop",
        "  - [[vm.device]] 'hostdev1' of [[vm]] 'vm1': unknown error-trigger \"magic\"; expected one of takeover, eventfd, none",
        "  - [[vm.device]] 'gpu' of [[vm]] 'vm2': host 0000:3b:00.1 is already claimed by VM 'vm1' device 'hostdev1'",
    ]

    private func write(_ text: String, as name: String, in directory: TemporaryDirectory) -> String {
        directory.write(name, text.replacingOccurrences(of: "SOCKETS", with: directory.file("sockets")))
        return name
    }

    @Test func runRefusesToStartAndListsEveryProblem() throws {
        let directory = TemporaryDirectory.forTest()
        let file = directory.file(write(Self.badConfig, as: "bad.toml", in: directory))
        let result = try BrokerCLI.run(["run", "--config", file], in: directory)
        #expect(result.exitCode == 78)
        #expect(result.output.split(separator: "\n").map(String.init) == Self.expectedProblems(file))
        #expect(!result.output.contains("Fatal error"))  // a config mistake is a message, not a runtime trap
        #expect(access(directory.file("sockets/vm1.qmp"), F_OK) != 0)
    }

    @Test func checkConfigPrintsTheSameAndFails() throws {
        let directory = TemporaryDirectory.forTest()
        let file = directory.file(write(Self.badConfig, as: "bad.toml", in: directory))
        let result = try BrokerCLI.run(["check-config", file], in: directory)
        #expect(result.exitCode == 1)
        #expect(result.output.split(separator: "\n").map(String.init) == Self.expectedProblems(file))
    }

    @Test func checkConfigChecksTheHostWithoutQEMU() throws {
        let directory = TemporaryDirectory.forTest()
        directory.write("not-a-socket", "")
        let path = write("""
            socket-dir = "SOCKETS"
            state-dir = "\(directory.file("not-a-socket"))"
            [[vm]]
            name = "vm1"
            qmp = "\(directory.file("not-a-socket"))"
            allowed-uids = [4000000000]
            """, as: "host.toml", in: directory)
        let result = try BrokerCLI.run(["check-config", directory.file(path)], in: directory)
        #expect(result.exitCode == 1)
        #expect(result.output.contains("warning: socket-dir \(directory.file("sockets")) does not exist: it will be created"))
        #expect(result.output.contains("warning: VM 'vm1': allowed uid 4000000000 is not in this host's passwd"))
        #expect(result.output.contains("  - state-dir \(directory.file("not-a-socket")) exists but is not a directory"))
        #expect(result.output.contains("  - VM 'vm1': qmp \(directory.file("not-a-socket")) exists but is not a socket"))
    }

    @Test func aGoodConfigPasses() throws {
        let directory = TemporaryDirectory.forTest()
        let path = write("""
            socket-dir = "SOCKETS"
            state-dir = "\(directory.path)"
            [[vm]]
            name = "vm1"
            qmp = "SOCKETS/vm1.qemu"
            [[vm.device]]
            id = "hostdev0"
            host = "0000:3b:00.0"
            policy = "stop"
            error-trigger = "eventfd"
            """, as: "good.toml", in: directory)
        let result = try BrokerCLI.run(["check-config", directory.file(path)], in: directory)
        #expect(result.exitCode == 0)
        #expect(result.output.hasSuffix("good.toml: OK, 1 VM(s), 1 device(s)\n"))
    }

    @Test func aSyntaxErrorNamesItsLine() throws {
        let directory = TemporaryDirectory.forTest()
        let path = write("socket-dir = \"x\"\nvm = [1,\n", as: "syntax.toml", in: directory)
        let result = try BrokerCLI.run(["check-config", directory.file(path)], in: directory)
        #expect(result.exitCode == 1)
        #expect(result.output.contains("syntax.toml: 1 problem, the broker will not start:\n  - line 2, column"))
    }

    @Test func runCreatesTheSocketDirectoryAndWarnsWithoutStateDir() throws {
        let directory = TemporaryDirectory.forTest()
        let sockets = directory.file("a/b/sockets")
        let broker = try BrokerProcess(arguments: ["run", "--socket-dir", sockets, "--vm", "vm1=\(directory.file("none.qmp"))"],
                                       logPath: directory.file("broker.log"))
        let deadline = Deadline(after: 20)
        while access("\(sockets)/vm1.qmp", F_OK) != 0 && !deadline.passed { usleep(20_000) }
        #expect(access("\(sockets)/vm1.qmp", F_OK) == 0)
        #expect(directory.read("broker.log").contains("no --state-dir: link-error flags and error history live in memory only"))
        // A wrong VMM socket path is plain to see (once, not at every retry).
        let logged = Deadline(after: 10)
        while !directory.read("broker.log").contains("cannot connect to the VMM's QMP socket") && !logged.passed { usleep(20_000) }
        usleep(300_000)
        let log = directory.read("broker.log")
        #expect(log.components(separatedBy: "cannot connect to the VMM's QMP socket").count == 2, "\(log)")
        #expect(log.contains("error=No such file or directory"), "\(log)")
        broker.kill()
    }

    /// The operations guide's example config is what an operator copies first: it must be accepted.
    @Test func theDocumentedExampleConfigIsAccepted() throws {
        let directory = TemporaryDirectory.forTest()
        let readme = PathReader.read("/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/") + "/docs/operations.md") ?? ""
        let start = try #require(readme.range(of: "```toml\n"))
        let end = try #require(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let file = directory.file(write(String(readme[start.upperBound..<end.lowerBound]), as: "readme.toml", in: directory))
        let result = try BrokerCLI.run(["check-config", file], in: directory)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("OK, 1 VM(s), 1 device(s)"), "\(result.output)")
    }

    @Test func runHelpListsTheConfigKeys() throws {
        let directory = TemporaryDirectory.forTest()
        let result = try BrokerCLI.run(["run", "--help"], in: directory)
        #expect(result.exitCode == 0)
        #expect(result.output.contains("    policy (default: forward)\n        What errors do: report | forward | stop."))
        #expect(result.output.contains("    error-trigger (default: takeover for vfio-pci, else eventfd)"))
    }
}
