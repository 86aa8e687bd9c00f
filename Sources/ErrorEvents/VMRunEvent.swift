/// What the VMM says about the VM's run state, as inputs of every device's machine
/// (`DeviceErrorMachine.vmEvent`) and of `VMRunState`.
package enum VMRunEvent: Sendable, Equatable {
    /// `query-status` at attach: not an event, so nobody's pause began or ended.
    case runStateLearnt(running: Bool)
    /// QMP `STOP`, whoever caused it.
    case stopped
    /// QMP `RESUME`, whoever caused it.
    case resumed
    /// QMP `RESET`: a system reset; the run state is untouched.
    case reset
}
