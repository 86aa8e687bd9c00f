import Dispatch
import Glibc
import Logging
import QMPBroker

/// SIGHUP re-reads the configuration. A config with any problem is refused as a whole
/// (the running one stays, the problems are logged); SIGHUP never ends the broker.
final class ReloadOnHangup {
    private let queue = DispatchQueue(label: "qmp-broker.reload")
    private let source: DispatchSourceSignal

    /// Call before anything else can deliver SIGHUP: from here on its default action
    /// (terminate) is off.
    init(load: @escaping @Sendable () throws(ConfigProblems) -> Settings, broker: Broker,
         notifier: SystemdNotifier, logger: Logger) {
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        source.setEventHandler {
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
        source.activate()
    }

    func stop() { source.cancel() }
}
