import Glibc
import QMPBroker

/// A client of QEMU's qtest socket (`-qtest unix:PATH,server=on,wait=off`): the guest-side
/// port I/O a guest kernel would do, without a guest. Each command is one line and is
/// answered `OK` (plus a value for reads) once QEMU has performed it.
package final class QTestConnection {
    package let fd: Int32
    private var pending: [UInt8] = []

    package init(path: String, timeout: Double = 10) throws {
        do {
            fd = try BlockingConnect.unixSocket(path, timeout: timeout)
        } catch {
            throw QMPClient.Failure("qtest \(error)")
        }
    }

    deinit { close(fd) }

    /// Sends one command and returns QEMU's answer line (e.g. `OK`, `OK 0x0040`).
    @discardableResult
    package func command(_ line: String, timeout: Double = 10) throws -> String {
        let bytes = Array((line + "\n").utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw QMPClient.Failure("qtest send failed")
        }
        let deadline = Deadline(after: timeout)
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let answer = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                guard answer.hasPrefix("OK") else { throw QMPClient.Failure("qtest \(line): \(answer)") }
                return answer
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(deadline.remaining * 1000)) > 0 else {
                throw QMPClient.Failure("qtest \(line): no answer within \(timeout) s")
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { throw QMPClient.Failure("qtest connection closed") }
            pending += chunk[..<count]
        }
    }

    /// A configuration write the way a guest does it through ports 0xcf8/0xcfc.
    package func configWrite(bus: UInt8, slot: UInt8, function: UInt8, offset: UInt8, value: UInt32, width: Int) throws {
        let address = UInt32(0x8000_0000) | UInt32(bus) << 16 | UInt32(slot) << 11 | UInt32(function) << 8 | UInt32(offset & 0xFC)
        try command("outl 0xcf8 0x\(String(address, radix: 16))")
        let port = 0xCFC + Int(offset & 3)
        let instruction = width == 1 ? "outb" : width == 2 ? "outw" : "outl"
        try command("\(instruction) 0x\(String(port, radix: 16)) 0x\(String(value, radix: 16))")
    }
}

extension QTestConnection {
    /// Where q35's MMCONFIG (ECAM) window is put: QEMU's and SeaBIOS's default.
    package static let ecamBase: UInt64 = 0xB000_0000

    /// Maps q35's ECAM window (PCIEXBAR, host bridge 0x60) at `ecamBase`, as firmware does.
    /// Do it while the VM is paused: the 0xcf8/0xcfc pair is shared with a running guest,
    /// whose own accesses can slip between the two port writes.
    package func enableECAM() throws {
        try configWrite(bus: 0, slot: 0, function: 0, offset: 0x64, value: 0, width: 4)
        try configWrite(bus: 0, slot: 0, function: 0, offset: 0x60, value: UInt32(Self.ecamBase) | 1, width: 4)
    }

    /// A config write through ECAM: one memory access, atomic against a running guest.
    package func ecamWrite(bus: UInt8, slot: UInt8, function: UInt8, offset: UInt16, value: UInt32, width: Int) throws {
        let address = ecamAddress(bus: bus, slot: slot, function: function, offset: offset)
        let instruction = width == 1 ? "writeb" : width == 2 ? "writew" : "writel"
        try command("\(instruction) 0x\(String(address, radix: 16)) 0x\(String(value, radix: 16))")
    }

    package func ecamAddress(bus: UInt8, slot: UInt8, function: UInt8, offset: UInt16) -> UInt64 {
        Self.ecamBase + UInt64(bus) << 20 + UInt64(slot) << 15 + UInt64(function) << 12 + UInt64(offset)
    }

    /// The Secondary Bus Reset a guest kernel performs on a bridge (Linux
    /// `pci_reset_secondary_bus`): set bit 0x40 of Bridge Control (0x3e), then clear it.
    /// Written through ECAM (`enableECAM()` first), so a running firmware cannot divert it.
    package func secondaryBusReset(bus: UInt8 = 0, slot: UInt8, function: UInt8 = 0, release: Bool = true) throws {
        try ecamWrite(bus: bus, slot: slot, function: function, offset: 0x3E, value: 0x40, width: 2)
        if release { try ecamWrite(bus: bus, slot: slot, function: function, offset: 0x3E, value: 0, width: 2) }
    }

    /// A 32-bit read of guest physical memory (`readl`), e.g. ECAM config space.
    package func readLong(_ address: UInt64) throws -> UInt32 {
        let answer = try command("readl 0x\(String(address, radix: 16))")
        let value = answer.split(separator: " ").last.map { $0.hasPrefix("0x") ? $0.dropFirst(2) : $0 } ?? ""
        guard let number = UInt32(value, radix: 16) else { throw QMPClient.Failure("qtest readl: \(answer)") }
        return number
    }
}
