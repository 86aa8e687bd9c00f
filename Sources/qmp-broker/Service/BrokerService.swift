import Metrics
import QMPBroker
import ServiceLifecycle

/// Runs the broker as a service: start, tell systemd, keep its watchdog fed while every
/// VM's loop answers, and on graceful shutdown say so and stop.
struct BrokerService: Service {
    let broker: Broker
    let notifier: SystemdNotifier
    /// `qmp_broker_ready`: 1 from READY=1 until STOPPING=1, for a fleet that cannot ask
    /// systemd (made here, after `run` bootstrapped the metrics backend).
    private let readiness = Gauge(label: "qmp_broker_ready")

    init(broker: Broker, notifier: SystemdNotifier) {
        self.broker = broker
        self.notifier = notifier
        readiness.record(0)
    }

    func run() async throws {
        try broker.start()
        notifier.ready(status: "serving \(broker.vms.count) VM(s)")
        readiness.record(1)
        let watchdog = notifier.watchdogInterval.map { interval in
            Task { [broker, notifier] in
                while !Task.isCancelled {
                    // A loop stuck in a call would stop the pings: systemd then restarts us.
                    for vm in broker.vms {
                        await withCheckedContinuation { done in vm.loop.execute { done.resume() } }
                    }
                    notifier.watchdog()
                    try? await Task.sleep(for: interval)
                }
            }
        }
        try? await gracefulShutdown()
        notifier.stopping()
        readiness.record(0)
        watchdog?.cancel()
        broker.stop()
    }
}
