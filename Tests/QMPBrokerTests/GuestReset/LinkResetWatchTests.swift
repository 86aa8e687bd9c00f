import Testing
@testable import QMPBroker

extension GuestReset {
    /// Transcripts of the watch's state: each input, the state after it, the actions.
    @Suite struct LinkResetWatchTests {
        @Test func attachAnnouncesOnceAndLosingTheVMMAnnouncesTheEnd() {
            var watch = LinkResetWatch()
            #expect(!watch.isIntact)
            #expect(watch.reason == "not attached yet")
            #expect(watch.attachStarted() == [])
            #expect(watch.reason == "attaching")
            #expect(watch.attached() == [.announce(active: true, reason: "attached")])
            #expect(watch.isIntact && watch.reason == nil)
            #expect(watch.attached() == [])
            #expect(watch.verified(disabled: []) == [])
            #expect(watch.detached("VMM disconnected") == [.announce(active: false, reason: "VMM disconnected")])
            #expect(watch.state == .detached(reason: "VMM disconnected"))
            // Already down: the broker's own stop says nothing more.
            #expect(watch.detached("broker stopping") == [])
        }

        @Test func aDisabledEventBreaksTheWatchAndIsReasserted() {
            var watch = LinkResetWatch()
            _ = watch.attachStarted()
            _ = watch.attached()
            let reason = "trace events disabled in QEMU: pci_cfg_write"
            #expect(watch.verified(disabled: ["pci_cfg_write"]) == [.announce(active: false, reason: reason), .reassert])
            #expect(watch.state == .broken(reason: reason))
            #expect(watch.reason == reason)
            // A check while broken (the re-assert is in flight) is not judged again.
            #expect(watch.verified(disabled: ["pci_cfg_write"]) == [])
            #expect(watch.attachStarted() == [])
            #expect(watch.attached() == [.announce(active: true, reason: "attached")])
        }

        @Test func aFailedAttachIsAnnouncedOnceAndNotBeforeAnything() {
            var watch = LinkResetWatch()
            _ = watch.attachStarted()
            #expect(watch.attachFailed("logfile failed: x") == [.announce(active: false, reason: "logfile failed: x")])
            #expect(watch.attachFailed("logfile failed: x") == [])
            #expect(watch.attachFailed("other") == [.announce(active: false, reason: "other")])
            #expect(!watch.isIntact)
            // A check never revives a broken watch: only a successful attach does.
            #expect(watch.verified(disabled: []) == [])
            #expect(!watch.isIntact)
        }
    }
}

extension GuestReset.LinkResetWatchTests {
    @Test func aReplacedLogIsAnnouncedAndReattached() {
        var watch = LinkResetWatch()
        #expect(watch.logReplaced() == [])  // nothing to lose before attach
        _ = watch.attachStarted()
        _ = watch.attached()
        #expect(watch.logReplaced() == [.announce(active: false, reason: "the trace log was removed or replaced"), .reattach])
        #expect(!watch.isIntact)
        #expect(watch.attachStarted() == [])
        #expect(watch.attached() == [.announce(active: true, reason: "attached")])
    }
}
