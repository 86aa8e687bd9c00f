@testable import QMPBroker
import Testing

/// What `qmp_broker_devices_unprotected` and the `source` labels say for each combination
/// of watch and trigger.
@Suite struct VMProtectionTests {
    private let takenOver = VMProtection.Device(id: "hostdev0", triggerSource: "takeover")
    private let handedOver = VMProtection.Device(id: "hostdev1", triggerSource: "eventfd")
    private let deaf = VMProtection.Device(id: "hostdev2", triggerSource: "none")

    @Test func anIntactWatchCountsOnlyDevicesWithoutATrigger() {
        let protection = VMProtection(watchIntact: true, source: nil, devices: [takenOver, handedOver, deaf])
        #expect(protection.watchSource == "trace-log")
        #expect(protection.unprotectedDevices == 1)
        #expect([takenOver, handedOver, deaf].map(\.triggerActive) == [true, true, false])
    }

    @Test func aBrokenWatchLeavesEveryDeviceUnprotected() {
        let protection = VMProtection(watchIntact: false, source: "usdt", devices: [takenOver, handedOver])
        #expect(protection.watchSource == "none")
        #expect(protection.unprotectedDevices == 2)
    }

    @Test func theSourceComesFromTheStatusWhenItNamesOne() {
        #expect(VMProtection(watchIntact: true, source: "usdt", devices: []).watchSource == "usdt")
        #expect(VMProtection(watchIntact: true, source: "usdt", devices: []).unprotectedDevices == 0)
    }
}
