import ErrorEvents
import Testing

/// One input to a `DeviceErrorMachine`, so a test can be written as a transcript.
enum Input: Sendable, CustomStringConvertible {
    case hostError(HostError)
    case guestLinkReset(LinkResetOrigin)
    case systemReset
    case vmStopped
    case vmResumed
    case runStateLearnt(running: Bool)
    case clientStop
    case hostRecoveryStarted
    case hostRecoveryDone
    case hostRecoveryFailed
    case operatorClear
    case policy(DevicePolicy)

    static let sbr = Input.guestLinkReset(.guestLinkReset)
    static let hotReset = Input.guestLinkReset(.guestHotReset)

    var description: String {
        switch self {
        case .hostError(let error): "hostError(\(error.severity.rawValue) \(error.errors.map(\.sysfsName)))"
        case .guestLinkReset(let origin): "guestLinkReset(\(origin.rawValue))"
        case .systemReset: "systemReset"
        case .vmStopped: "STOP"
        case .vmResumed: "RESUME"
        case .runStateLearnt(let running): "query-status(running: \(running))"
        case .clientStop: "client stop"
        case .hostRecoveryStarted: "hostRecoveryStarted"
        case .hostRecoveryDone: "hostRecoveryDone"
        case .hostRecoveryFailed: "hostRecoveryFailed"
        case .operatorClear: "operatorClear"
        case .policy(let policy): "policy(\(policy.mode.rawValue), autoCont: \(policy.autoCont))"
        }
    }
}

extension DeviceErrorMachine {
    mutating func apply(_ input: Input) -> DeviceActions {
        switch input {
        case .hostError(let error): hostError(error)
        case .guestLinkReset(let origin): guestLinkReset(origin: origin)
        case .systemReset: systemReset()
        case .vmStopped: vmStopped()
        case .vmResumed: vmResumed()
        case .runStateLearnt(let running): runStateLearnt(running: running)
        case .clientStop: clientRequestedStop()
        case .hostRecoveryStarted: hostRecoveryStarted()
        case .hostRecoveryDone: hostRecoveryDone()
        case .hostRecoveryFailed: hostRecoveryFailed()
        case .operatorClear: operatorClear()
        case .policy(let policy): policyChanged(to: policy)
        }
    }

    /// A machine driven through `inputs`, ignoring their actions: a way to reach a state.
    init(policy: DevicePolicy, after inputs: [Input]) {
        self.init(policy: policy)
        for input in inputs { _ = apply(input) }
    }
}

/// One line of a transcript: an input, the actions it must produce, and (optionally) the
/// status the device must show afterwards.
struct Step {
    let input: Input
    let expected: DeviceActions
    let status: DeviceErrorStatus?

    init(_ input: Input, _ expected: DeviceActions, _ status: DeviceErrorStatus? = nil) {
        self.input = input
        self.expected = expected
        self.status = status
    }
}

func expectTranscript(
    _ machine: inout DeviceErrorMachine, _ steps: [Step],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    for (index, step) in steps.enumerated() {
        let actions = machine.apply(step.input)
        #expect(actions == step.expected, "step \(index + 1): \(step.input)", sourceLocation: sourceLocation)
        if let status = step.status {
            #expect(machine.status == status, "status after step \(index + 1): \(step.input)", sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Host errors used throughout

func hostError(
    _ severity: Severity, _ names: [String] = [], count: Int = 1, source: ErrorSource = .sysfs
) -> HostError {
    do {
        return try HostError(severity: severity, names: names, count: count, source: source)
    } catch {
        fatalError("fixture names an unknown AER error: \(error.name)")
    }
}

let dlp = hostError(.fatal, ["DLP"])
let surpriseDown = hostError(.fatal, ["SDES"], source: .eventfd)
let completionTimeout = hostError(.nonFatal, ["CmpltTO"])
let receiverError = hostError(.correctable, ["RxErr"])

extension Input {
    static let fatal = Input.hostError(dlp)
    static let nonFatal = Input.hostError(completionTimeout)
    static let correctable = Input.hostError(receiverError)
}

// MARK: - Expected actions

func persist(flag: Bool, stoppedByBroker: Bool) -> DeviceAction {
    .persist(PersistedDeviceState(linkError: flag, stoppedByBroker: stoppedByBroker))
}

func reported(_ error: HostError, flag: Bool, _ action: PCIErrorEvent.Action) -> DeviceAction {
    .emitPCIError(PCIErrorEvent(error, linkError: flag, action: action))
}

func forwarded(_ error: HostError, flag: Bool) -> DeviceAction {
    .forwardToGuest(GuestAERError(severity: error.severity, errors: error.errors),
                    then: PCIErrorEvent(error, linkError: flag, action: .forward))
}

func linkReset(
    flag: Bool, _ action: LinkResetEvent.Action, origin: LinkResetOrigin = .guestLinkReset
) -> DeviceAction {
    .emitLinkReset(LinkResetEvent(linkError: flag, origin: origin, action: action))
}

func cleared(_ reason: LinkErrorClearedEvent.Reason) -> DeviceAction {
    .emitLinkErrorCleared(LinkErrorClearedEvent(reason: reason))
}

func hostRecovered(flag: Bool) -> DeviceAction {
    .emitHostRecovery(HostRecoveryEvent(result: .successful, linkError: flag))
}

func hostRecoveryFailed(flag: Bool) -> DeviceAction {
    .emitHostRecovery(HostRecoveryEvent(result: .failed, linkError: flag))
}

/// The flag cleared by the VM resuming after the broker stopped it for the guest's link reset.
let clearedByResume: DeviceActions = [persist(flag: false, stoppedByBroker: false), cleared(.guestLinkReset)]

extension DevicePolicy {
    static let forward = DevicePolicy(.forward)
    static let stop = DevicePolicy(.stop)
    static let report = DevicePolicy(.report)
    static let forwardAutoCont = DevicePolicy(.forward, autoCont: true)
    static let stopAutoCont = DevicePolicy(.stop, autoCont: true)
}
