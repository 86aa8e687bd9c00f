/// A type as a QAPI schema writes it: a name (`'str'`, `'BrokerVMInfo'`) or an array of one (`['str']`).
package enum QAPITypeRef: Hashable, Sendable, CustomStringConvertible {
    case named(String)
    case array(String)

    package var description: String {
        switch self {
        case .named(let name): name
        case .array(let element): "['\(element)']"
        }
    }
}

/// A member of a struct, or an argument of a command or event (`'*name': 'type'`).
package struct QAPIMember: Hashable, Sendable {
    package let name: String
    package let type: QAPITypeRef
    package let optional: Bool
    package let features: [String]
}

package struct QAPIStruct: Sendable {
    package let name: String
    package let base: String?
    /// The struct's own members, without its base's.
    package let members: [QAPIMember]
    package let features: [String]
}

package struct QAPIEnum: Sendable {
    package let name: String
    package let values: [String]
    package let features: [String]
}

/// What a command or event takes: nothing, members written inline, or a named struct.
package enum QAPIArguments: Sendable {
    case none
    case inline([QAPIMember])
    case type(String)
}

package struct QAPICommand: Sendable {
    package let name: String
    package let data: QAPIArguments
    /// Every argument, a named struct's (and its bases') members included.
    package let arguments: [QAPIMember]
    package let returns: QAPITypeRef?
    package let allowOOB: Bool
    package let features: [String]
}

package struct QAPIEvent: Sendable {
    package let name: String
    package let data: QAPIArguments
    /// Every member of `data`, a named struct's (and its bases') members included.
    package let arguments: [QAPIMember]
    package let features: [String]
}

/// One top-level definition of the subset of QAPI the broker's schema uses
/// (no unions, alternates, conditionals or includes).
package enum QAPIDefinition: Sendable {
    case structure(QAPIStruct)
    case enumeration(QAPIEnum)
    case command(QAPICommand)
    case event(QAPIEvent)
}

extension QAPITypeRef {
    /// QAPI's built-in types (`scripts/qapi/schema.py`) and the JSON type introspection reports for each.
    static let builtins: [String: String] = [
        "str": "string", "number": "number", "bool": "boolean", "any": "value", "null": "null",
        "int": "int", "int8": "int", "int16": "int", "int32": "int", "int64": "int",
        "uint8": "int", "uint16": "int", "uint32": "int", "uint64": "int", "size": "int",
    ]

    /// The element or named type, which must exist.
    var referencedName: String {
        switch self {
        case .named(let name), .array(let name): name
        }
    }
}
