import BrokerTesting
import Dispatch
import Glibc
import QMPBroker
import Testing

/// A VMM that hangs, sends garbage or half a greeting, or never answers a command: the
/// broker gives up on it in bounded time, retries with a backoff that grows, greets
/// clients only from a live VMM, and answers every command.
@Suite(.serialized) struct UpstreamTimeoutTests {
    let directory = TemporaryDirectory.forTest()

    /// What QEMU will not do: accept and say nothing, send half a greeting or garbage,
    /// leave `qmp_capabilities` unanswered.
    enum Fault: Sendable, CaseIterable {
        case silent, truncatedGreeting, unansweredCapabilities, garbage

        var script: VMMScript {
            var script = VMMScript()
            switch self {
            case .silent: script.greeting = nil
            case .truncatedGreeting: script.greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "#
            case .unansweredCapabilities: script.replies["qmp_capabilities"] = .held
            case .garbage: script.greeting = "{\"hello\": \"not a greeting\"}\r\n"
            }
            return script
        }
    }

    func broker(_ vmm: ScriptedVMM, commandTimeout: Int = 60_000) throws -> BrokerInstance {
        try BrokerInstance(upstream: vmm.path ?? "", in: directory) {
            $0.handshakeTimeoutMilliseconds = 300
            $0.commandTimeoutMilliseconds = commandTimeout
            $0.traceLogPath = nil
        }
    }

    /// Each faulty handshake is dropped (by the timer for the silent and truncated ones),
    /// and a client that connects meanwhile gets nothing until a real greeting exists;
    /// then it is greeted, negotiates and its commands flow.
    @Test(arguments: Fault.allCases)
    func faultyHandshakeIsDroppedAndRetriedThenAttaches(fault: Fault) throws {
        let vmm = try ScriptedVMMGroup.shared.listen(at: directory.file("faulty-\(fault).qmp"), script: fault.script)
        defer { vmm.close() }
        let broker = try broker(vmm)
        let early = try QMPClient(path: broker.socketPath, readGreeting: false)
        #expect(try early.readMessage(timeout: 1.5) == nil, "no bytes while the VMM has not greeted")
        #expect(vmm.connections >= 2, "the first attempt was given up and retried")
        vmm.updateScript { $0 = VMMScript() }
        let greeting = try #require(try early.readMessage(timeout: 10))
        #expect(greeting.serialized() == Array(VMMScript.qemu72Greeting.utf8))
        try early.negotiate()
        #expect(try early.execute("query-status")["return"] != nil)
    }

    /// A VMM that answers with something that is not a greeting is retried with a growing
    /// backoff (50, 100, 200, 400, 800, 1000 ms…): its first 7 attempts span at least the
    /// sum of those waits, 2.55 s, where a fixed 50 ms retry takes 0.3 s. (A loaded machine
    /// can only make them slower; the cap is checked in `UpstreamSessionTimingTests`.)
    @Test func garbageHandshakesBackOff() throws {
        let vmm = try ScriptedVMMGroup.shared.listen(at: directory.file("garbage.qmp"), script: Fault.garbage.script)
        defer { vmm.close() }
        let started = DispatchTime.now().uptimeNanoseconds
        let broker = try broker(vmm)
        let bound = Deadline(after: 30)
        while vmm.connections < 7 && !bound.passed { usleep(10_000) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        #expect(vmm.connections >= 7)
        #expect(elapsed >= 2.5, "7 attempts in \(elapsed) s")
        withExtendedLifetime(broker) {}
    }

    /// A command the VMM never answers gets a GenericError with the client's id; the late
    /// reply is dropped, and the session goes on.
    @Test func unansweredCommandTimesOutAndItsLateReplyIsDropped() throws {
        let vmm = try ScriptedVMMGroup.shared.listen(at: directory.file("hang.qmp"), script: VMMScript(replies: ["x-hang": .held]))
        defer { vmm.close() }
        let broker = try broker(vmm, commandTimeout: 500)
        let client = try broker.client()
        let reply = try client.execute("x-hang", id: .object(["mine": .integer(1)]))
        #expect(reply.description
            == #"{"id": {"mine": 1}, "error": {"class": "GenericError", "desc": "VMM 'vm1' did not reply within 500 ms"}}"#)
        vmm.answerHeld()
        #expect(try client.execute("query-status", id: .string("next"))["id"]?.string == "next")
        #expect(try client.readMessage(timeout: 0.3) == nil, "the late reply never reached the client")
    }
}
