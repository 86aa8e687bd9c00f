import QMPWire

/// Turns parsed QAPI expressions into definitions, checking what the broker relies on:
/// known keywords, existing types, no features of QAPI the introspection here can't describe.
struct QAPIDefinitionReader {
    private var structs: [String: QAPIStruct] = [:]
    private var enums: Set<String> = []

    static func definitions(_ expressions: [JSON]) throws(QAPISchemaError) -> [QAPIDefinition] {
        var reader = QAPIDefinitionReader()
        // Types may be used before they are defined: collect them first.
        for expression in expressions {
            if let name = expression["struct"]?.string {
                reader.structs[name] = try reader.structure(name, expression)
            } else if let name = expression["enum"]?.string {
                reader.enums.insert(name)
            }
        }
        var definitions: [QAPIDefinition] = []
        for expression in expressions {
            if let definition = try reader.definition(expression) { definitions.append(definition) }
        }
        for definition in definitions { try reader.checkReferences(definition) }
        return definitions
    }

    private func definition(_ expression: JSON) throws(QAPISchemaError) -> QAPIDefinition? {
        guard expression.kind == .object else { throw QAPISchemaError("a top-level expression is not an object: \(expression)") }
        if expression["if"] != nil { throw QAPISchemaError("conditionals ('if') are not supported: \(expression)") }
        if let name = expression["struct"]?.string { return .structure(structs[name]!) }
        if let name = expression["enum"]?.string { return .enumeration(try enumeration(name, expression)) }
        if let name = expression["command"]?.string { return .command(try command(name, expression)) }
        if let name = expression["event"]?.string { return .event(try event(name, expression)) }
        if expression["pragma"] != nil { return nil }
        throw QAPISchemaError("unsupported definition (only struct, enum, command, event): \(expression)")
    }

    private func structure(_ name: String, _ expression: JSON) throws(QAPISchemaError) -> QAPIStruct {
        try Self.expectKeys(expression, ["struct", "data", "base", "features"])
        return QAPIStruct(
            name: name, base: expression["base"]?.string,
            members: try Self.members(expression["data"] ?? .object(), of: name),
            features: try Self.features(expression["features"]))
    }

    private func enumeration(_ name: String, _ expression: JSON) throws(QAPISchemaError) -> QAPIEnum {
        try Self.expectKeys(expression, ["enum", "data", "prefix", "features"])
        var values: [String] = []
        for value in expression["data"]?.elements ?? [] {
            guard let text = value.string ?? value["name"]?.string else { throw QAPISchemaError("bad value in enum \(name)") }
            values.append(text)
        }
        return QAPIEnum(name: name, values: values, features: try Self.features(expression["features"]))
    }

    private func command(_ name: String, _ expression: JSON) throws(QAPISchemaError) -> QAPICommand {
        try Self.expectKeys(expression, [
            "command", "data", "returns", "allow-oob", "boxed", "features",
            "gen", "success-response", "allow-preconfig", "coroutine",
        ])
        let data = try Self.arguments(expression["data"], of: name)
        return QAPICommand(
            name: name, data: data, arguments: try flatten(data, of: name),
            returns: try expression["returns"].map { (value) throws(QAPISchemaError) in try Self.typeRef(value, in: name) },
            allowOOB: expression["allow-oob"]?.bool ?? false,
            features: try Self.features(expression["features"]))
    }

    private func event(_ name: String, _ expression: JSON) throws(QAPISchemaError) -> QAPIEvent {
        try Self.expectKeys(expression, ["event", "data", "boxed", "features"])
        let data = try Self.arguments(expression["data"], of: name)
        return QAPIEvent(name: name, data: data, arguments: try flatten(data, of: name),
                         features: try Self.features(expression["features"]))
    }

    /// A named struct's members, its bases' first, as QEMU flattens them.
    private func flatten(_ data: QAPIArguments, of owner: String) throws(QAPISchemaError) -> [QAPIMember] {
        switch data {
        case .none: return []
        case .inline(let members): return members
        case .type(let name):
            var chain: [QAPIStruct] = []
            var next: String? = name
            while let current = next {
                guard let structure = structs[current], chain.count < 64 else {
                    throw QAPISchemaError("\(owner): '\(current)' is not a struct (or its bases loop)")
                }
                chain.insert(structure, at: 0)
                next = structure.base
            }
            return chain.flatMap(\.members)
        }
    }

    private func checkReferences(_ definition: QAPIDefinition) throws(QAPISchemaError) {
        var used: [(owner: String, type: String)] = []
        switch definition {
        case .structure(let structure):
            used = structure.members.map { (structure.name, $0.type.referencedName) }
            if let base = structure.base, structs[base] == nil {
                throw QAPISchemaError("\(structure.name): base '\(base)' is not a struct")
            }
        case .enumeration: break
        case .command(let command):
            used = command.arguments.map { (command.name, $0.type.referencedName) }
            if let returns = command.returns { used.append((command.name, returns.referencedName)) }
            _ = try flatten(command.data, of: command.name)
        case .event(let event):
            used = event.arguments.map { (event.name, $0.type.referencedName) }
        }
        for (owner, type) in used where QAPITypeRef.builtins[type] == nil && structs[type] == nil && !enums.contains(type) {
            throw QAPISchemaError("\(owner): unknown type '\(type)'")
        }
    }

    // MARK: pieces of expressions

    private static func expectKeys(_ expression: JSON, _ allowed: Set<String>) throws(QAPISchemaError) {
        for key in expression.keys where !allowed.contains(key) {
            throw QAPISchemaError("unsupported key '\(key)' in \(expression)")
        }
    }

    private static func arguments(_ data: JSON?, of owner: String) throws(QAPISchemaError) -> QAPIArguments {
        guard let data else { return .none }
        if let name = data.string { return .type(name) }
        return .inline(try members(data, of: owner))
    }

    private static func members(_ data: JSON, of owner: String) throws(QAPISchemaError) -> [QAPIMember] {
        guard data.kind == .object else { throw QAPISchemaError("\(owner): 'data' is not an object") }
        var members: [QAPIMember] = []
        for (key, value) in data.members {
            let optional = key.hasPrefix("*")
            let name = optional ? String(key.dropFirst()) : key
            // A member is 'type', ['type'] or { 'type': ..., 'features': [...] }.
            if value.kind == .object {
                try expectKeys(value, ["type", "features"])
                guard let type = value["type"] else { throw QAPISchemaError("\(owner).\(name): no 'type'") }
                members.append(QAPIMember(name: name, type: try typeRef(type, in: owner), optional: optional,
                                          features: try features(value["features"])))
            } else {
                members.append(QAPIMember(name: name, type: try typeRef(value, in: owner), optional: optional, features: []))
            }
        }
        return members
    }

    private static func typeRef(_ value: JSON, in owner: String) throws(QAPISchemaError) -> QAPITypeRef {
        if let name = value.string { return .named(name) }
        if value.kind == .array, value.count == 1, let element = value[0]?.string { return .array(element) }
        throw QAPISchemaError("\(owner): bad type \(value)")
    }

    private static func features(_ value: JSON?) throws(QAPISchemaError) -> [String] {
        var names: [String] = []
        for feature in value?.elements ?? [] {
            guard let name = feature.string ?? feature["name"]?.string else { throw QAPISchemaError("bad feature \(feature)") }
            names.append(name)
        }
        return names
    }
}
