import KernelTracepoint
import Testing

@Suite struct TracepointFormatTests {
    @Test func readsAERFormat() throws {
        let format = try TracepointFormat.parse(Fixtures.aerEventFormat)
        #expect(format.name == "aer_event")
        #expect(format.id == 1224)
        #expect(format.fields.map(\.name) == ["common_type", "common_flags", "common_preempt_count", "common_pid",
                                              "dev_name", "status", "severity", "tlp_header_valid", "tlp_header"])
        #expect(format.field(named: "dev_name") == TracepointField(name: "dev_name", offset: 8, size: 4, storage: .dataLocation))
        #expect(format.field(named: "tlp_header") == TracepointField(name: "tlp_header", offset: 20, size: 16, storage: .inline))
        #expect(format.field(named: "severity")?.offset == 16)
    }

    @Test func readsAnotherTracepoint() throws {
        let format = try TracepointFormat.parse(Fixtures.processExecFormat)
        #expect(format.id == 365)
        #expect(format.field(named: "filename")?.storage == .dataLocation)
        #expect(format.field(named: "old_pid") == TracepointField(name: "old_pid", offset: 16, size: 4, storage: .inline))
    }

    @Test func readsRelativeLocations() throws {
        let text = "name: x\nID: 3\n\tfield:__rel_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;\n"
        #expect(try TracepointFormat.parse(text).field(named: "name")?.storage == .relativeLocation)
    }

    @Test func refusesFilesThatSayNothing() {
        #expect(throws: TracepointFormatError.malformed("no ID line")) { try TracepointFormat.parse("name: aer_event\n") }
        #expect(throws: TracepointFormatError.malformed("no name line")) { try TracepointFormat.parse("ID: 3\n") }
        #expect(throws: TracepointFormatError.self) { try TracepointFormat.parse("name: x\nID: many\n") }
        #expect(throws: TracepointFormatError.self) { try TracepointFormat.parse("name: x\nID: 1\n\tfield:u32 a;\toffset:x;\tsize:4;\n") }
        #expect(throws: TracepointFormatError.self) { try TracepointFormat.parse("name: x\nID: 1\n\tfield:__data_loc char[] a;\toffset:8;\tsize:2;\n") }
    }

    /// Every prefix of the file either parses or throws; none traps.
    @Test func cutAtEveryPointNeverTraps() {
        let text = Array(Fixtures.aerEventFormat.utf8)
        for length in 0...text.count {
            _ = try? TracepointFormat.parse(String(decoding: text[..<length], as: UTF8.self))
        }
    }

    @Test func aerLayoutNeedsItsFields() throws {
        let withoutSeverity = Fixtures.aerEventFormat.split(separator: "\n").filter { !$0.contains("severity;") }.joined(separator: "\n")
        #expect(throws: TracepointFormatError.missingField("severity")) {
            try AERTraceLayout(try TracepointFormat.parse(withoutSeverity))
        }
        #expect(throws: TracepointFormatError.missingField("dev_name")) {
            try AERTraceLayout(try TracepointFormat.parse(Fixtures.processExecFormat))
        }
    }

    @Test func cpuLists() {
        #expect(CPUList.parse("0-1\n") == [0, 1])
        #expect(CPUList.parse("0-3,6,8-9") == [0, 1, 2, 3, 6, 8, 9])
        #expect(CPUList.parse("5") == [5])
        #expect(CPUList.parse("\n") == [])
        #expect(CPUList.parse("3-1") == nil)
        #expect(CPUList.parse("a") == nil)
        #expect(CPUList.parse("0-1-2") == nil)
        #expect(CPUList.parse("0,,1") == nil)
    }
}
