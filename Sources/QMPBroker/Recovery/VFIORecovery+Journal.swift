import BrokerState
import ErrorEvents
import Logging

/// What the broker did and why, for the operator: a log line at the level its meaning
/// has, and a history row (`qmp-broker history`), for every error, link reset, stop,
/// cont and flag change. The rows are written off the VM's loop (`recordHistoryLater`).
extension VFIORecovery {
    /// Who asked for an input: a client (its peer credentials) or the broker itself.
    struct Cause {
        let text: String
        static let broker = Cause(text: "broker")
        static func client(_ peer: PeerCredentials?) -> Cause {
            Cause(text: peer.map { "operator uid=\($0.uid) pid=\($0.pid)" } ?? "operator (peer unknown)")
        }
    }

    /// Logs and records what a machine's actions meant, once they have been started.
    func journal(_ actions: DeviceActions, on device: WatchedDevice, by cause: Cause) {
        let error = actions.lazy.compactMap { action -> PCIErrorEvent? in
            switch action {
            case .emitPCIError(let event), .forwardToGuest(_, then: let event): return event
            default: return nil
            }
        }.first
        let reset = actions.lazy.compactMap { action -> LinkResetEvent? in
            if case .emitLinkReset(let event) = action { return event }
            return nil
        }.first
        var metadata = deviceMetadata(device)
        if let error { metadata.merge(errorMetadata(error), uniquingKeysWith: { $1 }) }
        for action in actions {
            switch action {
            case .stopVM:
                let why = reset.map { "\($0.origin.rawValue) of a flagged link" } ?? "fatal host error under policy stop"
                logger.warning("stopping the VM: \(why)", metadata: metadata)
                history(.stop, device, error: error, action: "stop", cause: why)
            case .contVM:
                logger.notice("resuming the VM the broker stopped (auto-cont)", metadata: metadata)
                history(.cont, device, action: "cont", cause: "auto-cont")
            case .persist(let state) where state.linkError && error?.severity == .fatal:
                logger.error("link-error flag set", metadata: metadata)
                history(.flagSet, device, error: error, cause: "fatal host error")
            case .emitLinkErrorCleared(let event):
                let by = event.reason == .operator ? cause.text : event.reason.rawValue
                logger.notice("link-error flag cleared", metadata: metadata.merging(["by": "\(by)"], uniquingKeysWith: { $1 }))
                history(.flagCleared, device, cause: by)
            case .emitLinkReset(let event):
                let level: Logger.Level = event.action == .stop ? .warning : .info
                logger.log(level: level, "guest reset the link", metadata: metadata.merging(
                    ["origin": "\(event.origin.rawValue)", "link-error": "\(event.linkError)", "action": "\(event.action.rawValue)"],
                    uniquingKeysWith: { $1 }))
                history(.linkReset, device, action: event.action.rawValue, cause: event.origin.rawValue, linkError: event.linkError)
            case .emitHostRecovery(let event):
                let level: Logger.Level = event.result == .failed ? .error : .notice
                logger.log(level: level, "host recovery \(event.result.rawValue)", metadata: metadata)
            case .emitPCIError(let event), .forwardToGuest(_, then: let event):
                // Fatal errors at error, non-fatal at warning, correctable at info.
                let level: Logger.Level = switch event.severity {
                case .fatal: .error
                case .nonFatal: .warning
                case .correctable: .info
                }
                logger.log(level: level, "host AER error", metadata: metadata)
            case .persist:
                break
            }
        }
    }

    /// A policy change, with who asked.
    func journalPolicy(_ device: WatchedDevice, from old: DevicePolicy, by cause: Cause) {
        let new = device.machine.policy
        logger.notice("policy changed", metadata: deviceMetadata(device).merging([
            "from": "\(old.mode.rawValue)\(old.autoCont ? "+auto-cont" : "")",
            "to": "\(new.mode.rawValue)\(new.autoCont ? "+auto-cont" : "")", "by": "\(cause.text)",
        ], uniquingKeysWith: { $1 }))
    }

    func deviceMetadata(_ device: WatchedDevice) -> Logger.Metadata {
        ["device": "\(device.id)", "host": "\(device.host)", "policy": "\(device.machine.policy.mode.rawValue)"]
    }

    private func errorMetadata(_ event: PCIErrorEvent) -> Logger.Metadata {
        ["severity": "\(event.severity.rawValue)", "errors": "\(event.errorNames.joined(separator: ","))",
         "source": "\(event.source.rawValue)", "action": "\(event.action.rawValue)", "link-error": "\(event.linkError)"]
    }

    private func history(_ kind: HistoryRecord.Kind, _ device: WatchedDevice, error: PCIErrorEvent? = nil,
                         action: String? = nil, cause: String, linkError: Bool? = nil) {
        writeLater("record \(kind.rawValue) history") { store, failed in
            store.recordHistoryLater(HistoryRecord(
                vm: vmName, device: device.id, host: device.host.description, kind: kind,
                severity: error?.severity, errors: error?.errorNames ?? [], count: error?.count ?? 1,
                source: error?.source.rawValue, action: action, linkError: linkError ?? device.machine.linkError,
                cause: cause), onFailure: failed)
        }
    }
}
