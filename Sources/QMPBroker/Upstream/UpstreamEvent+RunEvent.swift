import ErrorEvents
import QMPSessions

extension UpstreamEvent {
    /// What the event says about the VM's run state, for the devices' machines.
    var runEvent: VMRunEvent? {
        switch self {
        case .stop: .stopped
        case .resume: .resumed
        case .reset: .reset
        case .deviceDeleted, .other: nil
        }
    }
}
