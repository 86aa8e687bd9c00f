import BrokerTesting
import QMPBroker
import QMPWire
import Synchronization
import Testing

/// `qmp-broker demo` is the README's main command: it must pass, print the timeline,
/// and leave nothing behind.
@Suite(.serialized) struct DemoTests {
    @Test func demoDrillPassesWithTheWholeTimeline() throws {
        let lines = Mutex<[String]>([])
        let passed = try RecoveryDemo(options: .init()).run { line in lines.withLock { $0.append(line) } }
        let text = lines.withLock { $0.joined(separator: "\n") }
        #expect(passed, "\(text)")
        for expected in ["VFIO_PCI_ERROR", "correctable", "non-fatal", "fatal", "VFIO_LINK_RESET", "STOP",
                         "VFIO_HOST_RECOVERY", "VFIO_LINK_ERROR_CLEARED", "guest-link-reset", "RESUME", "PASS:"] {
            #expect(text.contains(expected), "missing \(expected) in:\n\(text)")
        }
        #expect(!text.contains("\u{1B}["), "no colour when not asked for")
    }

    @Test func demoJSONPrintsRawEvents() throws {
        let lines = Mutex<[String]>([])
        #expect(try RecoveryDemo(options: .init(json: true)).run { line in lines.withLock { $0.append(line) } })
        let events = try lines.withLock { $0 }.map { try JSON.parse($0) }
        #expect(events.count == 8)  // three errors, link reset, STOP, host recovery, RESUME, flag cleared
        #expect(events.allSatisfy { $0["event"] != nil && $0["timestamp"] != nil })
    }
}
