@testable import LinkResetTrace
import QMPWire
import Testing

extension GuestReset {
    @Suite struct TraceLogLineSplittingTests {
        let text = Array((CapturedTraceLines.session + "\n").utf8)

        /// The lines' text without their `\n`.
        private func strings(_ lines: [[UInt8]]) -> [String] {
            lines.map { String(decoding: $0.last == 10 ? $0.dropLast() : $0[...], as: UTF8.self) }
        }

        @Test func wholeReadGivesEveryLine() {
            var splitter = LineSplitter.traceLog
            #expect(strings(splitter.lines(text)) == CapturedTraceLines.session.split(separator: "\n").map(String.init))
        }

        @Test func readCutAtEveryPointGivesTheSameLines() {
            let prefix = Array(text.prefix(600))
            var whole = LineSplitter.traceLog
            let expected = whole.lines(prefix)
            for cut in 0...prefix.count {
                var splitter = LineSplitter.traceLog
                let lines = splitter.lines(Array(prefix[..<cut])) + splitter.lines(Array(prefix[cut...]))
                #expect(lines == expected, "cut at \(cut)")
            }
        }

        @Test func byteByByte() {
            var splitter = LineSplitter.traceLog
            var lines: [[UInt8]] = []
            for byte in text.prefix(400) { lines += splitter.lines([byte]) }
            var whole = LineSplitter.traceLog
            #expect(lines == whole.lines(Array(text.prefix(400))))
        }

        @Test func overlongLineIsDroppedAndReadingGoesOn() {
            var splitter = LineSplitter.traceLog
            let long = [UInt8](repeating: UInt8(ascii: "x"), count: LineSplitter.traceLog.maximumLineLength + 1)
            // The long line arrives in two reads, its end in a third with the next line.
            #expect(splitter.lines(Array(long.prefix(100))).isEmpty)
            #expect(splitter.lines(Array(long.dropFirst(100))).isEmpty)
            #expect(strings(splitter.lines(Array("xx\nok\n".utf8))) == ["ok"])
            #expect(splitter.droppedLines == 1)
            // Long within one read.
            #expect(strings(splitter.lines(long + Array("\nnext\n".utf8))) == ["next"])
            #expect(splitter.droppedLines == 2)
            // A line of exactly the maximum passes.
            let maximal = [UInt8](repeating: UInt8(ascii: "y"), count: LineSplitter.traceLog.maximumLineLength)
            #expect(splitter.lines(maximal + [10]).count == 1)
        }

        @Test func resetForgetsAPartialLine() {
            var splitter = LineSplitter.traceLog
            #expect(splitter.lines(Array("pci_cfg_wr".utf8)).isEmpty)
            splitter.reset()
            #expect(strings(splitter.lines(Array("a\n".utf8))) == ["a"])
        }
    }
}
