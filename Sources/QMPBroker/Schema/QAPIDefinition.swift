/// A type as a QAPI schema writes it: a name (`'str'`, `'BrokerVMInfo'`) or an array of one (`['str']`).
public enum QAPITypeRef: Hashable, Sendable, CustomStringConvertible {
    case named(String)
    case array(String)

    public var description: String {
        switch self {
        case .named(let name): name
        case .array(let element): "['\(element)']"
        }
    }
}

/// A member of a struct, or an argument of a command or event (`'*name': 'type'`).
public struct QAPIMember: Hashable, Sendable {
    public let name: String
    public let type: QAPITypeRef
    public let optional: Bool
    public let features: [String]
}

public struct QAPIStruct: Sendable {
    public let name: String
    public let base: String?
    /// The struct's own members, without its base's.
    public let members: [QAPIMember]
    public let features: [String]
}

public struct QAPIEnum: Sendable {
    public let name: String
    public let values: [String]
    public let features: [String]
}

/// What a command or event takes: nothing, members written inline, or a named struct.
public enum QAPIArguments: Sendable {
    case none
    case inline([QAPIMember])
    case type(String)
}

public struct QAPICommand: Sendable {
    public let name: String
    public let data: QAPIArguments
    /// Every argument, a named struct's (and its bases') members included.
    public let arguments: [QAPIMember]
    public let returns: QAPITypeRef?
    public let allowOOB: Bool
    public let features: [String]
}

public struct QAPIEvent: Sendable {
    public let name: String
    public let data: QAPIArguments
    /// Every member of `data`, a named struct's (and its bases') members included.
    public let arguments: [QAPIMember]
    public let features: [String]
}

/// One top-level definition of the subset of QAPI the broker's schema uses
/// (no unions, alternates, conditionals or includes).
public enum QAPIDefinition: Sendable {
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
