import BrokerState
import ErrorEvents
import Testing

@Suite struct StoredDeviceTests {
    @Test func savedDeviceReadsBackField_for_field() throws {
        let store = try StateStore.inMemory()
        let device = StoredDevice.sample(
            policy: DevicePolicy(.stop, autoCont: true), state: .stoppedByBroker,
            counters: DeviceErrorCounters(correctable: 3, nonFatal: 2, fatal: 1))
        try store.save(device)
        #expect(try store.device(vm: "vm1", id: "gpu0") == device)
    }

    @Test func absentDeviceIsNil() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample())
        #expect(try store.device(vm: "vm1", id: "nic0") == nil)
        #expect(try store.device(vm: "vm2", id: "gpu0") == nil)
    }

    @Test func saveReplacesEveryField() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(state: .flagged))
        let replaced = StoredDevice.sample(
            host: "0000:02:00.1", policy: DevicePolicy(.report), state: .clean,
            counters: DeviceErrorCounters(correctable: 9))
        try store.save(replaced)
        #expect(try store.device(vm: "vm1", id: "gpu0") == replaced)
        #expect(try store.devices(vm: "vm1").count == 1)
    }

    @Test func devicesAreScopedToTheirVMAndSortedByID() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(vm: "vm1", id: "nic0"))
        try store.save(.sample(vm: "vm2", id: "gpu0", state: .flagged))
        try store.save(.sample(vm: "vm1", id: "gpu0"))
        #expect(try store.devices(vm: "vm1").map(\.id) == ["gpu0", "nic0"])
        #expect(try store.devices(vm: "vm2") == [.sample(vm: "vm2", id: "gpu0", state: .flagged)])
        #expect(try store.devices(vm: "vm3").isEmpty)
    }

    @Test func removeDeviceForgetsOnlyThatDevice() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(id: "gpu0"))
        try store.save(.sample(id: "gpu1"))
        #expect(try store.removeDevice(vm: "vm1", id: "gpu0"))
        #expect(try store.devices(vm: "vm1").map(\.id) == ["gpu1"])
        // vfio-device-del twice is not an error for the store.
        #expect(try !store.removeDevice(vm: "vm1", id: "gpu0"))
    }

    @Test func historyOutlivesTheDevice() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample())
        try store.recordHistory(.sampleError())
        try store.removeDevice(vm: "vm1", id: "gpu0")
        #expect(try store.errorRecords(vm: "vm1") == [.sampleError()])
    }

    @Test(arguments: [
        DeviceErrorCounters(correctable: .max, nonFatal: 0, fatal: 1),
        DeviceErrorCounters(correctable: UInt64(Int64.max) - 1, nonFatal: 42, fatal: .max),
    ])
    func countersRoundTripUpToSaturation(_ counters: DeviceErrorCounters) throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(counters: counters))
        #expect(try store.device(vm: "vm1", id: "gpu0")?.counters == counters)
    }

    @Test func aCountPastTheLargestIntegerReadsAsSaturated() throws {
        // Unreachable in practice (2^63 errors); stored clamped, read as the domain's maximum.
        let store = try StateStore.inMemory()
        try store.save(.sample(counters: DeviceErrorCounters(fatal: UInt64(Int64.max) + 5)))
        #expect(try store.device(vm: "vm1", id: "gpu0")?.counters.fatal == .max)
    }
}
