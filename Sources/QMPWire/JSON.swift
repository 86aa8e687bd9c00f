import CJansson

/// One owned reference to a libjansson value.
///
/// Every `json_t` reference the broker holds lives in exactly one `JSON`, which
/// releases it in `deinit`; no reference count leaks into the rest of the code.
/// Values are confined to the event loop of the VM that owns them (not `Sendable`).
package final class JSON {
    let raw: UnsafeMutablePointer<json_t>

    /// Takes over a new reference (jansson's "new reference" return values).
    init(owning raw: UnsafeMutablePointer<json_t>) { self.raw = raw }

    /// Adds a reference to a borrowed value (jansson's "borrowed reference" return values).
    init(retaining raw: UnsafeMutablePointer<json_t>) { self.raw = cj_incref(raw) }

    deinit { cj_decref(raw) }

    package enum Kind: Equatable, Sendable { case object, array, string, integer, real, bool, null }

    package var kind: Kind {
        switch cj_typeof(raw) {
        case Int32(JSON_OBJECT.rawValue): return .object
        case Int32(JSON_ARRAY.rawValue): return .array
        case Int32(JSON_STRING.rawValue): return .string
        case Int32(JSON_INTEGER.rawValue): return .integer
        case Int32(JSON_REAL.rawValue): return .real
        case Int32(JSON_TRUE.rawValue), Int32(JSON_FALSE.rawValue): return .bool
        default: return .null
        }
    }

    // MARK: construction

    package static func object() -> JSON { JSON(owning: json_object()) }
    package static func array() -> JSON { JSON(owning: json_array()) }
    package static var null: JSON { JSON(owning: cj_null()) }
    package static func bool(_ value: Bool) -> JSON { JSON(owning: cj_boolean(value ? 1 : 0)) }
    package static func integer(_ value: Int64) -> JSON { JSON(owning: json_integer(value)) }
    package static func real(_ value: Double) -> JSON { JSON(owning: json_real(value)) }
    package static func string(_ value: String) -> JSON {
        var value = value
        return value.withUTF8 { JSON(owning: json_stringn_nocheck($0.baseAddress, $0.count)) }
    }
    /// A string from raw bytes; the bytes must already be valid UTF-8 (the QMP reader checks).
    package static func string(utf8 bytes: UnsafeBufferPointer<UInt8>) -> JSON {
        bytes.withMemoryRebound(to: CChar.self) { JSON(owning: json_stringn_nocheck($0.baseAddress, $0.count)) }
    }

    package static func object(_ members: KeyValuePairs<String, JSON>) -> JSON {
        let object = JSON.object()
        for (key, value) in members { object[key] = value }
        return object
    }
    package static func array(_ elements: [JSON]) -> JSON {
        let array = JSON.array()
        for element in elements { array.append(element) }
        return array
    }
    package static func strings(_ elements: [String]) -> JSON { .array(elements.map { .string($0) }) }

    // MARK: parsing and writing

    package struct DecodeError: Error, CustomStringConvertible {
        package let description: String
    }

    /// Parses standard JSON (what QEMU writes). Any top-level value is accepted.
    package static func parse<Bytes: Collection>(_ bytes: Bytes) throws(DecodeError) -> JSON
    where Bytes.Element == UInt8 {
        var error = json_error_t()
        let flags = cj_flag_decode_any()
        let parsed: UnsafeMutablePointer<json_t>? =
            bytes.withContiguousStorageIfAvailable { buffer in
                buffer.withMemoryRebound(to: CChar.self) { json_loadb($0.baseAddress, $0.count, flags, &error) }
            } ?? Array(bytes).withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { json_loadb($0.baseAddress, $0.count, flags, &error) }
            }
        guard let parsed else {
            let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw DecodeError(description: text)
        }
        return JSON(owning: parsed)
    }

    package static func parse(_ text: String) throws(DecodeError) -> JSON { try parse(Array(text.utf8)) }

    /// The text QEMU's own JSON writer would produce for this value (`QEMUJSONWriter`).
    package func serialized() -> [UInt8] { QEMUJSONWriter.write(self) }

    /// One QMP wire message as QEMU sends it: the JSON text followed by `\r\n`.
    package func wireMessage() -> [UInt8] {
        var bytes = serialized()
        bytes.append(13)
        bytes.append(10)
        return bytes
    }

    package func compactString() -> String {
        String(decoding: dump(flags: cj_flags_compact() | cj_flag_encode_any()), as: UTF8.self)
    }

    package func prettyString() -> String {
        String(decoding: dump(flags: cj_flags_pretty() | cj_flag_encode_any()), as: UTF8.self)
    }

    private func dump(flags: Int) -> [UInt8] {
        let size = json_dumpb(raw, nil, 0, flags)
        guard size > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = buffer.withMemoryRebound(to: CChar.self) { json_dumpb(raw, $0.baseAddress, size, flags) }
        }
    }

    // MARK: reading

    package var string: String? {
        guard cj_is_string(raw) != 0, let pointer = json_string_value(raw) else { return nil }
        let length = json_string_length(raw)
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
    package var integer: Int64? { cj_is_integer(raw) != 0 ? json_integer_value(raw) : nil }
    package var number: Double? { cj_is_integer(raw) != 0 || cj_is_real(raw) != 0 ? json_number_value(raw) : nil }
    package var bool: Bool? {
        guard cj_is_boolean(raw) != 0 else { return nil }
        return cj_typeof(raw) == Int32(JSON_TRUE.rawValue)
    }

    /// Keys are counted, not C strings: a client's member name may hold a NUL (`"a\u0000b"`).
    package subscript(key: String) -> JSON? {
        get {
            guard cj_is_object(raw) != 0 else { return nil }
            var key = key
            let value = key.withUTF8 { bytes in Self.withKey(bytes) { json_object_getn(raw, $0, $1) } }
            return value.map { JSON(retaining: $0) }
        }
        set {
            var key = key
            key.withUTF8 { bytes in
                Self.withKey(bytes) { name, length in
                    if let newValue {
                        _ = json_object_setn(raw, name, length, newValue.raw)
                    } else {
                        _ = json_object_deln(raw, name, length)
                    }
                }
            }
        }
    }

    package subscript(index: Int) -> JSON? {
        guard cj_is_array(raw) != 0, index >= 0, index < json_array_size(raw),
              let value = json_array_get(raw, index) else { return nil }
        return JSON(retaining: value)
    }

    package var count: Int {
        if cj_is_array(raw) != 0 { return json_array_size(raw) }
        if cj_is_object(raw) != 0 { return json_object_size(raw) }
        return 0
    }

    package func append(_ element: JSON) { json_array_append(raw, element.raw) }

    /// Whether an object has a member whose key is these bytes (which may hold a NUL).
    func hasMember(utf8 key: UnsafeBufferPointer<UInt8>) -> Bool {
        Self.withKey(key) { json_object_getn(raw, $0, $1) != nil }
    }

    /// Sets an object member from a key given as bytes, already valid UTF-8 (the QMP reader checks).
    func setMember(utf8 key: UnsafeBufferPointer<UInt8>, _ value: JSON) {
        Self.withKey(key) { _ = json_object_setn_nocheck(raw, $0, $1, value.raw) }
    }

    /// jansson wants a pointer even for the empty key, which an empty buffer may not have.
    private static func withKey<R>(_ key: UnsafeBufferPointer<UInt8>, _ body: (UnsafePointer<CChar>, Int) -> R) -> R {
        guard let base = key.baseAddress else { return "".withCString { body($0, 0) } }
        return base.withMemoryRebound(to: CChar.self, capacity: key.count) { body($0, key.count) }
    }

    package var elements: [JSON] { (0..<(cj_is_array(raw) != 0 ? json_array_size(raw) : 0)).map { self[$0]! } }

    /// Object members in insertion order (jansson keeps it; QEMU's order survives a round trip).
    package var members: [(key: String, value: JSON)] {
        guard cj_is_object(raw) != 0 else { return [] }
        var result: [(String, JSON)] = []
        result.reserveCapacity(json_object_size(raw))
        var iterator = json_object_iter(raw)
        while let current = iterator {
            // The key's length, not its first NUL, ends it (a member name may hold U+0000).
            let key = json_object_iter_key(current).withMemoryRebound(
                to: UInt8.self, capacity: json_object_iter_key_len(current)) {
                String(decoding: UnsafeBufferPointer(start: $0, count: json_object_iter_key_len(current)), as: UTF8.self)
            }
            result.append((key, JSON(retaining: json_object_iter_value(current))))
            iterator = json_object_iter_next(raw, current)
        }
        return result
    }

    package var keys: [String] { members.map(\.key) }

    /// A deep copy, for values about to be changed that others still reference.
    package func deepCopy() -> JSON { JSON(owning: json_deep_copy(raw)) }
}

extension JSON: Equatable {
    package static func == (lhs: JSON, rhs: JSON) -> Bool { json_equal(lhs.raw, rhs.raw) != 0 }
}

extension JSON: CustomStringConvertible {
    package var description: String { String(decoding: serialized(), as: UTF8.self) }
}
