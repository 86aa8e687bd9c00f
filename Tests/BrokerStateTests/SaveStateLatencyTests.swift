import BrokerState
import ErrorEvents
import Foundation
import Testing

/// `saveState` sits between a fatal error and its event (after the `stop`), so its cost is
/// measured, not assumed. The bound only catches a gross regression (an fsync per row of
/// something, a lost WAL mode); the printed figures are the measurement.
@Suite struct SaveStateLatencyTests {
    @Test func saveStateLatencyOver1000Writes() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            try store.save(.sample())
            var samples: [Duration] = []
            samples.reserveCapacity(1000)
            let clock = ContinuousClock()
            for index in 0..<1000 {
                // Alternating, so that every write changes the row.
                let state: PersistedDeviceState = index % 2 == 0 ? .flagged : .clean
                samples.append(try clock.measure { try store.saveState(vm: "vm1", id: "gpu0", state) })
            }
            samples.sort()
            let median = samples[samples.count / 2]
            let p99 = samples[samples.count * 99 / 100]
            print("saveState over 1000 writes: median \(median), p99 \(p99), max \(samples.last!)")
            #expect(median < .milliseconds(50))
        }
    }
}
