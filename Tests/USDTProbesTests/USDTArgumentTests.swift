import Testing
@testable import USDTProbes

@Suite struct USDTArgumentTests {
    @Test(arguments: [
        ("8@%rcx", USDTArgument(size: 8, isSigned: false, location: .register(.cx))),
        ("4@%eax", USDTArgument(size: 4, isSigned: false, location: .register(.ax))),
        ("4@%r11d", USDTArgument(size: 4, isSigned: false, location: .register(.r11))),
        ("-4@%esi", USDTArgument(size: 4, isSigned: true, location: .register(.si))),
        ("2@%ax", USDTArgument(size: 2, isSigned: false, location: .register(.ax))),
        ("1@%sil", USDTArgument(size: 1, isSigned: false, location: .register(.si))),
        ("-1@%r9b", USDTArgument(size: 1, isSigned: true, location: .register(.r9))),
        ("2@%r15w", USDTArgument(size: 2, isSigned: false, location: .register(.r15))),
        ("-4@-8(%rbp)", USDTArgument(size: 4, isSigned: true, location: .memory(base: .bp, displacement: -8))),
        ("8@(%rax)", USDTArgument(size: 8, isSigned: false, location: .memory(base: .ax, displacement: 0))),
        ("8@16(%rsp)", USDTArgument(size: 8, isSigned: false, location: .memory(base: .sp, displacement: 16))),
        ("4@$71", USDTArgument(size: 4, isSigned: false, location: .constant(71))),
        ("-8@$-1", USDTArgument(size: 8, isSigned: true, location: .constant(-1))),
    ])
    func parses(text: String, expected: USDTArgument) throws {
        #expect(try USDTArgument.parse(text) == expected)
    }

    @Test func aListSplitsOnSpaces() throws {
        let arguments = try USDTArgument.parseList("8@%rcx 4@%eax 4@%edx 4@%r11d 4@%ebx 4@%esi")
        #expect(arguments.map(\.register) == [.cx, .ax, .dx, .r11, .bx, .si])
        #expect(try USDTArgument.parseList("").isEmpty)
    }

    @Test(arguments: ["%rax", "3@%rax", "8@%xmm0", "8@%r16", "8@-8(rbp)", "8@foo", "x@%rax"])
    func refuses(text: String) {
        #expect(throws: USDTArgument.ParseFailure.self) { try USDTArgument.parse(text) }
    }

    @Test func registersAreThePerfRegsNumbers() {
        // perf_event_x86_regs: AX 0, BX 1, CX 2, DX 3, SI 4, DI 5, BP 6, SP 7, IP 8, R8 16 ... R15 23.
        #expect(X86Register.cx.perfMask == 1 << 2)
        #expect(X86Register.r11.rawValue == 19)
        #expect(X86Register(name: "r8d") == .r8)
        #expect(X86Register(name: "rip") == .ip)
    }

    @Test func valuesAreTruncatedAndSignExtendedBySize() {
        let unsigned32 = USDTArgument(size: 4, isSigned: false, location: .register(.ax))
        let signed32 = USDTArgument(size: 4, isSigned: true, location: .register(.ax))
        let signed8 = USDTArgument(size: 1, isSigned: true, location: .register(.ax))
        #expect(unsigned32.value(fromRaw: 0xdead_beef_ffff_fffe) == 0xffff_fffe)
        #expect(signed32.value(fromRaw: 0xdead_beef_ffff_fffe) == -2)
        #expect(signed8.value(fromRaw: 0x7f) == 127)
        #expect(signed8.value(fromRaw: 0x180) == -128)
    }

    @Test func resolvingReadsRegistersAndMemory() {
        let pointer = USDTArgument(size: 8, isSigned: false, location: .memory(base: .ax, displacement: 8))
        var asked: (UInt64, Int)?
        let value = pointer.resolve(registers: [0: 0x1000]) { address, size in
            asked = (address, size)
            return 0x5555_0000
        }
        #expect(value == 0x5555_0000)
        #expect(asked?.0 == 0x1008 && asked?.1 == 8)
        #expect(USDTArgument(size: 4, isSigned: false, location: .register(.dx)).resolve(registers: [:]) { _, _ in nil } == nil)
    }
}
