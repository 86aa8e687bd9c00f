import ErrorEvents

/// Every state of the machine, each reached from a fresh machine by a short prefix of inputs
/// (the machine's states are private: tests only see them through behaviour).
enum MachineState: String, CaseIterable, Sendable {
    case healthyRunning
    case healthyPaused
    case nonFatalRunning
    case nonFatalPaused
    case linkErrorRunning
    case linkErrorPaused
    /// The broker sent `stop`; its STOP has not arrived.
    case stopping
    case stoppedByBroker
    /// The flag was cleared while the broker's `stop` was in flight.
    case clearedWhileStopping
    case recoveredRunning
    case recoveredPaused

    var prefix: [Input] {
        switch self {
        case .healthyRunning: []
        case .healthyPaused: [.vmStopped]
        case .nonFatalRunning: [.nonFatal]
        case .nonFatalPaused: [.nonFatal, .vmStopped]
        case .linkErrorRunning: [.fatal]
        case .linkErrorPaused: [.fatal, .vmStopped]
        case .stopping: [.fatal, .sbr]
        case .stoppedByBroker: [.fatal, .sbr, .vmStopped]
        case .clearedWhileStopping: [.fatal, .sbr, .operatorClear]
        case .recoveredRunning: [.fatal, .operatorClear]
        case .recoveredPaused: [.fatal, .vmStopped, .operatorClear]
        }
    }

    /// A machine in this state; the prefix is driven under `forward`, then `policy` applies.
    func machine(policy: DevicePolicy) -> DeviceErrorMachine {
        var machine = DeviceErrorMachine(policy: .forward, after: prefix)
        _ = machine.policyChanged(to: policy)
        return machine
    }
}

/// One transition: from a state, an input, the actions and the status afterwards.
struct Transition: Sendable, CustomStringConvertible {
    let from: MachineState
    let input: Input
    let expected: DeviceActions
    let status: DeviceErrorStatus

    init(_ from: MachineState, _ input: Input, _ expected: DeviceActions, _ status: DeviceErrorStatus) {
        self.from = from
        self.input = input
        self.expected = expected
        self.status = status
    }

    var description: String { "\(from.rawValue) + \(input)" }
}
