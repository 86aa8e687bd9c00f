import EventLoop
import Glibc
import LinkResetTrace
import Logging
import QMPWire
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

/// The USDT half of `LinkResetWatcher`: at attach, when the VMM's binary
/// (`/proc/PID/exe`) carries QEMU's USDT probes, arm them (`USDTProbeSession`) instead of
/// pointing QEMU's log at a file. Probes need no `logfile`, no trace events switched on and
/// no trace guard, and no client can switch them off. The watch proves itself as the log
/// path's canary does: at attach and every check a QMP command goes to the VMM, and a
/// `handle_qmp_command` hit carrying that command's id must be in the ring by the time its
/// reply is back (the probe fires when QEMU reads the request, before it runs it). QEMU
/// frees the request's text as the probe returns, so the kernel copies it at the hit
/// (`USDTCanaryEvent`, a tracefs uprobe event); without tracefs any request counts.
///
/// A missed canary breaks the watch and re-arms: every perf event closed and opened again,
/// which puts back a breakpoint removed from QEMU's text. When that fails, the monitor
/// falls back to the trace log (`onFallback`); the next canary that arrives makes the
/// watch intact again.
///
/// Decoded hits go back to the monitor as the same `QEMUTraceLine.Event`s the log yields.
/// Loop-confined.
final class USDTLinkResetSource {
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
    /// The id the canary command went out with; nil until `execute` returned it.
    private var canaryID: Int64?
    /// Whether the canary's own request hit `handle_qmp_command` while it was in flight.
    private var canarySeen = false
    /// The VMM's binary and probes as read at attach, for re-arming.
    private var probes: (pid: pid_t, path: String, sites: QEMUProbeSites)?
    private var rearmsSinceIntact = 0

    /// A trace event to judge (the monitor's `handle`).
    var onEvent: (QEMUTraceLine.Event) -> Void = { _ in }
    /// Read the topology; `topologyRead()` comes back.
    var onTopologyWanted: () -> Void = {}
    /// The watch's state changed (publish) or is announced.
    var onPublish: (_ intact: Bool, _ reason: String?) -> Void = { _, _ in }
    var onAnnounce: (_ active: Bool, _ reason: String) -> Void = { _, _ in }
    /// Send the canary command (`query-status`); `canarySent` and `canaryAnswered` come back.
    var onCanary: () -> Void = {}
    /// The check timer fired: run `tick` as an input of the monitor.
    var onTick: (_ tick: () -> Void) -> Void = { $0() }
    /// Who judges the canary in flight.
    private var judgeCanary: ((Bool) -> Void)?
    /// Re-arming failed: the probes are gone (`isActive` false); watch through the log.
    var onFallback: () -> Void = {}

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
        do {
            try arm(pid: pid, path: found.path, sites: found.sites)
        } catch {
            unavailableReason = "\(error)"
            logger.warning("the VMM's USDT probes cannot be armed; using the trace log",
                           metadata: ["reason": "\(error)"])
            return false
        }
        probes = (pid, found.path, found.sites)
        unavailableReason = nil
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
            if arrived {
                apply(watch.attached())
            } else {
                apply(watch.attachFailed(Self.canaryMissed))
                rearm()
            }
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
        canaryID = nil
    }

    private func arm(pid: pid_t, path: String, sites: QEMUProbeSites) throws(USDTProbeSession.Failure) {
        let session = try USDTProbeSession(pid: pid, binaryPath: path, sites: sites, loop: loop)
        session.onHit = { [unowned self] hit in received(hit) }
        session.onRequest = { [unowned self] text in receivedRequest(text) }
        session.onLost = { [unowned self] count in
            logger.error("the kernel dropped USDT samples: a guest link reset may have been missed",
                         metadata: ["lost": "\(count)"])
        }
        self.session = session
        logger.info("armed QEMU's USDT probes", metadata: [
            "pid": "\(pid)", "sites": "\(sites.siteCount)", "threads": "\(session.threadCount)"])
        if let reason = session.canaryUnchecked {
            logger.warning("the USDT canary cannot check its command's id: any QMP request counts",
                           metadata: ["reason": "\(reason)"])
        }
    }

    /// After a missed canary: whatever removed the probes' breakpoints or stopped their
    /// hits (a debugger restoring QEMU's text, a perf event disabled), opening every event
    /// again installs them afresh. The next canary judges the result.
    private func rearm() {
        guard let probes else { return }
        session?.closeInBackground()
        session = nil
        do {
            try arm(pid: probes.pid, path: probes.path, sites: probes.sites)
            // Once per breakage: a cause that re-arming cannot cure repeats every check.
            rearmsSinceIntact += 1
            if rearmsSinceIntact == 1 { logger.warning("re-armed QEMU's USDT probes after a missed canary") }
        } catch {
            stop()
            self.probes = nil
            unavailableReason = "re-arming the USDT probes after a missed canary failed: \(error)"
            logger.error("cannot re-arm QEMU's USDT probes; falling back to the trace log",
                         metadata: ["reason": "\(error)"])
            onFallback()
        }
    }

    private func received(_ hit: QEMUProbeHit) {
        switch hit {
        case .qmpRequest:
            // Without the id (no tracefs), any request QEMU read while the canary was out.
            if canaryInFlight, session?.canaryUnchecked != nil { canarySeen = true }
        case .trace(let event):
            // Judged even while a canary is missing: a hit that arrives is still true.
            if awaitingTopology {
                if early.count < 65_536 { early.append(event) }
            } else {
                onEvent(event)
            }
        }
    }

    private func receivedRequest(_ text: String) {
        guard canaryInFlight, let canaryID, Self.request(text, carries: canaryID) else { return }
        canarySeen = true
    }

    /// Whether QEMU's rendering of a request (`{"execute": "query-status", "id": 12}`) has
    /// this id; another client's request, or a truncated one, does not.
    static func request(_ text: String, carries id: Int64) -> Bool {
        guard let request = try? JSON.parse(text) else { return false }
        return request["id"]?.integer == id
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
                rearm()
            }
        }
    }

    /// Sends `query-status` and answers whether a `handle_qmp_command` hit was in the ring
    /// by its reply.
    private func sendCanary(_ judged: @escaping (Bool) -> Void) {
        session?.drain()
        canaryInFlight = true
        canarySeen = false
        canaryID = nil
        judgeCanary = judged
        onCanary()
    }

    /// The canary command went out with broker id `id`: only a request with it counts.
    func canarySent(id: Int64?) { canaryID = id }

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
        canaryID = nil
        if !canarySeen {
            logger.debug("USDT canary missed", metadata: ["hits": "\(session?.hitCount ?? 0)", "threads": "\(session?.threadCount ?? 0)"])
        }
        judged(canarySeen)
    }

    private func apply(_ actions: [LinkResetWatch.Action]) {
        if watch.isIntact { rearmsSinceIntact = 0 }
        onPublish(watch.isIntact, watch.reason)
        for action in actions {
            switch action {
            case .announce(let active, let reason): onAnnounce(active, reason)
            case .reassert, .reattach, .verify: break  // the canary's next tick judges again
            }
        }
    }
}
