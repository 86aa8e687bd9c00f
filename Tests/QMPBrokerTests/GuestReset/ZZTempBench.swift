import Testing
import Glibc
@testable import QMPBroker
extension GuestReset {
@Suite struct ZZTempBench {
    @Test func bench() {
        let lines = CapturedTraceLines.session.split(separator: "\n").map { Array($0.utf8) }
        var count = 0
        let start = Deadline.now()
        for _ in 0..<2000 { for line in lines { if QEMUTraceLine.parse(line[...]) != nil { count += 1 } } }
        let elapsed = Deadline.now() - start
        print("BENCH \(lines.count * 2000) lines in \(elapsed) s = \(elapsed / Double(lines.count * 2000) * 1e9) ns/line, \(count) parsed")
    }
}
}
