import ErrorEvents
import EventLoop
import Glibc
import KernelTracepoint
import QMPWire
import VFIOWatch

/// Host inputs: eventfds, the AER counters (read on every notification and polled),
/// kernel uevents and the kernel's `ras:aer_event` tracepoint.
extension VFIORecovery {
    /// An empty notification this soon after an error was reported for the device is the
    /// same error announced twice (the ERR eventfd and `BEGIN_RECOVERY` both fire for it).
    static let sameErrorWindow = 2.0

    /// Watches an eventfd for a device; takes ownership of `fd` (closed on any failure).
    func attachEventFD(_ fd: Int32, device id: String, severity: EventFDSeverity) throws(QMPError) {
        guard let device = devices[id] else {
            _ = close(fd)
            throw QMPError.deviceNotWatched(id)
        }
        do {
            try EventFD.validate(fd)
            let watcher = try EventFDWatcher(fd: fd, loop: loop, logger: logger) { [weak self, weak device] count in
                guard let self, let device else { return }
                outbox.handOver { notified(device, source: .eventfd, tag: severity.severity, signals: Int(clamping: count)) }
            }
            device.eventFDs.append(.init(watcher: watcher, severity: severity))
            watcher.start()
            protectionChanged()
        } catch {
            _ = close(fd)
            throw QMPError(error.description)
        }
    }

    /// An eventfd, uevent or tracepoint record announced an error: classify it by the
    /// counters of the device and of the ports above it. With nothing counted anywhere,
    /// the fd's own tag says the severity; else the severity the notification named
    /// (`announced`, which unlike a tag yields to an error just reported); without either
    /// the severity is unknown, and it is reported as non-fatal with a note, never as fatal
    /// (a guess must not set the flag).
    ///
    /// A notification tagged fatal is reported as fatal whatever the counters show (a lesser
    /// counted error is reported beside it). When that stops the VM, the stop is written
    /// before the counters are read (up to six sysfs files).
    func notified(_ device: WatchedDevice, source: ErrorSource, tag: Severity?, signals: Int,
                  announced: Severity? = nil) {
        if tag == .fatal && device.machine.stopsOnFatalError {
            outbox.askFirst(.command("stop", purpose: .stopVM))
            stopWrittenFirst = true
        }
        defer { stopWrittenFirst = false }
        let errors = device.counters.poll(notified: true)
        defer { if !errors.isEmpty { saveAERBaseline(of: device) } }
        guard let mostSevere = errors.first?.severity else {
            if let last = device.lastReported, Deadline.now() - last < Self.sameErrorWindow, tag == nil {
                logger.debug("notification already reported", metadata: ["device": "\(device.id)", "source": "\(source.rawValue)"])
                return
            }
            let severity = tag ?? announced
            let note = severity == nil ? ["no AER counter moved: severity unknown, reported as non-fatal"] : []
            report(HostError(severity: severity ?? .nonFatal, count: signals, source: source), on: device, notes: note)
            return
        }
        // The signals are the fatal-tagged ones: the lesser errors keep their own counts.
        let signalled = tag == .fatal && mostSevere != .fatal ? Severity.fatal : mostSevere
        if signalled != mostSevere {
            report(HostError(severity: .fatal, count: signals, source: source), on: device,
                   notes: ["tagged fatal; the AER counters show only \(mostSevere.rawValue) errors"])
        }
        for error in errors {
            // Coalesced signals count as many errors as the larger of the two tallies.
            let counted = Int(clamping: error.count)
            let count = error.severity == signalled ? max(counted, signals) : counted
            report(error.hostError(source: source, count: count), on: device, notes: error.notes)
        }
    }

    /// Counters that grew without a signal (no eventfd, or the error came first to sysfs).
    func pollCounters() {
        for device in orderedDevices {
            let errors = device.counters.poll(notified: false)
            for error in errors { report(error.hostError(source: .sysfs), on: device, notes: error.notes) }
            if !errors.isEmpty { saveAERBaseline(of: device) }
        }
    }

    /// What the counters show happened while no broker watched (it was stopped or killed),
    /// counted at once against the counters the last run stored, so that no later read can
    /// count it again. Read as a notification: a fatal error only the root port counted is
    /// taken as this device's, as the flag must not be lost.
    func countMissedErrors(of device: WatchedDevice) {
        if let stored = storedAERBaseline(of: device) {
            device.counters.restoreBaseline(stored)
            device.missedErrors = device.counters.poll(notified: true)
        }
        // Missed errors move the baseline once they are reported, behind their flag (`catchUp`).
        if device.missedErrors.isEmpty { saveAERBaseline(of: device) }
    }

    /// Reports the missed errors once the VMM is attached, so that forwarding and stops can
    /// act on them.
    func catchUp(_ device: WatchedDevice) {
        let errors = device.missedErrors
        device.missedErrors = []
        guard !errors.isEmpty else { return }
        logger.warning("AER errors happened while the broker was not running",
                       metadata: ["device": "\(device.id)", "severities": "\(errors.map(\.severity.rawValue).joined(separator: ","))"])
        for error in errors {
            report(error.hostError(source: .sysfs), on: device, notes: error.notes + ["counted while the broker was not running"])
        }
        saveAERBaseline(of: device)
    }

    /// A kernel uevent for one of this VM's devices (matched by `PCI_SLOT_NAME`).
    func uevent(_ event: UEvent) {
        guard let address = event.pciAddress,
              let device = orderedDevices.first(where: { $0.host == address }) else { return }
        switch event.errorEvent {
        case .successfulRecovery?:
            perform(device.machine.hostRecoveryDone(), on: device)
        case .failedRecovery?:
            logger.warning("host recovery failed", metadata: ["device": "\(device.id)", "host": "\(address)"])
            perform(device.machine.hostRecoveryFailed(), on: device)
        case .beginRecovery?:
            // The AER core is handling an uncorrectable error: news of it in its own right.
            perform(device.machine.hostRecoveryStarted(), on: device)
            notified(device, source: .uevent, tag: nil, signals: 1)
        case nil:
            if event.deviceOnline == true { perform(device.machine.hostRecoveryDone(), on: device) }
        }
    }

    /// A `ras:aer_event` record: the AER core handled an error that the named function
    /// reported, the device itself or a port above it (a port's error about its link moves
    /// only the port's counters, SPEC 10). The counters are read as for any notification;
    /// the record's own severity speaks only when none of them moved.
    /// `emittedAt`: when the kernel emitted it (monotonic nanoseconds), for the log.
    func aerTraceEvent(_ event: AERTraceEvent, emittedAt: UInt64? = nil) {
        guard let reporter = HostAddress(event.deviceName) else { return }
        for device in orderedDevices where device.host == reporter || device.counters.ports.contains(reporter) {
            if let emittedAt {
                // How long the record took from the kernel to this VM's loop: the
                // tracepoint's whole point is that this is short.
                let milliseconds = Double(MonotonicClock.nanoseconds() &- emittedAt) / 1e6
                logger.debug("ras:aer_event record", metadata: [
                    "device": "\(device.id)", "reporter": "\(event.deviceName)", "severity": "\(event.severity)",
                    "status": "0x\(String(event.status, radix: 16))",
                    "kernel-to-loop-ms": "\((milliseconds * 10).rounded() / 10)"])
            }
            notified(device, source: .aerTracepoint, tag: nil, signals: 1, announced: event.severity.errorSeverity)
        }
    }

    /// The kernel dropped tracepoint records (a ring was full): what they announced is
    /// still in the counters, so read them all now rather than at the next slow poll.
    func aerTraceRecordsLost(_ count: UInt64) {
        logger.warning("ras:aer_event records were lost; reading the AER counters now", metadata: ["lost": "\(count)"])
        pollCounters()
    }

    /// `x-vfio-inject-error`: a simulated host error, through the same path as a real one.
    func inject(_ error: HostError, into id: String) throws(QMPError) {
        report(error, on: try device(id))
    }

    private func report(_ error: HostError, on device: WatchedDevice, notes: [String] = []) {
        device.lastReported = Deadline.now()
        perform(device.machine.hostError(error), on: device, notes: notes)
    }
}

extension AERTraceSeverity {
    var errorSeverity: Severity {
        switch self {
        case .correctable: return .correctable
        case .nonFatal: return .nonFatal
        case .fatal: return .fatal
        }
    }
}
