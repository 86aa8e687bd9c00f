import BrokerState
import Dispatch
import ErrorEvents
import Synchronization
import Testing

@Suite struct SaveStateTests {
    @Test func saveStateChangesOnlyTheState() throws {
        let store = try StateStore.inMemory()
        var device = StoredDevice.sample(
            policy: DevicePolicy(.stop), counters: DeviceErrorCounters(nonFatal: 4))
        try store.save(device)
        try store.saveState(vm: "vm1", id: "gpu0", .stoppedByBroker)
        device.state = .stoppedByBroker
        #expect(try store.device(vm: "vm1", id: "gpu0") == device)
    }

    @Test func saveStateOfAnUnsavedDeviceThrowsAndStoresNothing() throws {
        let store = try StateStore.inMemory()
        #expect(throws: StateStoreError.unknownDevice(vm: "vm1", id: "gpu0")) {
            try store.saveState(vm: "vm1", id: "gpu0", .flagged)
        }
        #expect(try store.device(vm: "vm1", id: "gpu0") == nil)
    }

    @Test func noBrokerStopWhenNoDeviceHoldsOne() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(state: .flagged))
        #expect(try store.brokerStop(vm: "vm1") == nil)
    }

    @Test func brokerStopStartsWithTheFirstOwningDeviceAndEndsWithTheLast() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(id: "gpu0"))
        try store.save(.sample(id: "gpu1"))

        let before = WallClock.microsecondsSinceEpoch()
        try store.saveState(vm: "vm1", id: "gpu1", .stoppedByBroker)
        let after = WallClock.microsecondsSinceEpoch()
        let first = try #require(try store.brokerStop(vm: "vm1"))
        #expect(first.devices == ["gpu1"])
        #expect((before...after).contains(first.microsecondsSinceEpoch))

        // A second owner, and a repeated write of the first, keep the original time.
        try store.saveState(vm: "vm1", id: "gpu0", .stoppedByBroker)
        try store.saveState(vm: "vm1", id: "gpu1", .stoppedByBroker)
        try store.save(.sample(id: "gpu1", state: .stoppedByBroker))
        let both = try #require(try store.brokerStop(vm: "vm1"))
        #expect(both.microsecondsSinceEpoch == first.microsecondsSinceEpoch)
        #expect(Set(both.devices) == ["gpu0", "gpu1"])

        try store.saveState(vm: "vm1", id: "gpu1", .flagged)
        #expect(try store.brokerStop(vm: "vm1")?.devices == ["gpu0"])
        try store.saveState(vm: "vm1", id: "gpu0", .clean)
        #expect(try store.brokerStop(vm: "vm1") == nil)
    }

    @Test func brokerStopIsPerVM() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample(vm: "vm1", state: .stoppedByBroker))
        try store.save(.sample(vm: "vm2"))
        #expect(try store.brokerStop(vm: "vm1")?.devices == ["gpu0"])
        #expect(try store.brokerStop(vm: "vm2") == nil)
    }

    @Test func queuesOfManyVMsShareOneStore() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            let vms = (0..<4).map { "vm\($0)" }
            for vm in vms { try store.save(.sample(vm: vm)) }
            // Each VM's event loop writes concurrently with the others.
            let failures = Mutex<[StateStoreError]>([])
            DispatchQueue.concurrentPerform(iterations: vms.count) { index in
                for round in 0..<50 {
                    do throws(StateStoreError) {
                        try store.saveState(vm: vms[index], id: "gpu0", round % 2 == 0 ? .flagged : .clean)
                    } catch {
                        failures.withLock { $0.append(error) }
                    }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty)
            for vm in vms {
                #expect(try store.device(vm: vm, id: "gpu0")?.state == .clean)
            }
        }
    }
}
