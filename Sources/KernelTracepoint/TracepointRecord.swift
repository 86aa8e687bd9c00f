/// Reads fields out of one raw tracepoint record (a perf sample's `PERF_SAMPLE_RAW` bytes),
/// checked against the record's length: a short or inconsistent record gives nil, never
/// a read past its end. Values are in the host's byte order, as the kernel wrote them.
package struct TracepointRecord {
    package let bytes: UnsafeRawBufferPointer

    package init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// An inline unsigned field of 1, 2, 4 or 8 bytes.
    package func unsigned(_ field: TracepointField) -> UInt64? {
        guard field.storage == .inline, field.offset + field.size <= bytes.count else { return nil }
        switch field.size {
        case 1: return UInt64(bytes.load(fromByteOffset: field.offset, as: UInt8.self))
        case 2: return UInt64(bytes.loadUnaligned(fromByteOffset: field.offset, as: UInt16.self))
        case 4: return UInt64(bytes.loadUnaligned(fromByteOffset: field.offset, as: UInt32.self))
        case 8: return bytes.loadUnaligned(fromByteOffset: field.offset, as: UInt64.self)
        default: return nil
        }
    }

    /// The bytes a `__data_loc` or `__rel_loc` field points at.
    package func variableBytes(_ field: TracepointField) -> UnsafeRawBufferPointer? {
        guard field.storage != .inline, field.size == 4, field.offset + 4 <= bytes.count else { return nil }
        let location = bytes.loadUnaligned(fromByteOffset: field.offset, as: UInt32.self)
        var start = Int(location & 0xffff)
        let length = Int(location >> 16)
        if field.storage == .relativeLocation { start += field.offset + 4 }
        guard start + length <= bytes.count else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
    }

    /// A string field (`__string`): its bytes up to the first NUL.
    package func string(_ field: TracepointField) -> String? {
        guard let data = variableBytes(field) else { return nil }
        let end = data.firstIndex(of: 0) ?? data.endIndex
        return String(decoding: UnsafeRawBufferPointer(rebasing: data[..<end]), as: UTF8.self)
    }
}
