import ErrorEvents
import Testing
import VFIOWatch

@Suite struct AERCountersTests {
    @Test func parsesAFatalFileAsLinux61PrintsIt() throws {
        let text = KernelAERFile.text(.fatal, bits: [4: 1], total: 1)
        #expect(text.hasPrefix("Undefined 0\nDLP 1\nSDES 0\nTLP 0\n"))
        let counters = AERCounters(parsing: text, severity: .fatal)
        #expect(counters.malformedLines.isEmpty)
        #expect(counters.total == 1)
        #expect(counters.count(named: "DLP") == 1)
        #expect(counters.counts.count == 18)  // Every named uncorrectable bit of 6.1, none unnamed.
        let dlp = try #require(counters.counts.first { $0.name == "DLP" })
        #expect(dlp.error?.bit == 4)
        #expect(dlp.error?.qemuName == "DLP")
    }

    @Test func everyNameLinux61PrintsHasItsBit() {
        for (severity, names) in [(Severity.correctable, KernelAERFile.correctableNames), (.nonFatal, KernelAERFile.uncorrectableNames), (.fatal, KernelAERFile.uncorrectableNames)] {
            let counters = AERCounters(parsing: KernelAERFile.text(severity), severity: severity)
            for entry in counters.counts {
                #expect(entry.error?.bit == names.first { $0.value == entry.name }?.key, "\(entry.name)")
                #expect(entry.error?.correctable == severity.isCorrectable)
            }
        }
    }

    @Test func namesOfTheNewestKernelsHaveTheirBits() {
        // Bits 27–31 are named (and counted) only by the newest kernels.
        let text = "DMWrReqBlocked 1\nIDECheck 0\nMisIDETLP 0\nPCRC_CHECK 0\nTLPXlatBlocked 2\nTOTAL_ERR_NONFATAL 3\n"
        let counters = AERCounters(parsing: text, severity: .nonFatal)
        #expect(counters.malformedLines.isEmpty)
        #expect(counters.counts.map { $0.error?.bit } == [27, 28, 29, 30, 31])
        #expect(counters.counts.allSatisfy { $0.error?.qemuName == nil })
    }

    @Test func unnamedBitsKeepTheKernelsName() throws {
        let text = KernelAERFile.text(.fatal, bits: [7: 2], total: 2)
        #expect(text.contains("dev_fatal_errs_bit[7] 2\n"))
        let counters = AERCounters(parsing: text, severity: .fatal)
        let unnamed = try #require(counters.counts.first { $0.name == "dev_fatal_errs_bit[7]" })
        #expect(unnamed.count == 2)
        #expect(unnamed.error?.bit == 7)
        #expect(unnamed.error?.sysfsName == "dev_fatal_errs_bit[7]")

        let correctable = AERCounters(parsing: "dev_cor_errs_bit[3] 5\nTOTAL_ERR_COR 5\n", severity: .correctable)
        #expect(correctable.counts.first?.error?.bit == 3)
        #expect(correctable.counts.first?.error?.correctable == true)

        // The form SPEC section 9 quotes; bit 22 resolves whichever way it is printed.
        let spec = AERCounters(parsing: "dev_fatal_errs_bit[22] 1\nTOTAL_ERR_FATAL 1\n", severity: .fatal)
        #expect(spec.counts.first?.error?.bit == 22)
    }

    @Test func anotherFilesUnnamedBitPrefixIsNotTrusted() {
        let counters = AERCounters(parsing: "dev_nonfatal_errs_bit[7] 1\nTOTAL_ERR_FATAL 1\n", severity: .fatal)
        #expect(counters.counts.count == 1)
        #expect(counters.counts.first?.error == nil)
    }

    @Test func anUnknownNameIsCountedUnderItsName() {
        let counters = AERCounters(parsing: "FutureErr 4\nTOTAL_ERR_COR 4\n", severity: .correctable)
        #expect(counters.malformedLines.isEmpty)
        #expect(counters.counts == [AERErrorCount(name: "FutureErr", error: nil, count: 4)])
    }

    @Test func garbageLinesAreReportedAndTheRestIsParsed() {
        let text = """
            RxErr 3
            hello
            BadTLP x
            BadDLLP 1 2
            Rollover -1
            Timeout 99999999999999999999999
            RxErr 4
            TOTAL_ERR_FATAL 1

            NonFatalErr\t2
            TOTAL_ERR_COR 5

            """
        let counters = AERCounters(parsing: text, severity: .correctable)
        #expect(counters.count(named: "RxErr") == 3)
        #expect(counters.count(named: "NonFatalErr") == 2)
        #expect(counters.total == 5)
        #expect(counters.malformedLines.map(\.lineNumber) == [2, 3, 4, 5, 6, 7, 8])
        #expect(counters.malformedLines.map(\.reason) == [
            "expected NAME COUNT",
            "count is not a decimal number",
            "expected NAME COUNT",
            "count is not a decimal number",
            "count is not a decimal number",
            "duplicate counter",
            "total of another severity; expected TOTAL_ERR_COR",
        ])
        #expect(counters.malformedLines[0].description == "line 2 \"hello\": expected NAME COUNT")
    }

    @Test func binaryGarbageAndHugeLinesStayBounded() {
        let long = String(repeating: "A", count: 10_000)
        let counters = AERCounters(parsing: "\u{0}\u{1}\u{FFFD}\n\(long)\nDLP 1\n", severity: .fatal)
        #expect(counters.count(named: "DLP") == 1)
        #expect(counters.total == nil)
        #expect(counters.malformedLines.count == 2)
        #expect(counters.malformedLines[1].text.count <= 121)
    }

    @Test func anEmptyFileHasNoCounters() {
        let counters = AERCounters(parsing: "", severity: .nonFatal)
        #expect(counters.counts.isEmpty && counters.total == nil && counters.malformedLines.isEmpty)
    }

    @Test func fileAndTotalNames() {
        #expect(AERCounters.fileName(for: .correctable) == "aer_dev_correctable")
        #expect(AERCounters.fileName(for: .nonFatal) == "aer_dev_nonfatal")
        #expect(AERCounters.fileName(for: .fatal) == "aer_dev_fatal")
        #expect(AERCounters.totalName(for: .correctable) == "TOTAL_ERR_COR")
        #expect(AERCounters.totalName(for: .nonFatal) == "TOTAL_ERR_NONFATAL")
        #expect(AERCounters.totalName(for: .fatal) == "TOTAL_ERR_FATAL")
    }
}
