import EventLoop
import Metrics

/// One VM's metrics, through swift-metrics: no-ops unless the process bootstrapped a
/// backend (`run --metrics-listen`). Used on the VM's event loop only; each handle is created
/// once, so the hot path is an atomic add in the backend.
final class VMMetrics {
    private let dimensions: [(String, String)]
    private let upstreamConnected: Gauge
    private let upstreamConnects: Counter
    private let clients: Gauge
    private let commandsForwarded: Counter
    private let commandLatency: Metrics.Timer
    private let eventsFannedOut: Counter
    private let slowClientsCut: Counter
    private let linkResets: Counter
    private let stops: Counter
    private let conts: Counter
    private let flagsSet: Counter
    private let flagsCleared: Counter
    private let flaggedLinks: Gauge
    /// Per "severity/source": a source added later still gets its own series.
    private var hostErrors: [String: Counter] = [:]
    private var lastFlagged = 0
    private let devicesWatched: Gauge
    private let devicesUnprotected: Gauge
    /// The watch's series under its current `source` label, and each device's trigger under
    /// its current `source`: a changed source replaces the series, so a query never sees
    /// two sources of one watch or device at once.
    private var linkResetWatch: (source: String, gauge: Gauge)?
    private var errorTriggers: [String: (source: String, gauge: Gauge)] = [:]
    private var lastProtection: VMProtection?

    init(vm: String) {
        let dimensions = [("vm", vm)]
        self.dimensions = dimensions
        upstreamConnected = Gauge(label: "qmp_broker_upstream_connected", dimensions: dimensions)
        upstreamConnects = Counter(label: "qmp_broker_upstream_connects_total", dimensions: dimensions)
        clients = Gauge(label: "qmp_broker_clients", dimensions: dimensions)
        commandsForwarded = Counter(label: "qmp_broker_commands_forwarded_total", dimensions: dimensions)
        commandLatency = Metrics.Timer(label: BrokerMetrics.commandDuration, dimensions: dimensions)
        eventsFannedOut = Counter(label: "qmp_broker_events_total", dimensions: dimensions)
        slowClientsCut = Counter(label: "qmp_broker_slow_clients_cut_total", dimensions: dimensions)
        linkResets = Counter(label: "qmp_broker_link_resets_total", dimensions: dimensions)
        stops = Counter(label: "qmp_broker_stops_total", dimensions: dimensions)
        conts = Counter(label: "qmp_broker_conts_total", dimensions: dimensions)
        flagsSet = Counter(label: "qmp_broker_link_error_flags_set_total", dimensions: dimensions)
        flagsCleared = Counter(label: "qmp_broker_link_error_flags_cleared_total", dimensions: dimensions)
        flaggedLinks = Gauge(label: "qmp_broker_flagged_links", dimensions: dimensions)
        devicesWatched = Gauge(label: "qmp_broker_devices_watched", dimensions: dimensions)
        devicesUnprotected = Gauge(label: "qmp_broker_devices_unprotected", dimensions: dimensions)
        upstreamConnected.record(0)
        clients.record(0)
        flaggedLinks.record(0)
    }

    func upstream(connected: Bool) {
        upstreamConnected.record(connected ? 1 : 0)
        if connected { upstreamConnects.increment() }
    }

    func clientCount(_ count: Int) { clients.record(count) }

    func slowClientCut() { slowClientsCut.increment() }

    /// Call when a command goes upstream; returns when (monotonic nanoseconds), for `commandReplied`.
    func commandForwarded() -> UInt64 {
        commandsForwarded.increment()
        return MonotonicClock.nanoseconds()
    }

    /// Call when a forwarded command's reply (or error) is back.
    func commandReplied(sentAt start: UInt64) {
        commandLatency.recordNanoseconds(Int64(MonotonicClock.nanoseconds() - start))
    }

    func eventFannedOut() { eventsFannedOut.increment() }

    func hostError(severity: String, source: String) {
        let key = "\(severity)/\(source)"
        let counter = hostErrors[key] ?? Counter(
            label: "qmp_broker_host_errors_total", dimensions: dimensions + [("severity", severity), ("source", source)])
        hostErrors[key] = counter
        counter.increment()
    }

    func linkReset() { linkResets.increment() }
    func brokerStop() { stops.increment() }
    func brokerCont() { conts.increment() }

    /// Flags restored from the state file at start: shown, not counted as set.
    func restoredFlagged(_ count: Int) {
        lastFlagged = count
        flaggedLinks.record(count)
    }

    /// The VM's protection now; series change only where it changed.
    func protection(_ now: VMProtection) {
        guard now != lastProtection else { return }
        lastProtection = now
        if linkResetWatch?.source != now.watchSource {
            linkResetWatch?.gauge.destroy()
            linkResetWatch = (now.watchSource, Gauge(label: "qmp_broker_link_reset_watch",
                                                     dimensions: dimensions + [("source", now.watchSource)]))
        }
        linkResetWatch?.gauge.record(now.watchIntact ? 1 : 0)
        for gone in Set(errorTriggers.keys).subtracting(now.devices.map(\.id)) {
            errorTriggers.removeValue(forKey: gone)?.gauge.destroy()
        }
        for device in now.devices {
            if errorTriggers[device.id]?.source != device.triggerSource {
                errorTriggers[device.id]?.gauge.destroy()
                errorTriggers[device.id] = (device.triggerSource, Gauge(
                    label: "qmp_broker_error_trigger_active",
                    dimensions: dimensions + [("device", device.id), ("source", device.triggerSource)]))
            }
            errorTriggers[device.id]?.gauge.record(device.triggerActive ? 1 : 0)
        }
        devicesWatched.record(now.devices.count)
        devicesUnprotected.record(now.unprotectedDevices)
    }

    /// The VM is gone (stopped, or removed by a reload): its protection series go with it,
    /// or a fleet would keep seeing a VM that no longer exists.
    func removeProtection() {
        linkResetWatch?.gauge.destroy()
        linkResetWatch = nil
        errorTriggers.values.forEach { $0.gauge.destroy() }
        errorTriggers = [:]
        devicesWatched.destroy()
        devicesUnprotected.destroy()
        lastProtection = nil
    }

    /// How many of the VM's devices are flagged now; a rise counts as flags set, a fall as cleared.
    func flagged(_ count: Int) {
        if count > lastFlagged { flagsSet.increment(by: count - lastFlagged) }
        if count < lastFlagged { flagsCleared.increment(by: lastFlagged - count) }
        lastFlagged = count
        flaggedLinks.record(count)
    }
}

/// What a metrics backend needs to know about the broker's series.
package enum BrokerMetrics {
    package static let commandDuration = "qmp_broker_command_duration_seconds"
    /// A forwarded command is sub-millisecond when all is well, seconds when the VMM is busy.
    package static let commandDurationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1), .seconds(5),
    ]
}
