import ErrorEvents
import Testing

@Suite struct DeviceErrorCountersTests {
    @Test func machineCountsSignalsPerSeverity() {
        var machine = DeviceErrorMachine(policy: .report)
        _ = machine.hostError(hostError(.correctable, ["RxErr"], count: 4))
        _ = machine.hostError(completionTimeout)
        _ = machine.hostError(dlp)
        _ = machine.hostError(hostError(.fatal, ["SDES"], count: 2))
        #expect(machine.counters == DeviceErrorCounters(correctable: 4, nonFatal: 1, fatal: 3))
        #expect(machine.counters.total == 8)
        #expect(machine.counters[.fatal] == 3)
    }

    @Test func countersIgnoreEverythingButHostErrors() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped, .hostRecoveryDone, .operatorClear])
        #expect(machine.counters == DeviceErrorCounters(fatal: 1))
        _ = machine.systemReset()
        #expect(machine.counters.total == 1)
    }

    @Test func countersSaturate() {
        var counters = DeviceErrorCounters(correctable: .max - 1, nonFatal: 1)
        counters.record(.correctable, count: 5)
        #expect(counters.correctable == .max)
        #expect(counters.total == .max)
        counters.record(.nonFatal, count: -2)
        #expect(counters.nonFatal == 1)
    }
}
