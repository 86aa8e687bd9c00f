import QMPBroker
import ServiceLifecycle

/// Runs the broker as a service: start, tell systemd, keep its watchdog fed while every
/// VM's loop answers, and on graceful shutdown say so and stop.
struct BrokerService: Service {
    let broker: Broker
    let notifier: SystemdNotifier

    func run() async throws {
        try broker.start()
        notifier.ready(status: "serving \(broker.vms.count) VM(s)")
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
        watchdog?.cancel()
        broker.stop()
    }
}
