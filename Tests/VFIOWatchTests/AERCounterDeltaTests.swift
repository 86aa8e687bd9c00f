import ErrorEvents
import Testing
import VFIOWatch

@Suite struct AERCounterDeltaTests {
    func counters(_ severity: Severity, bits: [Int: UInt64] = [:], total: UInt64 = 0) -> AERCounters {
        AERCounters(parsing: KernelAERFile.text(severity, bits: bits, total: total), severity: severity)
    }

    @Test func aGrownCounterIsReportedWithItsNameAndGrowth() throws {
        let before = counters(.nonFatal, bits: [14: 1], total: 1)
        let after = counters(.nonFatal, bits: [14: 3], total: 3)
        guard case .grew(let delta) = after.growth(since: before) else {
            Issue.record("expected growth")
            return
        }
        #expect(delta.severity == .nonFatal)
        #expect(delta.names == ["CmpltTO"])
        #expect(delta.errors.first?.count == 2)
        #expect(delta.errors.first?.error?.bit == 14)
        #expect(delta.total == 2)
    }

    @Test func severalBitsOfOneMessageAreAllReported() {
        // One ERR_FATAL message with DLP and SDES set: TOTAL grows by one, both bits too.
        let delta = counters(.fatal, bits: [4: 1, 5: 1], total: 1).growth(since: counters(.fatal))
        #expect(delta == .grew(AERCounterDelta(severity: .fatal, errors: [
            AERErrorCount(name: "DLP", error: AERError.named("DLP", correctable: false), count: 1),
            AERErrorCount(name: "SDES", error: AERError.named("SDES", correctable: false), count: 1),
        ], total: 1)))
    }

    @Test func anUnnamedBitAppearingCountsFromZero() {
        let delta = counters(.fatal, bits: [9: 2], total: 2).growth(since: counters(.fatal))
        guard case .grew(let grown) = delta else {
            Issue.record("expected growth")
            return
        }
        #expect(grown.names == ["dev_fatal_errs_bit[9]"])
        #expect(grown.errors.first?.count == 2)
        #expect(grown.errors.first?.error?.mask == 1 << 9)
    }

    @Test func totalAloneGrowingIsStillGrowth() {
        // A masked bit: the message is counted, no bit is.
        let delta = counters(.correctable, total: 1).growth(since: counters(.correctable))
        #expect(delta == .grew(AERCounterDelta(severity: .correctable, errors: [], total: 1)))
    }

    @Test func sameCountsAreUnchanged() {
        let same = counters(.fatal, bits: [4: 2], total: 2)
        #expect(same.growth(since: same) == .unchanged)
    }

    @Test func anyCounterGoingDownMeansReEnumerated() {
        #expect(counters(.fatal, bits: [4: 1], total: 1).growth(since: counters(.fatal, bits: [4: 2], total: 2)) == .wentBackwards)
        // Another counter grew at the same time: still a new baseline, nothing reported.
        #expect(counters(.fatal, bits: [4: 1, 14: 5], total: 6).growth(since: counters(.fatal, bits: [4: 2], total: 2)) == .wentBackwards)
        // The total alone went down.
        #expect(counters(.fatal, bits: [4: 2], total: 1).growth(since: counters(.fatal, bits: [4: 2], total: 2)) == .wentBackwards)
        // An unnamed bit vanished, i.e. went back to zero.
        #expect(counters(.fatal).growth(since: counters(.fatal, bits: [9: 1], total: 1)) == .wentBackwards)
    }
}

@Suite struct AERCounterSnapshotTests {
    func snapshot(fatal: [Int: UInt64] = [:], nonFatal: [Int: UInt64] = [:], correctable: [Int: UInt64] = [:]) -> AERCounterSnapshot {
        func read(_ severity: Severity, _ bits: [Int: UInt64]) -> AERCounters {
            AERCounters(parsing: KernelAERFile.text(severity, bits: bits, total: bits.values.reduce(0, +)), severity: severity)
        }
        return AERCounterSnapshot(correctable: read(.correctable, correctable), nonFatal: read(.nonFatal, nonFatal), fatal: read(.fatal, fatal))
    }

    @Test func eachSeverityThatGrewIsReportedMostSevereFirst() {
        let change = snapshot(fatal: [4: 1], nonFatal: [14: 1], correctable: [0: 3]).changes(since: snapshot())
        #expect(change.deltas.map(\.severity) == [.fatal, .nonFatal, .correctable])
        #expect(change.mostSevere == .fatal)
        #expect(change[.fatal]?.names == ["DLP"])
        #expect(change[.nonFatal]?.names == ["CmpltTO"])
        #expect(change[.correctable]?.names == ["RxErr"])
        #expect(change[.correctable]?.errors.first?.count == 3)
        #expect(change.rebaselined.isEmpty)
    }

    @Test func nonFatalAloneIsClassifiedNonFatal() {
        let change = snapshot(nonFatal: [14: 1], correctable: [0: 1]).changes(since: snapshot(correctable: [0: 1]))
        #expect(change.mostSevere == .nonFatal)
        #expect(change.deltas.count == 1)
    }

    @Test func nothingGrewIsEmpty() {
        let change = snapshot(fatal: [4: 1]).changes(since: snapshot(fatal: [4: 1]))
        #expect(change.isEmpty)
        #expect(change.mostSevere == nil)
    }

    @Test func aFileThatWentBackwardsIsRebaselinedOthersStillReport() {
        let change = snapshot(fatal: [4: 1], nonFatal: [14: 1]).changes(since: snapshot(fatal: [4: 5]))
        #expect(change.rebaselined == [.fatal])
        #expect(change.deltas.map(\.severity) == [.nonFatal])
    }

    @Test func aFileThatAppearedIsABaselineAndOneThatVanishedReportsNothing() {
        var before = snapshot()
        before.fatal = nil
        var after = snapshot(fatal: [4: 1], correctable: [0: 1])
        after.correctable = nil
        let change = after.changes(since: before)
        #expect(change.isEmpty)
        #expect(change.rebaselined == [.fatal])
    }

    @Test func noFilesMeansNoAERCapability() {
        #expect(!AERCounterSnapshot().hasAERCounters)
        #expect(snapshot().hasAERCounters)
        #expect(AERCounterSnapshot().changes(since: AERCounterSnapshot()) == AERCounterChange())
    }
}
