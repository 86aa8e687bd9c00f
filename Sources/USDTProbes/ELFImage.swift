/// The parts of an ELF64 little-endian file that USDT needs, read from its bytes: the
/// section headers (to find `.note.stapsdt` and `.stapsdt.base`) and the loadable
/// segments (to turn a virtual address into a file offset, which the uprobe PMU takes).
/// No I/O: the caller reads the file.
package struct ELFImage: Sendable {
    package struct Section: Equatable, Sendable {
        package let name: String
        package let address: UInt64
        package let offset: UInt64
        package let size: UInt64
        package let type: UInt32
    }

    /// A `PT_LOAD` program header: `fileOffset..<fileOffset+fileSize` is mapped at `virtualAddress`.
    package struct LoadSegment: Equatable, Sendable {
        package let virtualAddress: UInt64
        package let fileOffset: UInt64
        package let fileSize: UInt64
        package let memorySize: UInt64
    }

    package enum Failure: Error, Equatable, Sendable {
        case notELF64LittleEndian
        case truncated(String)
    }

    package let bytes: [UInt8]
    package let sections: [Section]
    package let loadSegments: [LoadSegment]

    package init(bytes: [UInt8]) throws(Failure) {
        self.bytes = bytes
        // e_ident: 0x7f 'E' 'L' 'F', class 2 (64-bit), data 1 (little-endian).
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
              bytes[4] == 2, bytes[5] == 1 else { throw .notELF64LittleEndian }
        let reader = LittleEndianBytes(bytes)
        let programHeaders = reader.u64(at: 0x20), sectionHeaders = reader.u64(at: 0x28)
        let programEntrySize = Int(reader.u16(at: 0x36)), programCount = Int(reader.u16(at: 0x38))
        let sectionEntrySize = Int(reader.u16(at: 0x3a)), sectionCount = Int(reader.u16(at: 0x3c))
        let namesIndex = Int(reader.u16(at: 0x3e))

        var segments: [LoadSegment] = []
        for index in 0..<programCount {
            let at = Int(programHeaders) + index * programEntrySize
            guard at + 56 <= bytes.count else { throw .truncated("program header \(index)") }
            guard reader.u32(at: at) == 1 else { continue }  // PT_LOAD
            segments.append(LoadSegment(virtualAddress: reader.u64(at: at + 0x10), fileOffset: reader.u64(at: at + 0x08),
                                        fileSize: reader.u64(at: at + 0x20), memorySize: reader.u64(at: at + 0x28)))
        }
        loadSegments = segments

        struct RawSection { let nameOffset: UInt32, type: UInt32, address: UInt64, offset: UInt64, size: UInt64 }
        var raw: [RawSection] = []
        for index in 0..<sectionCount {
            let at = Int(sectionHeaders) + index * sectionEntrySize
            guard at + 64 <= bytes.count else { throw .truncated("section header \(index)") }
            raw.append(RawSection(nameOffset: reader.u32(at: at), type: reader.u32(at: at + 4), address: reader.u64(at: at + 0x10),
                                  offset: reader.u64(at: at + 0x18), size: reader.u64(at: at + 0x20)))
        }
        guard namesIndex < raw.count else { throw .truncated("section name table") }
        let names = raw[namesIndex]
        sections = raw.map { section in
            Section(name: reader.cString(at: Int(names.offset) + Int(section.nameOffset)) ?? "", address: section.address,
                    offset: section.offset, size: section.size, type: section.type)
        }
    }

    package func section(named name: String) -> Section? { sections.first { $0.name == name } }

    /// The bytes of a section that has them in the file (not `SHT_NOBITS`).
    package func contents(of section: Section) throws(Failure) -> ArraySlice<UInt8> {
        let start = Int(section.offset), end = start + Int(section.size)
        guard section.type != 8, end <= bytes.count else { throw .truncated(section.name) }
        return bytes[start..<end]
    }

    /// The file offset that is mapped at `address`, through the `PT_LOAD` segment holding
    /// it (as libbpf's usdt.c does for the probe and the semaphore); nil when none does.
    package func fileOffset(ofVirtualAddress address: UInt64) -> UInt64? {
        for segment in loadSegments
        where address >= segment.virtualAddress && address < segment.virtualAddress + segment.memorySize {
            return address - segment.virtualAddress + segment.fileOffset
        }
        return nil
    }
}

/// Reads little-endian integers and C strings at byte offsets, zero past the end.
struct LittleEndianBytes {
    let bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    func u16(at offset: Int) -> UInt16 { UInt16(truncatingIfNeeded: value(at: offset, size: 2)) }
    func u32(at offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: value(at: offset, size: 4)) }
    func u64(at offset: Int) -> UInt64 { value(at: offset, size: 8) }

    func value(at offset: Int, size: Int) -> UInt64 {
        let start = bytes.startIndex + offset
        guard offset >= 0, start + size <= bytes.endIndex else { return 0 }
        var result: UInt64 = 0
        for index in (0..<size).reversed() { result = result << 8 | UInt64(bytes[start + index]) }
        return result
    }

    /// The NUL-terminated string at `offset`; nil when it runs past the end.
    func cString(at offset: Int) -> String? {
        let start = bytes.startIndex + offset
        guard offset >= 0, start < bytes.endIndex, let end = bytes[start...].firstIndex(of: 0) else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
