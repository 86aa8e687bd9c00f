import BrokerTesting
import Logging
import QMPBroker

/// The broker, in-process, in front of one VM; its socket is `DIR/NAME.qmp`.
final class BrokerInstance {
    let broker: Broker
    let socketPath: String

    init(upstream: String, in directory: TemporaryDirectory, name: String = "vm1", stateDirectory: String? = nil,
         configure: (inout VMConfiguration) -> Void = { _ in }) throws {
        var configuration = VMConfiguration(name: name, upstreamPath: upstream, socketPath: directory.file("\(name).qmp"))
        // The periodic trace check as often as it used to be, so the tests that wait for it stay quick.
        configuration.linkResetCheckMilliseconds = 2000
        configure(&configuration)
        socketPath = configuration.socketPath
        var logger = Logger(label: "qmp-broker-test")
        logger.logLevel = .warning
        broker = try Broker(vms: [configuration], stateDirectory: stateDirectory, logger: logger)
        try broker.start()
    }

    /// A client of the broker's socket, negotiated unless told otherwise.
    func client(negotiate: Bool = true) throws -> QMPClient {
        let client = try QMPClient(path: socketPath)
        if negotiate { try client.negotiate() }
        return client
    }

    deinit { broker.stop() }
}
