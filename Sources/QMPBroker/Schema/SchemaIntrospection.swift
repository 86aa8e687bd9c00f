import QMPWire

/// QEMU's `scripts/qapi/introspect.py` applied to the broker's definitions: the
/// `SchemaInfo` entries `query-qmp-schema` lists for them.
///
/// Same algorithm as QEMU: commands and events in definition order, then every type
/// they use, in order of first use. Integer types show as `int`, arrays as `[T]`,
/// optional members get `"default": null`. Where QEMU hides type names behind numbers
/// the broker uses readable names prefixed `qmp-broker-`, which never clash with
/// QEMU's. Members are inserted in QEMU's order and laid out as QEMU's QDict lays them.
struct SchemaIntrospection {
    static let prefix = "qmp-broker-"
    /// QEMU's `q_empty`, the arguments of a command without any (and its return when it has none).
    static let emptyObject = prefix + "empty"

    private enum Pending {
        case builtin(String)
        case array(name: String, element: String)
        case structure(QAPIStruct)
        case enumeration(QAPIEnum)
        case object(name: String, members: [QAPIMember])
    }

    private let structs: [String: QAPIStruct]
    private let enums: [String: QAPIEnum]
    private var pending: [Pending] = []
    private var queued: Set<String> = []

    static func entries(_ definitions: [QAPIDefinition]) -> [JSON] {
        var structs: [String: QAPIStruct] = [:]
        var enums: [String: QAPIEnum] = [:]
        for definition in definitions {
            if case .structure(let structure) = definition { structs[structure.name] = structure }
            if case .enumeration(let enumeration) = definition { enums[enumeration.name] = enumeration }
        }
        var builder = SchemaIntrospection(structs: structs, enums: enums)
        var entries: [JSON] = []
        for definition in definitions {
            switch definition {
            case .command(let command): entries.append(builder.entry(command))
            case .event(let event): entries.append(builder.entry(event))
            case .structure, .enumeration: break  // only listed when used, like QEMU
            }
        }
        var index = 0
        while index < builder.pending.count {  // entries may queue further types
            entries.append(builder.entry(builder.pending[index]))
            index += 1
        }
        return entries
    }

    private init(structs: [String: QAPIStruct], enums: [String: QAPIEnum]) {
        self.structs = structs
        self.enums = enums
    }

    private mutating func entry(_ command: QAPICommand) -> JSON {
        var members: [(String, JSON)] = [
            ("arg-type", .string(use(command.data, of: command.name))),
            ("ret-type", .string(command.returns.map { use($0) } ?? useEmpty())),
        ]
        if command.allowOOB { members.append(("allow-oob", .bool(true))) }
        return Self.entity(members, name: command.name, metaType: "command", features: command.features)
    }

    private mutating func entry(_ event: QAPIEvent) -> JSON {
        Self.entity([("arg-type", .string(use(event.data, of: event.name)))],
                    name: event.name, metaType: "event", features: event.features)
    }

    private mutating func entry(_ type: Pending) -> JSON {
        switch type {
        case .builtin(let name):
            return Self.entity([("json-type", .string(QAPITypeRef.builtins[name]!))], name: name, metaType: "builtin")
        case .array(let name, let element):
            return Self.entity([("element-type", .string(element))], name: name, metaType: "array")
        case .structure(let structure):
            return object(name: Self.prefix + structure.name, members: flattened(structure), features: structure.features)
        case .enumeration(let enumeration):
            let members = JSON.array(enumeration.values.map { JSON.qdict([("name", .string($0))]) })
            return Self.entity([("members", members), ("values", .strings(enumeration.values))],
                               name: Self.prefix + enumeration.name, metaType: "enum", features: enumeration.features)
        case .object(let name, let members):
            return object(name: name, members: members, features: [])
        }
    }

    private mutating func object(name: String, members: [QAPIMember], features: [String]) -> JSON {
        let list = JSON.array(members.map { member in
            var fields: [(String, JSON)] = [("name", .string(member.name)), ("type", .string(use(member.type)))]
            if member.optional { fields.append(("default", .null)) }
            if !member.features.isEmpty { fields.append(("features", .strings(member.features))) }
            return JSON.qdict(fields)
        })
        return Self.entity([("members", list)], name: name, metaType: "object", features: features)
    }

    /// introspect.py's `_gen_tree()`: the fields, then name, meta-type and features.
    private static func entity(_ fields: [(String, JSON)], name: String, metaType: String, features: [String] = []) -> JSON {
        var members = fields + [("name", .string(name)), ("meta-type", .string(metaType))]
        if !features.isEmpty { members.append(("features", .strings(features))) }
        return JSON.qdict(members)
    }

    // MARK: type names, queueing each type on first use

    private mutating func use(_ data: QAPIArguments, of owner: String) -> String {
        switch data {
        case .none, .inline([]): return useEmpty()
        case .inline(let members): return queue(Self.prefix + owner + "-arg", .object(name: Self.prefix + owner + "-arg", members: members))
        case .type(let name): return use(.named(name))
        }
    }

    private mutating func use(_ type: QAPITypeRef) -> String {
        let name = Self.name(of: type)
        switch type {
        case .named(let type):
            if QAPITypeRef.builtins[type] != nil { return queue(name, .builtin(name)) }
            if let structure = structs[type] { return queue(name, .structure(structure)) }
            return queue(name, .enumeration(enums[type]!))
        case .array(let element):
            // QEMU queues the array before its element.
            _ = queue(name, .array(name: name, element: Self.name(of: .named(element))))
            _ = use(.named(element))
            return name
        }
    }

    /// introspect.py's `_use_type()` naming: every integer type is plain `int`.
    private static func name(of type: QAPITypeRef) -> String {
        switch type {
        case .named(let name):
            guard let jsonType = QAPITypeRef.builtins[name] else { return prefix + name }
            return jsonType == "int" ? "int" : name
        case .array(let element):
            return "[\(name(of: .named(element)))]"
        }
    }

    private mutating func useEmpty() -> String {
        queue(Self.emptyObject, .object(name: Self.emptyObject, members: []))
    }

    private mutating func queue(_ name: String, _ type: Pending) -> String {
        if queued.insert(name).inserted { pending.append(type) }
        return name
    }

    private func flattened(_ structure: QAPIStruct) -> [QAPIMember] {
        guard let base = structure.base.flatMap({ structs[$0] }) else { return structure.members }
        return flattened(base) + structure.members
    }
}
