import QMPWire

/// QEMU's rule for a device id (`id_wellformed`, util/id.c): a letter, then letters,
/// digits, `-`, `.` or `_`. The broker pastes `inject-at` into an HMP command line
/// (`pcie_aer_inject_error ID ...`), so anything else could change what is injected
/// and where: it is refused where it comes in, and checked again where it goes out.
enum QEMUDeviceID {
    static func isWellFormed(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard let first = bytes.first, isLetter(first) else { return false }
        return bytes.dropFirst().allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-")
            || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") }
    }

    /// QEMU's text for the same refusal (`Parameter 'id' expects an identifier`).
    static func rejected(_ parameter: String) -> QMPError { QMPError("Parameter '\(parameter)' expects an identifier") }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
}
