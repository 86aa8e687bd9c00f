import QMPWire

/// Reads a local command's `arguments` the way QEMU's generated visitors do, with the
/// same error texts: members are visited in schema order (a missing or ill-typed member
/// is reported first), then anything left over is "unexpected".
struct CommandArguments {
    private let object: JSON?
    private var visited: Set<String> = []

    init(_ arguments: JSON?) { object = arguments }

    private mutating func member(_ name: String) -> JSON? {
        visited.insert(name)
        return object?[name]
    }

    mutating func string(_ name: String) throws(QMPError) -> String {
        guard let value = try optionalString(name) else { throw .missingParameter(name) }
        return value
    }

    /// A member of any type, for readers of types not covered here.
    mutating func optionalMember(_ name: String) throws(QMPError) -> JSON? { member(name) }

    mutating func optionalString(_ name: String) throws(QMPError) -> String? {
        guard let value = member(name) else { return nil }
        guard let text = value.string else { throw .invalidParameterType(name, expected: "string") }
        return text
    }

    mutating func integer(_ name: String) throws(QMPError) -> Int64 {
        guard let value = member(name) else { throw .missingParameter(name) }
        guard let number = value.integer else { throw .invalidParameterType(name, expected: "integer") }
        return number
    }

    mutating func optionalBool(_ name: String) throws(QMPError) -> Bool? {
        guard let value = member(name) else { return nil }
        guard let flag = value.bool else { throw .invalidParameterType(name, expected: "boolean") }
        return flag
    }

    /// A QAPI enum member: a string from `values`.
    mutating func optionalEnum<Value: RawRepresentable>(_ name: String, _ type: Value.Type) throws(QMPError) -> Value?
    where Value.RawValue == String {
        guard let text = try optionalString(name) else { return nil }
        guard let value = Value(rawValue: text) else { throw .parameterValueRejected(name, text) }
        return value
    }

    mutating func requiredEnum<Value: RawRepresentable>(_ name: String, _ type: Value.Type) throws(QMPError) -> Value
    where Value.RawValue == String {
        guard let value = try optionalEnum(name, type) else { throw .missingParameter(name) }
        return value
    }

    mutating func optionalStrings(_ name: String) throws(QMPError) -> [String]? {
        guard let value = member(name) else { return nil }
        guard value.kind == .array else { throw .invalidParameterType(name, expected: "array") }
        var strings: [String] = []
        for (index, element) in value.elements.enumerated() {
            guard let text = element.string else { throw .invalidParameterType("\(name)[\(index)]", expected: "string") }
            strings.append(text)
        }
        return strings
    }

    /// Call after reading every member: QEMU's `visit_check_struct`.
    func finish() throws(QMPError) {
        guard let object else { return }
        if let extra = object.keys.first(where: { !visited.contains($0) }) { throw .unexpectedParameter(extra) }
    }
}

extension QMPError {
    static func parameterValueRejected(_ name: String, _ value: String) -> QMPError {
        QMPError("Parameter '\(name)' does not accept value '\(value)'")
    }
}

extension CommandArguments {
    mutating func optionalInteger(_ name: String) throws(QMPError) -> Int64? {
        guard let value = try optionalMember(name) else { return nil }
        guard let integer = value.integer else { throw .invalidParameterType(name, expected: "integer") }
        return integer
    }
}
