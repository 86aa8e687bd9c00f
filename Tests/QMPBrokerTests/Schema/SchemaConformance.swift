@testable import QMPBroker
@testable import QMPWire

/// Checks a JSON value against a type of `schemas/qmp-broker.json`, the way QEMU's
/// generated visitors would accept it: required members present, no unknown members,
/// builtin types, enum values, arrays, nested structs.
struct SchemaConformance {
    let catalog = BrokerSchemaCatalog.broker

    private var structs: [String: QAPIStruct] {
        Dictionary(catalog.definitions.compactMap { if case .structure(let value) = $0 { (value.name, value) } else { nil } },
                   uniquingKeysWith: { first, _ in first })
    }

    private var enums: [String: QAPIEnum] {
        Dictionary(catalog.definitions.compactMap { if case .enumeration(let value) = $0 { (value.name, value) } else { nil } },
                   uniquingKeysWith: { first, _ in first })
    }

    /// Problems with an event's `data` (empty when it conforms).
    func problems(event name: String, data: JSON?) -> [String] {
        guard let event = catalog.events.first(where: { $0.name == name }) else { return ["no event \(name) in the schema"] }
        return problems(members: event.arguments, value: data ?? .object(), path: name)
    }

    func problems(members: [QAPIMember], value: JSON, path: String) -> [String] {
        guard value.kind == .object else { return ["\(path) is not an object"] }
        var found: [String] = []
        for member in members {
            guard let memberValue = value[member.name] else {
                if !member.optional { found.append("\(path).\(member.name) is missing") }
                continue
            }
            found += problems(type: member.type, value: memberValue, path: "\(path).\(member.name)")
        }
        let known = Set(members.map(\.name))
        found += value.keys.filter { !known.contains($0) }.map { "\(path).\($0) is not in the schema" }
        return found
    }

    func problems(type: QAPITypeRef, value: JSON, path: String) -> [String] {
        switch type {
        case .array(let element):
            guard value.kind == .array else { return ["\(path) is not an array"] }
            return value.elements.enumerated().flatMap { problems(type: .named(element), value: $1, path: "\(path)[\($0)]") }
        case .named(let name):
            switch name {
            case "str": return value.kind == .string ? [] : ["\(path) is not a string"]
            case "bool": return value.kind == .bool ? [] : ["\(path) is not a bool"]
            case "int", "int64", "uint64", "size": return value.kind == .integer ? [] : ["\(path) is not an integer"]
            default: break
            }
            if let enumeration = enums[name] {
                return enumeration.values.contains(value.string ?? "\u{0}") ? [] : ["\(path) is not a \(name)"]
            }
            if let structure = structs[name] { return problems(members: structure.members, value: value, path: path) }
            return ["\(path) has unknown type \(name)"]
        }
    }
}
