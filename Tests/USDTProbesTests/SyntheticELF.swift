/// A minimal ELF64 image built in memory: one `PT_LOAD` per given segment, and sections
/// `.note.stapsdt`, `.stapsdt.base`, `.shstrtab`. Enough for `ELFImage` and `USDTProbe`.
struct SyntheticELF {
    struct Note {
        var provider = "qemu"
        var name: String
        var address: UInt64
        var base: UInt64
        var semaphore: UInt64 = 0
        var arguments: String
    }

    var segments: [(virtualAddress: UInt64, fileOffset: UInt64, size: UInt64)]
    var notes: [Note]
    var stapsdtBaseAddress: UInt64

    func bytes() -> [UInt8] {
        var noteBytes: [UInt8] = []
        for note in notes {
            var descriptor: [UInt8] = []
            descriptor += le(note.address, 8) + le(note.base, 8) + le(note.semaphore, 8)
            descriptor += Array(note.provider.utf8) + [0] + Array(note.name.utf8) + [0] + Array(note.arguments.utf8) + [0]
            noteBytes += le(8, 4) + le(UInt64(descriptor.count), 4) + le(3, 4)
            noteBytes += Array("stapsdt".utf8) + [0]
            noteBytes += descriptor + [UInt8](repeating: 0, count: (4 - descriptor.count % 4) % 4)
        }
        let names: [UInt8] = [0] + Array(".note.stapsdt".utf8) + [0] + Array(".stapsdt.base".utf8) + [0] + Array(".shstrtab".utf8) + [0]
        let programHeaders = 64, programSize = 56 * segments.count
        let notesOffset = programHeaders + programSize
        let namesOffset = notesOffset + noteBytes.count
        let sectionHeaders = (namesOffset + names.count + 7) & ~7
        var image = [UInt8](repeating: 0, count: 64)
        image.replaceSubrange(0..<6, with: [0x7f, 0x45, 0x4c, 0x46, 2, 1])
        put(&image, 0x20, le(UInt64(programHeaders), 8))
        put(&image, 0x28, le(UInt64(sectionHeaders), 8))
        put(&image, 0x36, le(56, 2))
        put(&image, 0x38, le(UInt64(segments.count), 2))
        put(&image, 0x3a, le(64, 2))
        put(&image, 0x3c, le(4, 2))
        put(&image, 0x3e, le(3, 2))
        for segment in segments {
            var header = [UInt8](repeating: 0, count: 56)
            put(&header, 0, le(1, 4))
            put(&header, 0x08, le(segment.fileOffset, 8))
            put(&header, 0x10, le(segment.virtualAddress, 8))
            put(&header, 0x20, le(segment.size, 8))
            put(&header, 0x28, le(segment.size, 8))
            image += header
        }
        image += noteBytes + names
        image += [UInt8](repeating: 0, count: sectionHeaders - image.count)
        func section(name: Int, type: UInt64, address: UInt64, offset: Int, size: Int) -> [UInt8] {
            var header = [UInt8](repeating: 0, count: 64)
            put(&header, 0, le(UInt64(name), 4))
            put(&header, 4, le(type, 4))
            put(&header, 0x10, le(address, 8))
            put(&header, 0x18, le(UInt64(offset), 8))
            put(&header, 0x20, le(UInt64(size), 8))
            return header
        }
        image += [UInt8](repeating: 0, count: 64)
        image += section(name: 1, type: 7, address: 0, offset: notesOffset, size: noteBytes.count)
        image += section(name: 15, type: 1, address: stapsdtBaseAddress, offset: 0, size: 1)
        image += section(name: 29, type: 3, address: 0, offset: namesOffset, size: names.count)
        return image
    }

    private func le(_ value: UInt64, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    private func put(_ bytes: inout [UInt8], _ at: Int, _ value: [UInt8]) { bytes.replaceSubrange(at..<at + value.count, with: value) }
}
