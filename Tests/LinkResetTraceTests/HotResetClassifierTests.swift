@testable import LinkResetTrace
import Testing

extension GuestReset {
    @Suite struct HotResetClassifierTests {
        private func events(_ lines: [String]) -> [QEMUTraceLine.Event] {
            lines.compactMap { QEMUTraceLine.parse($0)?.event }
        }

        @Test func hotResetOutsideASystemResetIsTheGuests() {
            var classifier = HotResetClassifier()
            #expect(classifier.observe(.vfioHotReset(host: "0000:3b:00.0", scope: .one)) == .guestHotReset(host: "0000:3b:00.0"))
            #expect(classifier.observe(.vfioHotResetResult(host: "0000:3b:00.0", result: "Success")) == nil)
        }

        @Test func hotResetInsideTheSystemBracketIsAReboot() {
            var classifier = HotResetClassifier()
            let lines = [
                "resettable_phase_enter_begin obj=0x55f901af5100(System) count=0 type=0",
                "resettable_phase_enter_begin obj=0x55f902494230(pcie-root-port) count=0 type=0",
                CapturedTraceLines.hotResetOne,
                CapturedTraceLines.hotResetSuccess,
                "resettable_phase_exit_end obj=0x55f901af5100(System) count=0",
                // vfio_reset_handler runs after the bracket: `multi` is always a system reset.
                CapturedTraceLines.hotResetMulti,
                CapturedTraceLines.hotResetOne,
            ]
            let verdicts = events(lines).compactMap { classifier.observe($0) }
            #expect(verdicts == [
                .systemReset(host: "0000:3b:00.0"),
                .systemReset(host: "0000:3b:00.0"),
                .guestHotReset(host: "0000:3b:00.0"),
            ])
            #expect(!classifier.insideSystemReset)
        }

        @Test func capturedSystemResetOpensAndClosesTheBracket() {
            var classifier = HotResetClassifier()
            var sawInside = false
            for event in events(CapturedTraceLines.session.split(separator: "\n").map(String.init)) {
                _ = classifier.observe(event)
                sawInside = sawInside || classifier.insideSystemReset
            }
            #expect(sawInside)
            #expect(!classifier.insideSystemReset)
        }
    }
}
