import BrokerState
import ErrorEvents
import Foundation
import Testing

/// `saveState` sits between a fatal error and its event (after the `stop`), so its cost is
/// measured, not assumed. The bound (about 20 times the median seen on a loaded debug
/// build) only catches a gross regression such as an fsync per write on a busy disk;
/// `DurabilityTests` pins the settings themselves. The printed figures are the measurement.
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
            print("saveState over 1000 writes: median \(microseconds(median)) µs, p99 \(microseconds(p99)) µs, max \(microseconds(samples.last!)) µs")
            #expect(median < .milliseconds(1))
        }
    }
}

private func microseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
}
