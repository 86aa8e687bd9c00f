/// One thing the I/O layer must do after an input to a `DeviceErrorMachine`.
package enum DeviceAction: Hashable, Sendable {
    /// Send QMP `stop`. Always first in a `DeviceActions`: it races the guest.
    case stopVM
    /// Store the flag and the broker-stop ownership durably, before announcing anything.
    case persist(PersistedDeviceState)
    case emitPCIError(PCIErrorEvent)
    case emitLinkReset(LinkResetEvent)
    case emitLinkErrorCleared(LinkErrorClearedEvent)
    case emitHostRecovery(HostRecoveryEvent)
    /// Inject the error into the guest (`error.injectionPlan` has the HMP commands), then
    /// announce `event` once QEMU has answered, so that its `action` says what happened.
    case forwardToGuest(GuestAERError, then: PCIErrorEvent)
    /// Send QMP `cont`: auto-cont of a pause the broker itself made.
    case contVM
}
