@testable import LinkResetTrace
import Testing

extension GuestReset {
    /// Transcripts of the watch: each input, the actions it must produce, the state after.
    @Suite struct LinkResetWatchTests {
        enum Input: CustomStringConvertible {
            case attachStarted, attached, attachFailed(String), verified(disabled: [String]), logReplaced
            case tick, detached(String)

            var description: String {
                switch self {
                case .attachStarted: "attachStarted"
                case .attached: "attached"
                case .attachFailed(let reason): "attachFailed(\(reason))"
                case .verified(let disabled): "verified(disabled: \(disabled))"
                case .logReplaced: "logReplaced"
                case .tick: "tick"
                case .detached(let reason): "detached(\(reason))"
                }
            }
        }

        struct Step {
            let input: Input
            let expected: [LinkResetWatch.Action]
            let state: LinkResetWatch.State

            init(_ input: Input, _ expected: [LinkResetWatch.Action], _ state: LinkResetWatch.State) {
                self.input = input
                self.expected = expected
                self.state = state
            }
        }

        private func expectTranscript(_ steps: [Step], sourceLocation: SourceLocation = #_sourceLocation) {
            var watch = LinkResetWatch()
            for (index, step) in steps.enumerated() {
                let actions: [LinkResetWatch.Action]
                switch step.input {
                case .attachStarted: actions = watch.attachStarted()
                case .attached: actions = watch.attached()
                case .attachFailed(let reason): actions = watch.attachFailed(reason)
                case .verified(let disabled): actions = watch.verified(disabled: disabled)
                case .logReplaced: actions = watch.logReplaced()
                case .tick: actions = watch.tick()
                case .detached(let reason): actions = watch.detached(reason)
                }
                #expect(actions == step.expected, "step \(index + 1): \(step.input)", sourceLocation: sourceLocation)
                #expect(watch.state == step.state, "state after step \(index + 1): \(step.input)", sourceLocation: sourceLocation)
                #expect(watch.isIntact == (step.state == .intact), sourceLocation: sourceLocation)
            }
        }

        static let on = LinkResetWatch.Action.announce(active: true, reason: "attached")

        static func off(_ reason: String) -> LinkResetWatch.Action { .announce(active: false, reason: reason) }

        @Test func attachAnnouncesOnceAndLosingTheVMMAnnouncesTheEnd() {
            #expect(LinkResetWatch().reason == "not attached yet")
            expectTranscript([
                Step(.attachStarted, [], .attaching),
                Step(.attached, [Self.on], .intact),
                Step(.attached, [], .intact),
                Step(.verified(disabled: []), [], .intact),
                Step(.detached("VMM disconnected"), [Self.off("VMM disconnected")], .detached(reason: "VMM disconnected")),
                // Already down: the broker's own stop says nothing more.
                Step(.detached("broker stopping"), [], .detached(reason: "broker stopping")),
            ])
        }

        @Test func aDisabledEventBreaksTheWatchAndIsReasserted() {
            let reason = "trace events disabled in QEMU: pci_cfg_write"
            expectTranscript([
                Step(.attachStarted, [], .attaching),
                Step(.attached, [Self.on], .intact),
                Step(.verified(disabled: ["pci_cfg_write"]), [Self.off(reason), .reassert], .broken(reason: reason)),
                // A check while broken (the re-assert is in flight) is not judged again.
                Step(.verified(disabled: ["pci_cfg_write"]), [], .broken(reason: reason)),
                Step(.attachStarted, [], .attaching),
                Step(.attached, [Self.on], .intact),
            ])
        }

        @Test func aFailedAttachIsAnnouncedOncePerReasonAndNeverRevivedByACheck() {
            expectTranscript([
                Step(.attachStarted, [], .attaching),
                Step(.attachFailed("logfile failed: x"), [Self.off("logfile failed: x")], .broken(reason: "logfile failed: x")),
                Step(.attachFailed("logfile failed: x"), [], .broken(reason: "logfile failed: x")),
                Step(.attachFailed("other"), [Self.off("other")], .broken(reason: "other")),
                Step(.verified(disabled: []), [], .broken(reason: "other")),
            ])
        }

        @Test func aReplacedLogIsAnnouncedAndReattached() {
            let reason = "the trace log was removed or replaced"
            expectTranscript([
                Step(.logReplaced, [], .detached(reason: "not attached yet")),  // nothing to lose before attach
                Step(.attachStarted, [], .attaching),
                Step(.attached, [Self.on], .intact),
                Step(.logReplaced, [Self.off(reason), .reattach], .broken(reason: reason)),
                Step(.attachStarted, [], .attaching),
                Step(.attached, [Self.on], .intact),
            ])
        }
    
        @Test func theTimerChecksAnIntactWatchAndRetriesABrokenOne() {
            expectTranscript([
                Step(.tick, [], .detached(reason: "not attached yet")),
                Step(.attachStarted, [], .attaching),
                Step(.tick, [], .attaching),  // an attach in flight is not doubled
                Step(.attachFailed("logfile failed: x"), [Self.off("logfile failed: x")], .broken(reason: "logfile failed: x")),
                Step(.tick, [.reattach], .broken(reason: "logfile failed: x")),
                // The retry fails the same way: nothing new to announce.
                Step(.attachStarted, [], .attaching),
                Step(.attachFailed("logfile failed: x"), [], .broken(reason: "logfile failed: x")),
                Step(.attachStarted, [], .attaching),
                Step(.attached, [Self.on], .intact),
                Step(.tick, [.verify], .intact),
                Step(.detached("VMM disconnected"), [Self.off("VMM disconnected")], .detached(reason: "VMM disconnected")),
                Step(.tick, [], .detached(reason: "VMM disconnected")),
            ])
        }
    }
}
