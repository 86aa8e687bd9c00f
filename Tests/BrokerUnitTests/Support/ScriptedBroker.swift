import BrokerTesting
import Logging
import QMPBroker

/// The broker in-process in front of one `ScriptedVMM`, driven only through `Broker` and
/// socket paths. Guest link resets are not watched unless a test configures a trace log.
final class ScriptedBroker {
    let directory: TemporaryDirectory
    let vmm: ScriptedVMM
    let broker: Broker
    let configuration: VMConfiguration

    init(script: VMMScript = VMMScript(), configure: (inout VMConfiguration, TemporaryDirectory) -> Void = { _, _ in }) throws {
        directory = try TemporaryDirectory()
        vmm = try ScriptedVMMGroup.shared.listen(at: directory.file("vmm.sock"), script: script)
        var configuration = VMConfiguration(name: "vm1", upstreamPath: directory.file("vmm.sock"),
                                            socketPath: directory.file("vm1.qmp"))
        configuration.traceLogPath = nil
        configure(&configuration, directory)
        self.configuration = configuration
        var logger = Logger(label: "broker-unit-test")
        logger.logLevel = .critical
        broker = try Broker(vms: [configuration], logger: logger)
        try broker.start()
        // The broker asks for the run state as soon as the VMM is negotiated.
        guard vmm.waitForCommand("query-status") != nil else { throw QMPClient.Failure("the broker never attached") }
    }

    deinit {
        broker.stop()
        vmm.close()
    }

    /// A client of the broker's socket whose lines are kept as bytes, negotiated.
    func client() throws -> QMPLineConnection {
        let client = try QMPLineConnection(path: configuration.socketPath)
        guard try client.nextLine()?.hasPrefix(#"{"QMP": "#) == true else { throw QMPClient.Failure("no greeting") }
        try client.send(#"{"execute": "qmp_capabilities"}"#)
        guard try client.nextReply() == #"{"return": {}}"# else { throw QMPClient.Failure("negotiation failed") }
        return client
    }
}
