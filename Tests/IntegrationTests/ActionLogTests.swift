import Glibc
import QMPBroker
import Testing

/// The broker's action log lines, read from the built binary's log as an operator would: each
/// action with its cause, at the level its meaning has (fatal error, non-fatal warning,
/// correctable info), who changed a policy or cleared a flag, devices added and removed,
/// clients connected and gone.
@Suite(.serialized) struct ActionLogTests {
    /// The one line with `message` (text format: stamp, level, sorted key=value, message).
    static func line(_ message: String, in log: String) -> (level: Substring, text: Substring)? {
        guard let text = log.split(separator: "\n").first(where: { $0.hasSuffix(" " + message) }) else { return nil }
        let level = text.split(separator: " ", maxSplits: 2).dropFirst().first ?? ""
        return (level, text)
    }

    @Test func everyActionIsLoggedWithItsCause() throws {
        let rig = try CLIBrokerRig()
        let me = "operator uid=\(getuid()) pid=\(getpid())"
        do {  // the first client goes at the end of the scope (its deinit closes it)
            let client = try rig.start()
            #expect(try client.execute("cont")["return"] != nil)
            #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, injectAt: "rp0")["return"] != nil)
            #expect(try client.execute("vfio-device-set-policy", arguments: .object([
                "device": .string("dev0"), "policy": .string("forward"), "auto-cont": .bool(true)]))["return"] != nil)
            for severity in ["correctable", "non-fatal", "fatal"] {
                #expect(try rig.inject(client, "dev0", severity)["return"] != nil)
                #expect(try client.nextEvent("VFIO_PCI_ERROR") != nil)
            }
            try rig.waitForFirmwareToNumberDev0(client)
            try rig.guestLinkReset()
            #expect(try rig.waitUntilPaused(client), "\(rig.log)")
            #expect(try client.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))["return"] != nil)
            #expect(try client.execute("vfio-device-del", arguments: .object(["id": .string("dev0")]))["return"] != nil)
        }
        let probe = try QMPClient(path: rig.socket)
        try probe.negotiate()
        #expect(try probe.execute("query-status")["return"] != nil)
        // The first client's departure is handled on its own (a bounded wait, not a race).
        let deadline = Deadline(after: 10)
        while Self.line("client gone", in: rig.log) == nil && !deadline.passed { usleep(20_000) }
        let log = rig.log

        let added = try #require(Self.line("watching VFIO device", in: log), "\(log)")
        #expect(added.text.contains("device=dev0") && added.text.contains("policy=forward"))
        let policy = try #require(Self.line("policy changed", in: log), "\(log)")
        #expect(policy.text.contains("by=\(me)") && policy.text.contains("from=forward") && policy.text.contains("to=forward+auto-cont"),
                "\(policy.text)")

        let errors = log.split(separator: "\n").filter { $0.hasSuffix(" host AER error") }
        #expect(errors.count == 3, "\(log)")
        for (line, (severity, level)) in zip(errors, [("correctable", "info"), ("non-fatal", "warning"), ("fatal", "error")]) {
            #expect(line.contains("severity=\(severity)") && line.split(separator: " ")[1] == level, "\(line)")
        }
        let flagged = try #require(Self.line("link-error flag set", in: log), "\(log)")
        #expect(flagged.level == "error" && flagged.text.contains("device=dev0") && flagged.text.contains("severity=fatal"))
        let stop = try #require(Self.line("stopping the VM: guest-link-reset of a flagged link", in: log), "\(log)")
        #expect(stop.level == "warning" && stop.text.contains("device=dev0") && stop.text.contains("policy=forward"), "\(stop.text)")
        let cleared = try #require(Self.line("link-error flag cleared", in: log), "\(log)")
        #expect(cleared.text.contains("by=\(me)"), "\(cleared.text)")
        let removed = try #require(Self.line("stopped watching VFIO device", in: log), "\(log)")
        #expect(removed.text.contains("device=dev0"))

        let connected = log.split(separator: "\n").filter { $0.hasSuffix(" client connected") }
        #expect(connected.count == 2 && connected.allSatisfy { $0.contains("uid=\(getuid())") && $0.contains(" pid=") }, "\(connected)")
        #expect(Self.line("client gone", in: log) != nil, "\(log)")
        rig.kill()
    }
}
