import ArgumentParser
import Logging
import QMPBroker
import ServiceLifecycle

/// `qmp-broker run`: serve each VM's QMP socket until SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Serve DIR/NAME.qmp for each VM, in front of its VMM's QMP socket.")

    @Option(name: .customLong("vm"), help: "NAME=QMP_SOCKET of a VMM to front (repeatable).")
    var vms: [String] = []

    @Option(name: .customLong("socket-dir"), help: "Where the broker's per-VM sockets are created.")
    var socketDirectory: String?

    @Option(name: .customLong("config"), help: "A TOML configuration file.")
    var configFile: String?

    @Option(name: .customLong("state-dir"), help: "Where link-error flags and error history are kept (SQLite).")
    var stateDirectory: String?

    @Option(name: .customLong("sysfs-root"), help: "Root of the sysfs tree with the AER counters (default /sys).")
    var sysfsRoot: String?

    @Flag(name: .customLong("allow-inject"), help: "Enable x-vfio-inject-error (drills and tests).")
    var allowInject = false

    @Option(name: .customLong("eventfd"), help: "VM/DEVICE/SEVERITY=FD: an inherited eventfd to watch (repeatable).")
    var eventFDs: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let vfio = Settings.VFIOOptions(sysfsRoot: sysfsRoot, allowInject: allowInject, eventFDs: eventFDs,
                                        stateDirectory: stateDirectory)
        let settings = try Settings.load(file: configFile, vmArguments: vms, socketDirectory: socketDirectory, vfio: vfio)
        for vm in settings.vms { try vm.validate() }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "qmp-broker")
        let broker = try Broker(vms: settings.vms, stateDirectory: settings.stateDirectory, logger: logger)
        let service = BrokerService(broker: broker)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint],
                                 logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Runs the broker as a service: start, wait for graceful shutdown, stop.
struct BrokerService: Service {
    let broker: Broker

    func run() async throws {
        try broker.start()
        try? await gracefulShutdown()
        broker.stop()
    }
}
