import ErrorEvents
import QMPWire

extension DevicePolicy {
    /// The configured policy as it is: `VFIORecovery+Reload.swift` still calls `parse` on
    /// what used to be the policy's text.
    static func parse(_ policy: DevicePolicy, autoCont: Bool) throws(QMPError) -> DevicePolicy {
        DevicePolicy(policy.mode, autoCont: autoCont)
    }
}
