/// One argument of a USDT probe as `<sys/sdt.h>` describes it on x86-64 (GNU assembler
/// operand syntax): `SIZE@OPERAND`, where a negative size means signed, and the operand is
/// a register (`%rcx`, `%r11d`), memory at a register plus a displacement (`-4@-8(%rbp)`,
/// `8@(%rax)`) or a constant (`4@$71`). The grammar is libbpf's (`parse_usdt_arg` in
/// src/usdt.c), which is what systemtap's `stap` accepts on x86 too, minus RIP-relative
/// and indexed operands, which a compiler does not emit for these probes' arguments.
package struct USDTArgument: Equatable, Sendable {
    package enum Location: Equatable, Sendable {
        case register(X86Register)
        /// The value lives in the traced process's memory at the register plus `displacement`.
        case memory(base: X86Register, displacement: Int64)
        case constant(Int64)
    }

    package enum ParseFailure: Error, Equatable, Sendable {
        case malformed(String)
        case unknownRegister(String)
        case badSize(String)
    }

    /// 1, 2, 4 or 8 bytes.
    package let size: Int
    package let isSigned: Bool
    package let location: Location

    package init(size: Int, isSigned: Bool, location: Location) {
        self.size = size
        self.isSigned = isSigned
        self.location = location
    }

    /// The space-separated arguments of a probe (an empty string: none).
    package static func parseList(_ text: String) throws(ParseFailure) -> [USDTArgument] {
        var arguments: [USDTArgument] = []
        for item in text.split(separator: " ", omittingEmptySubsequences: true) {
            arguments.append(try parse(item))
        }
        return arguments
    }

    package static func parse(_ item: some StringProtocol) throws(ParseFailure) -> USDTArgument {
        let text = String(item)
        guard let at = text.firstIndex(of: "@") else { throw .malformed(text) }
        guard let size = Int(text[..<at]) else { throw .badSize(text) }
        guard [1, 2, 4, 8].contains(abs(size)) else { throw .badSize(text) }
        let operand = text[text.index(after: at)...]
        let location: Location
        if operand.hasPrefix("%") {
            location = .register(try register(operand.dropFirst()))
        } else if operand.hasPrefix("$") {
            guard let value = Int64(operand.dropFirst()) else { throw .malformed(text) }
            location = .constant(value)
        } else if let open = operand.firstIndex(of: "("), operand.hasSuffix(")") {
            let displacementText = operand[..<open]
            guard let displacement = displacementText.isEmpty ? 0 : Int64(displacementText) else { throw .malformed(text) }
            let inner = operand[operand.index(after: open)..<operand.index(before: operand.endIndex)]
            guard inner.hasPrefix("%") else { throw .malformed(text) }
            location = .memory(base: try register(inner.dropFirst()), displacement: displacement)
        } else {
            throw .malformed(text)
        }
        return USDTArgument(size: abs(size), isSigned: size < 0, location: location)
    }

    private static func register(_ name: Substring) throws(ParseFailure) -> X86Register {
        guard let register = X86Register(name: name) else { throw .unknownRegister(String(name)) }
        return register
    }

    /// The argument's value from the raw 64 bits read for it (a register, or the bytes
    /// read from memory, little-endian): the low `size` bytes, sign-extended when signed.
    package func value(fromRaw raw: UInt64) -> Int64 {
        let bits = size * 8
        guard bits < 64 else { return Int64(bitPattern: raw) }
        let low = raw & ((1 << UInt64(bits)) - 1)
        guard isSigned, low & (1 << UInt64(bits - 1)) != 0 else { return Int64(low) }
        return Int64(bitPattern: low | ~((1 << UInt64(bits)) - 1))
    }
}

/// An x86-64 general register as the kernel's `perf_event_x86_regs` numbers it (the bit
/// in `sample_regs_user`, and the order of registers in a `PERF_SAMPLE_REGS_USER` dump).
package enum X86Register: Int, Sendable, CaseIterable {
    case ax = 0, bx, cx, dx, si, di, bp, sp, ip
    case r8 = 16, r9, r10, r11, r12, r13, r14, r15

    /// From a name without `%`: the 64-, 32-, 16- and low 8-bit aliases all read the same
    /// register (the size of the argument truncates it), as libbpf's `calc_pt_regs_off`.
    package init?(name: some StringProtocol) {
        let aliases: [X86Register: [String]] = [
            .ip: ["rip", "eip"],
            .ax: ["rax", "eax", "ax", "al"], .bx: ["rbx", "ebx", "bx", "bl"],
            .cx: ["rcx", "ecx", "cx", "cl"], .dx: ["rdx", "edx", "dx", "dl"],
            .si: ["rsi", "esi", "si", "sil"], .di: ["rdi", "edi", "di", "dil"],
            .bp: ["rbp", "ebp", "bp", "bpl"], .sp: ["rsp", "esp", "sp", "spl"],
        ]
        let name = String(name)
        for (register, names) in aliases where names.contains(name) {
            self = register
            return
        }
        // r8..r15 with the d/w/b suffixes.
        guard name.hasPrefix("r") else { return nil }
        var digits = name.dropFirst()
        if let last = digits.last, "dwb".contains(last) { digits = digits.dropLast() }
        guard let number = Int(digits), (8...15).contains(number) else { return nil }
        self.init(rawValue: 16 + number - 8)
    }

    /// The `sample_regs_user` bit.
    package var perfMask: UInt64 { 1 << UInt64(rawValue) }
}

extension USDTArgument {
    /// The register the argument reads (directly or as the base of a memory operand).
    package var register: X86Register? {
        switch location {
        case .register(let register), .memory(let register, _): register
        case .constant: nil
        }
    }
}
