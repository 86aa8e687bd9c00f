import EventLoop
import Glibc
import LinkResetTrace
import Logging
import USDTProbes

/// Which channel shows a VM's guest link resets (`link-reset-source` in `query-broker`
/// and `query-vfio-devices`).
enum LinkResetSource: String, Sendable {
    /// QEMU's USDT probes (a dtrace build), through uprobe perf events.
    case usdt
    /// QEMU's `log` trace backend, into the broker's trace log.
    case traceLog = "trace-log"
    case none
}

/// The USDT half of `GuestResetMonitor` (issue 18): at attach, when the VMM's binary
/// (`/proc/PID/exe`) carries QEMU's USDT probes, arm them (`USDTProbeSession`) instead of
/// pointing QEMU's log at a file. Probes need no `logfile`, no trace events switched on and
/// no trace guard, and no client can switch them off. The watch proves itself as the log
/// path's canary does: at attach and every check a QMP command goes to the VMM, and a
/// `handle_qmp_command` hit must be in the ring by the time its reply is back (the probe
/// fires when QEMU reads the request, before it runs it). The hit cannot carry the
/// command's id: QEMU frees the request's text as the probe returns, and a perf sample
/// holds registers, not memory, so another client's command in the same window counts too
/// (it proves the same probes work).
///
/// Decoded hits go back to the monitor as the same `QEMUTraceLine.Event`s the log yields.
/// Loop-confined.
final class USDTGuestResetSource {
    private let loop: EventLoop
    private let logger: Logger
    private let checkMilliseconds: Int
    private let timer: LoopTimer
    private var session: USDTProbeSession?
    private(set) var watch = LinkResetWatch()
    /// Why USDT is not the source (no probes, perf refused...), for `query-broker`.
    private(set) var unavailableReason: String?
    /// Hits that came before the topology was known: judged once it is.
    private var early: [QEMUTraceLine.Event] = []
    private var awaitingTopology = false
    private var canaryInFlight = false
    /// Whether a `handle_qmp_command` hit arrived while the canary was in flight.
    private var canarySeen = false

    /// A trace event to judge (the monitor's `handle`).
    var onEvent: (QEMUTraceLine.Event) -> Void = { _ in }
    /// Read the topology; `topologyRead()` comes back.
    var onTopologyWanted: () -> Void = {}
    /// The watch's state changed (publish) or is announced.
    var onPublish: (_ intact: Bool, _ reason: String?) -> Void = { _, _ in }
    var onAnnounce: (_ active: Bool, _ reason: String) -> Void = { _, _ in }
    /// Send the canary command (`query-status`); `canaryAnswered` comes back.
    var onCanary: () -> Void = {}
    /// The check timer fired: run `tick` as an input of the monitor.
    var onTick: (_ tick: () -> Void) -> Void = { $0() }
    /// Who judges the canary in flight.
    private var judgeCanary: ((Bool) -> Void)?

    init(loop: EventLoop, checkMilliseconds: Int, logger: Logger) {
        self.loop = loop
        self.checkMilliseconds = checkMilliseconds
        self.logger = logger
        timer = LoopTimer(loop: loop)
    }

    /// Whether the probes are armed: the monitor leaves the log path alone meanwhile.
    var isActive: Bool { session != nil }

    /// Arms the probes when the VMM's binary has them; false (and why, in
    /// `unavailableReason`) when the log path must watch instead.
    func attach(vmmPID: pid_t?) -> Bool {
        stop()
        guard let pid = vmmPID else {
            unavailableReason = "the VMM's pid is unknown"
            return false
        }
        let found: (path: String, sites: QEMUProbeSites)
        do {
            found = try USDTProbeSession.readSites(pid: pid)
        } catch {
            unavailableReason = "\(error)"
            return false
        }
        let session: USDTProbeSession
        do {
            session = try USDTProbeSession(pid: pid, binaryPath: found.path, sites: found.sites, loop: loop)
        } catch {
            unavailableReason = "\(error)"
            logger.warning("the VMM's USDT probes cannot be armed; using the trace log",
                           metadata: ["reason": "\(error)"])
            return false
        }
        unavailableReason = nil
        session.onHit = { [unowned self] hit in received(hit) }
        session.onLost = { [unowned self] count in
            logger.error("the kernel dropped USDT samples: a guest link reset may have been missed",
                         metadata: ["lost": "\(count)"])
        }
        self.session = session
        logger.info("armed QEMU's USDT probes", metadata: [
            "pid": "\(pid)", "sites": "\(found.sites.siteCount)", "threads": "\(session.threadCount)"])
        apply(watch.attachStarted())
        early = []
        awaitingTopology = true
        onTopologyWanted()
        return true
    }

    /// The topology the monitor asked for is in: the watch starts, with what came meanwhile.
    func topologyRead() {
        guard awaitingTopology, isActive else { return }
        awaitingTopology = false
        let pending = early
        early = []
        pending.forEach(onEvent)
        startTicking()
        sendCanary { [weak self] arrived in
            guard let self, isActive else { return }
            apply(arrived ? watch.attached() : watch.attachFailed(Self.canaryMissed))
        }
    }

    /// The VMM went away: its probes went with it.
    func upstreamLost() {
        guard isActive else { return }
        stop()
        apply(watch.detached("VMM disconnected"))
    }

    /// The broker is stopping: disarm.
    func detach() {
        guard isActive else { return }
        stop()
        apply(watch.detached("broker stopping"))
    }

    private func stop() {
        timer.cancel()
        session?.close()
        session = nil
        awaitingTopology = false
        canaryInFlight = false
        judgeCanary = nil
    }

    private func received(_ hit: QEMUProbeHit) {
        switch hit {
        case .qmpRequest:
            if canaryInFlight { canarySeen = true }
        case .trace(let event):
            // Judged even while a canary is missing: a hit that arrives is still true.
            if awaitingTopology {
                if early.count < 65_536 { early.append(event) }
            } else {
                onEvent(event)
            }
        }
    }

    // MARK: the canary

    static let canaryMissed = "USDT canary: the broker's QMP command never hit QEMU's handle_qmp_command probe"

    private func startTicking() {
        guard !timer.isArmed else { return }
        timer.repeating(everyMilliseconds: checkMilliseconds) { [weak self] in
            guard let self else { return }
            onTick { tick() }
        }
    }

    private func tick() {
        guard isActive, !canaryInFlight else { return }
        do {
            try session?.coverNewThreads()
        } catch {
            logger.error("cannot arm QEMU's USDT probes on its new threads", metadata: ["reason": "\(error)"])
        }
        sendCanary { [weak self] arrived in
            guard let self, isActive else { return }
            if arrived {
                if !watch.isIntact { apply(watch.attached()) }
            } else {
                apply(watch.attachFailed(Self.canaryMissed))
            }
        }
    }

    /// Sends `query-status` and answers whether a `handle_qmp_command` hit was in the ring
    /// by its reply.
    private func sendCanary(_ judged: @escaping (Bool) -> Void) {
        session?.drain()
        canaryInFlight = true
        canarySeen = false
        judgeCanary = judged
        onCanary()
    }

    /// The VMM answered the canary command.
    func canaryAnswered(_ result: UpstreamReply) {
        guard let judged = judgeCanary else { return }
        judgeCanary = nil
        guard case .reply = result else {  // the VMM is going: upstreamLost follows
            canaryInFlight = false
            return
        }
        session?.drain()
        canaryInFlight = false
        if !canarySeen {
            logger.debug("USDT canary missed", metadata: ["hits": "\(session?.hitCount ?? 0)", "threads": "\(session?.threadCount ?? 0)"])
        }
        judged(canarySeen)
    }

    private func apply(_ actions: [LinkResetWatch.Action]) {
        onPublish(watch.isIntact, watch.reason)
        for action in actions {
            switch action {
            case .announce(let active, let reason): onAnnounce(active, reason)
            case .reassert, .reattach, .verify: break  // the canary's next tick judges again
            }
        }
    }
}
