import Glibc

/// Splits the VMM's output into messages. QEMU ends every message with `\r\n` and
/// escapes newlines inside strings, so a line is a message; keeping the raw line lets
/// events go to clients byte-for-byte as QEMU wrote them.
public struct LineFramer: Sendable {
    public init() {}

    /// A larger line means the peer is not a QMP server (QEMU's largest reply, the
    /// schema, is a few hundred KiB).
    static let maximumLineLength = 64 << 20

    private var partial: [UInt8] = []

    public enum Failure: Error { case lineTooLong }

    /// Calls `emit` with each complete line (including its line end).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (ArraySlice<UInt8>) -> Void) throws(Failure) {
        var start = 0
        let count = bytes.count
        while start < count, let base = bytes.baseAddress,
              let found = memchr(base + start, 0x0A, count - start) {
            let newline = base.distance(to: UnsafeRawPointer(found))
            if partial.isEmpty {
                emit(ArraySlice(bytes[start...newline]))
            } else {
                partial.append(contentsOf: bytes[start...newline])
                emit(partial[...])
                partial.removeAll(keepingCapacity: false)
            }
            start = newline + 1
        }
        if start < count {
            guard partial.count + (count - start) <= Self.maximumLineLength else {
                partial.removeAll()
                throw .lineTooLong
            }
            partial.append(contentsOf: bytes[start..<count])
        }
    }

    public mutating func reset() { partial.removeAll() }
}
