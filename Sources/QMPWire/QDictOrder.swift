/// The member order QEMU's QDict writes, so replies and events the broker builds
/// itself look exactly like QEMU's (`{"id": 1, "error": …}` but `{"return": {}, "id": 1}`).
///
/// QDict is a 512-bucket hash table (qobject/qdict.c, `tdb_hash`) iterated bucket by
/// bucket, newest entry first within a bucket; the JSON writer follows that order.
enum QDictOrder {
    static func bucket(_ key: String) -> Int {
        // QEMU holds U+0000 in a key as modified UTF-8's C0 80, and hashes those bytes.
        let length = key.utf8.reduce(0) { $0 + ($1 == 0 ? 2 : 1) }
        var value = UInt32(truncatingIfNeeded: 0x238F_13AF &* length)
        var index = 0
        func add(_ byte: UInt8) {
            value = value &+ (UInt32(byte) << UInt32(index * 5 % 24))
            index += 1
        }
        for byte in key.utf8 {
            if byte == 0 {
                add(0xC0)
                add(0x80)
            } else {
                add(byte)
            }
        }
        return Int((1_103_515_243 &* value &+ 12345) % 512)
    }

    /// Keys in the order QEMU would write them after inserting them in `insertionOrder`.
    static func ordered(_ insertionOrder: [String]) -> [String] {
        insertionOrder.enumerated()
            .sorted { lhs, rhs in
                let (left, right) = (bucket(lhs.element), bucket(rhs.element))
                return left != right ? left < right : lhs.offset > rhs.offset
            }
            .map(\.element)
    }
}

extension JSON {
    /// An object whose members serialise in QEMU's order; `members` is the order QEMU's code inserts them.
    package static func qdict(_ members: KeyValuePairs<String, JSON>) -> JSON {
        qdict(members.map { ($0.key, $0.value) })
    }

    /// The same, for member lists built at run time (optional members appended when present).
    package static func qdict(_ members: [(String, JSON)]) -> JSON {
        let values = Dictionary(members, uniquingKeysWith: { _, last in last })
        let object = JSON.object()
        for key in QDictOrder.ordered(members.map(\.0)) { object[key] = values[key] }
        return object
    }
}

extension QDictOrder {
    /// `value` with every object's members in the order QEMU's parser would store them,
    /// so a client's id echoed by the broker matches QEMU's echo. Values without objects
    /// (the usual string or number ids) come back as they are.
    static func canonical(_ value: JSON) -> JSON {
        switch value.kind {
        case .object:
            let members = value.members
            let values = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            let object = JSON.object()
            for key in ordered(members.map(\.key)) { object[key] = canonical(values[key]!) }
            return object
        case .array:
            guard value.elements.contains(where: { $0.kind == .object || $0.kind == .array }) else { return value }
            return .array(value.elements.map(canonical))
        case .string, .integer, .real, .bool, .null:
            return value
        }
    }
}
