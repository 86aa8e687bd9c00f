import Glibc
import QMPBroker

/// journald's native protocol: one datagram per entry of `FIELD=value` lines (a value
/// with a newline goes as FIELD, newline, 64-bit little-endian length, bytes).
enum JournalSocket {
    static let path = "/run/systemd/journal/socket"

    /// Field names are upper-case letters, digits and underscores, not starting with "_".
    static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        while name.hasPrefix("_") { name.removeFirst() }
        return name.isEmpty ? "FIELD" : name
    }

    static func send(_ fields: [(String, String)]) -> Bool {
        var datagram: [UInt8] = []
        for (name, value) in fields {
            datagram += Array(name.utf8)
            if value.contains("\n") {
                datagram.append(10)
                var length = UInt64(value.utf8.count).littleEndian
                withUnsafeBytes(of: &length) { datagram += $0 }
                datagram += Array(value.utf8)
            } else {
                datagram.append(UInt8(ascii: "="))
                datagram += Array(value.utf8)
            }
            datagram.append(10)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let sent = try? UnixSocketAddress.with(path) {
            sendto(fd, datagram, datagram.count, Int32(MSG_NOSIGNAL), $0, $1)
        }
        return sent == datagram.count
    }
}
