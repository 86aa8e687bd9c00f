/// One USDT probe site from an ELF file's `.note.stapsdt`, as systemtap's `<sys/sdt.h>`
/// writes it: a note of type 3 named `stapsdt` whose descriptor holds the probe's
/// address, the link-time address of `.stapsdt.base`, the semaphore's address (0 when
/// none), then the provider, the probe name and the argument string, each NUL-terminated.
package struct USDTProbe: Equatable, Sendable {
    package let provider: String
    package let name: String
    /// Virtual addresses as written in the note.
    package let address: UInt64
    package let base: UInt64
    package let semaphore: UInt64
    /// E.g. `8@%rcx 4@%eax -4@-8(%rbp)`: one `USDTArgument` per space-separated item.
    package let argumentText: String

    package init(provider: String, name: String, address: UInt64, base: UInt64, semaphore: UInt64, argumentText: String) {
        self.provider = provider
        self.name = name
        self.address = address
        self.base = base
        self.semaphore = semaphore
        self.argumentText = argumentText
    }

    static let noteType: UInt32 = 3
    static let noteName = "stapsdt"

    /// Every probe in `.note.stapsdt`, with addresses adjusted for prelinking.
    package static func probes(in image: ELFImage) throws(ELFImage.Failure) -> [USDTProbe] {
        guard let notes = image.section(named: ".note.stapsdt") else { return [] }
        let baseSection = image.section(named: ".stapsdt.base")
        return parseNotes(try image.contents(of: notes), stapsdtBase: baseSection?.address)
    }

    /// Parses the notes section's bytes. When the file's `.stapsdt.base` sits elsewhere
    /// than the note recorded (prelink moved it), the probe and semaphore move with it.
    package static func parseNotes(_ bytes: ArraySlice<UInt8>, stapsdtBase: UInt64?) -> [USDTProbe] {
        let reader = LittleEndianBytes(bytes)
        var probes: [USDTProbe] = []
        var at = 0
        while at + 12 <= bytes.count {
            let nameSize = Int(reader.u32(at: at)), descriptorSize = Int(reader.u32(at: at + 4)), type = reader.u32(at: at + 8)
            let nameStart = at + 12, descriptorStart = nameStart + aligned4(nameSize)
            let next = descriptorStart + aligned4(descriptorSize)
            guard next <= bytes.count else { break }
            defer { at = next }
            guard type == noteType, nameSize == noteName.utf8.count + 1,
                  reader.cString(at: nameStart) == noteName, descriptorSize >= 24 else { continue }
            let descriptor = LittleEndianBytes(bytes[(bytes.startIndex + descriptorStart)..<(bytes.startIndex + descriptorStart + descriptorSize)])
            var address = descriptor.u64(at: 0), semaphore = descriptor.u64(at: 16)
            let base = descriptor.u64(at: 8)
            if let stapsdtBase, base != 0, stapsdtBase != base {
                address = address &+ stapsdtBase &- base
                if semaphore != 0 { semaphore = semaphore &+ stapsdtBase &- base }
            }
            guard let provider = descriptor.cString(at: 24),
                  let name = descriptor.cString(at: 24 + provider.utf8.count + 1),
                  let arguments = descriptor.cString(at: 24 + provider.utf8.count + 1 + name.utf8.count + 1)
            else { continue }
            probes.append(USDTProbe(provider: provider, name: name, address: address, base: base,
                                    semaphore: semaphore, argumentText: arguments))
        }
        return probes
    }

    private static func aligned4(_ size: Int) -> Int { (size + 3) & ~3 }
}

/// Where the uprobe PMU must place a probe: file offsets into the binary.
package struct USDTProbeSite: Equatable, Sendable {
    package let probe: USDTProbe
    package let arguments: [USDTArgument]
    /// `config2` of the uprobe perf event.
    package let fileOffset: UInt64
    /// The semaphore's file offset (`ref_ctr_offset`), so the kernel counts it up while
    /// the probe is armed and QEMU computes the arguments; nil when the probe has none.
    package let semaphoreFileOffset: UInt64?

    package enum Failure: Error, Equatable, Sendable {
        case addressNotMapped(probe: String, address: UInt64)
        case badArguments(probe: String, USDTArgument.ParseFailure)
    }

    package init(_ probe: USDTProbe, in image: ELFImage) throws(Failure) {
        guard let offset = image.fileOffset(ofVirtualAddress: probe.address) else {
            throw .addressNotMapped(probe: probe.name, address: probe.address)
        }
        var semaphoreOffset: UInt64?
        if probe.semaphore != 0 {
            guard let offset = image.fileOffset(ofVirtualAddress: probe.semaphore) else {
                throw .addressNotMapped(probe: probe.name, address: probe.semaphore)
            }
            semaphoreOffset = offset
        }
        do {
            arguments = try USDTArgument.parseList(probe.argumentText)
        } catch {
            throw .badArguments(probe: probe.name, error)
        }
        self.probe = probe
        fileOffset = offset
        semaphoreFileOffset = semaphoreOffset
    }
}
