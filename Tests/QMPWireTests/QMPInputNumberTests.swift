@testable import QMPWire
import Testing

/// QEMU reads integers as int64, else uint64, else double; jansson only has the
/// first and the last, so values past INT64_MAX become reals (documented in QMPNumber).
struct QMPInputNumberTests {
    func value(_ text: String) -> JSON? {
        var reader = QMPInputReader()
        var result: JSON?
        reader.feed(Array((text + " ").utf8)) { if case .value(let json) = $0 { result = json } }
        return result
    }

    @Test func int64Range() {
        #expect(value("0")?.integer == 0)
        #expect(value("-0")?.integer == 0)
        #expect(value("9223372036854775807")?.integer == .max)
        #expect(value("-9223372036854775808")?.integer == .min)
    }

    @Test func beyondInt64IsReal() {
        #expect(value("9223372036854775808")?.kind == .real)
        #expect(value("18446744073709551615")?.number == 18_446_744_073_709_551_615.0)
        #expect(value("18446744073709551616")?.number == 18_446_744_073_709_551_616.0)
        #expect(value("-9223372036854775809")?.number == -9_223_372_036_854_775_809.0)
    }

    @Test func floats() {
        #expect(value("1.5E3")?.number == 1500)
        #expect(value("-0.1e-1")?.number == -0.01)
        #expect(value("0.1")?.kind == .real)
    }

    /// QEMU keeps `inf`; jansson cannot hold it.
    @Test func overflowIsClampedToTheLargestDouble() {
        #expect(value("1e999")?.number == .greatestFiniteMagnitude)
        #expect(value("-1e999")?.number == -.greatestFiniteMagnitude)
    }
}
