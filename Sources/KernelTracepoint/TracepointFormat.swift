/// A kernel tracepoint as its tracefs `format` file describes it
/// (`<tracefs>/events/<system>/<name>/format`): its id, which perf takes as the event's
/// `config`, and where each field sits in the raw record perf samples carry.
///
/// The layout is read, never assumed: fields move between kernel versions (the common
/// header grew on some kernels, `tlp_header` of `ras:aer_event` grew from 4 words).
package struct TracepointFormat: Hashable, Sendable {
    package let name: String
    /// The tracepoint's id; also the record's `common_type` (its low 16 bits).
    package let id: UInt64
    package let fields: [TracepointField]

    package init(name: String, id: UInt64, fields: [TracepointField]) {
        self.name = name
        self.id = id
        self.fields = fields
    }

    package func field(named name: String) -> TracepointField? {
        fields.first { $0.name == name }
    }

    /// Reads a `format` file's text. The lines that matter:
    /// `name: aer_event`, `ID: 1234`, and per field
    /// `\tfield:__data_loc char[] dev_name;\toffset:8;\tsize:4;\tsigned:0;`.
    package static func parse(_ text: String) throws(TracepointFormatError) -> TracepointFormat {
        var name: String?
        var id: UInt64?
        var fields: [TracepointField] = []
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("name:") {
                name = String(line.dropFirst("name:".count).trimmingBlanks())
            } else if line.hasPrefix("ID:") {
                guard let number = UInt64(line.dropFirst("ID:".count).trimmingBlanks()) else {
                    throw .malformed("ID is not a number: \(line)")
                }
                id = number
            } else if line.hasPrefix("field:") {
                fields.append(try TracepointField.parse(line))
            }
        }
        guard let name, !name.isEmpty else { throw .malformed("no name line") }
        guard let id else { throw .malformed("no ID line") }
        return TracepointFormat(name: name, id: id, fields: fields)
    }
}

/// One field of a tracepoint's raw record.
package struct TracepointField: Hashable, Sendable {
    /// How the field holds its value.
    package enum Storage: Hashable, Sendable {
        /// The value itself, `size` bytes at `offset`.
        case inline
        /// `__data_loc`: a u32 whose low 16 bits are the data's offset from the record's
        /// start and whose high 16 bits are its length (strings include their NUL).
        case dataLocation
        /// `__rel_loc` (Linux 5.19+): as `dataLocation`, but the offset counts from the
        /// end of this u32.
        case relativeLocation
    }

    package let name: String
    package let offset: Int
    package let size: Int
    package let storage: Storage

    package init(name: String, offset: Int, size: Int, storage: Storage) {
        self.name = name
        self.offset = offset
        self.size = size
        self.storage = storage
    }

    static func parse(_ line: Substring) throws(TracepointFormatError) -> TracepointField {
        var declaration: Substring?
        var offset: Int?
        var size: Int?
        for part in line.split(separator: ";") {
            let item = part.trimmingBlanks()
            if item.hasPrefix("field:") {
                declaration = item.dropFirst("field:".count)
            } else if item.hasPrefix("offset:") {
                offset = Int(item.dropFirst("offset:".count))
            } else if item.hasPrefix("size:") {
                size = Int(item.dropFirst("size:".count))
            }
        }
        guard let declaration, let offset, let size, offset >= 0, size > 0 else {
            throw .malformed("unreadable field line: \(line)")
        }
        // `unsigned short common_type`, `u32 tlp_header[4]`, `__data_loc char[] dev_name`:
        // the name is the last word, without an array suffix.
        guard let last = declaration.split(separator: " ").last,
              let name = last.split(separator: "[").first, !name.isEmpty else {
            throw .malformed("field without a name: \(line)")
        }
        let storage: Storage = declaration.hasPrefix("__data_loc") ? .dataLocation
            : declaration.hasPrefix("__rel_loc") ? .relativeLocation : .inline
        if storage != .inline && size != 4 { throw .malformed("a \(storage) field of \(size) bytes: \(line)") }
        return TracepointField(name: String(name), offset: offset, size: size, storage: storage)
    }
}

/// A `format` file that does not say what a tracepoint looks like.
package enum TracepointFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    case malformed(String)
    /// The tracepoint lacks a field the reader needs, or has it in another shape.
    case missingField(String)

    package var description: String {
        switch self {
        case .malformed(let why): return "malformed tracepoint format: \(why)"
        case .missingField(let field): return "tracepoint format lacks the field \(field)"
        }
    }
}

extension Substring {
    func trimmingBlanks() -> Substring {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !blank($0) }), let end = lastIndex(where: { !blank($0) }) else {
            return self[endIndex...]
        }
        return self[start...end]
    }
}
