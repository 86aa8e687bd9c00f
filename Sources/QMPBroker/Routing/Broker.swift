import Logging

/// Everything one broker process serves: a `VMBroker` per VM, each on its own queue.
public final class Broker: Sendable {
    public let board = BrokerStatusBoard()
    public let vms: [VMBroker]
    private let logger: Logger

    public init(vms configurations: [VMConfiguration], logger: Logger) {
        self.logger = logger
        let board = self.board
        self.vms = configurations.map { VMBroker(configuration: $0, board: board, logger: logger) }
    }

    /// Opens every VM's socket and starts attaching; a socket that cannot be opened fails the start.
    public func start() throws(SocketError) {
        for vm in vms {
            try vm.start()
            logger.info("serving", metadata: [
                "vm": "\(vm.configuration.name)", "socket": "\(vm.configuration.socketPath)",
                "upstream": "\(vm.configuration.upstreamPath)",
            ])
        }
    }

    public func stop() {
        for vm in vms { vm.stop() }
    }
}
