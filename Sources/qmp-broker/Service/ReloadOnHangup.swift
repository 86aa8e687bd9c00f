import Glibc
import Logging
import QMPBroker
import ServiceLifecycle
import UnixSignals

/// SIGHUP re-reads the configuration. A config with any problem is refused as a whole
/// (the running one stays, the problems are logged); SIGHUP never ends the broker.
/// A service of the broker's group: it ends with the group's graceful shutdown.
struct ReloadOnHangup: Service {
    let load: @Sendable () throws(ConfigProblems) -> Settings
    let broker: Broker
    let notifier: SystemdNotifier
    let logger: Logger

    /// Make it before anything else can deliver SIGHUP: from here on its default action
    /// (terminate) is off, until `run` traps it.
    init(load: @escaping @Sendable () throws(ConfigProblems) -> Settings, broker: Broker,
         notifier: SystemdNotifier, logger: Logger) {
        signal(SIGHUP, SIG_IGN)
        self.load = load
        self.broker = broker
        self.notifier = notifier
        self.logger = logger
    }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reload()
        }
    }

    private func reload() {
        notifier.reloading()
        defer { notifier.ready(status: "serving \(broker.vms.count) VM(s)") }
        let settings: Settings
        do throws(ConfigProblems) {
            settings = try load()
        } catch {
            logger.error("reload refused: the new configuration has problems; the running one is kept",
                         metadata: ["problems": "\(error.messages.joined(separator: "; "))"])
            return
        }
        let changes = broker.reload(settings.vms)
        logger.notice("configuration reloaded", metadata: [
            "changes": "\(changes.isEmpty ? "none" : changes.joined(separator: "; "))"])
    }
}
