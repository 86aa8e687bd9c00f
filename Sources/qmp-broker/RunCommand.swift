import ArgumentParser
import Logging
import BrokerState
import QMPBroker
import ServiceLifecycle
import Metrics
import Prometheus
import Glibc

/// `qmp-broker run`: serve each VM's QMP socket until SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Serve DIR/NAME.qmp for each VM, in front of its VMM's QMP socket.",
        discussion: ConfigHelp.text)

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

    @Option(name: .customLong("metrics-listen"), help: "ADDR:PORT to serve Prometheus metrics on (GET /metrics); off by default.")
    var metricsListen: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .customLong("log-format"),
            help: "text, json or journal (default: journal under systemd, else text).")
    var logFormat: LogFormat?

    func run() async throws {
        let vfio = Settings.VFIOOptions(sysfsRoot: sysfsRoot, allowInject: allowInject, eventFDs: eventFDs,
                                        stateDirectory: stateDirectory)
        let settings: Settings
        do {
            settings = try Settings.load(file: configFile, vmArguments: vms, socketDirectory: socketDirectory, vfio: vfio)
        } catch {
            let text = error.description + "\n"
            _ = write(2, text, text.utf8.count)
            throw ExitCode(78)  // EX_CONFIG
        }
        let format = logFormat ?? LogFormat.automatic(environment: SystemdNotifier.processEnvironment())
        LoggingSystem.bootstrap { [logLevel] label in BrokerLogHandler(logLevel: logLevel, label: label, format: format) }
        let logger = Logger(label: "qmp-broker")
        do {
            try SocketDirectory.create(settings.socketDirectory)
        } catch {
            logger.critical("cannot create the socket directory", metadata: ["path": "\(settings.socketDirectory)", "error": "\(error)"])
            throw ExitCode(73)  // EX_CANTCREAT
        }
        if settings.stateDirectory == nil {
            logger.warning("no --state-dir: link-error flags and error history live in memory only and are lost on restart")
        }
        var metrics: MetricsEndpoint?
        if let metricsListen {
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.durationHistogramBuckets[BrokerMetrics.commandDuration] = BrokerMetrics.commandDurationBuckets
            MetricsSystem.bootstrap(factory)
            // An info metric (value 1) names the version; `up` says the process serves scrapes.
            Metrics.Gauge(label: "qmp_broker_build_info", dimensions: [("version", BrokerVersion.string)]).record(1)
            Metrics.Gauge(label: "qmp_broker_up").record(1)
            do {
                metrics = try MetricsEndpoint(listen: metricsListen, registry: registry)
            } catch {
                logger.critical("cannot serve metrics", metadata: ["reason": "\(error.description)"])
                throw ExitCode(1)
            }
            logger.info("serving metrics", metadata: ["address": "\(metricsListen)", "port": "\(metrics?.port ?? 0)"])
        }
        defer { metrics?.stop() }
        let retention = HistoryRetention(maxAgeDays: settings.historyRetention.maxAgeDays,
                                         maxRows: settings.historyRetention.maxRows)
        let broker = try Broker(vms: settings.vms, stateDirectory: settings.stateDirectory,
                                historyRetention: retention, logger: logger)
        let notifier = SystemdNotifier()
        // The inherited eventfds were taken at start and are not taken again: a reload must
        // not be refused because one has since been closed (its device deleted) or its
        // device left the config. They stay in the settings, so an unchanged VM stays as is.
        var reloaded = vfio
        reloaded.takingEventFDs = false
        let load = { @Sendable [configFile, vms, socketDirectory, reloaded] () throws(ConfigProblems) -> Settings in
            try Settings.load(file: configFile, vmArguments: vms, socketDirectory: socketDirectory, vfio: reloaded)
        }
        let reload = ReloadOnHangup(load: load, broker: broker, notifier: notifier, logger: logger)
        let service = BrokerService(broker: broker, notifier: notifier)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: service), .init(service: reload)],
                                 gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
