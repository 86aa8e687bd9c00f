import BrokerSchema
import QMPWire

/// What the broker adds to QMP, read from `schemas/qmp-broker.json`: its commands
/// and events, their introspection entries, and the merge of both into upstream's
/// `query-qmp-schema` and `query-commands` answers.
package struct BrokerSchemaCatalog: Sendable {
    package let definitions: [QAPIDefinition]

    /// The embedded schema; a schema that does not load is a build defect, caught by the tests.
    package static let broker: BrokerSchemaCatalog = {
        do {
            return try BrokerSchemaCatalog(source: BrokerSchema.source)
        } catch {
            fatalError("schemas/qmp-broker.json: \(error)")
        }
    }()

    package init(source: [UInt8]) throws(QAPISchemaError) {
        definitions = try QAPIDefinitionReader.definitions(QAPISource.expressions(source))
    }

    package var commands: [QAPICommand] {
        definitions.compactMap { if case .command(let command) = $0 { command } else { nil } }
    }

    package var events: [QAPIEvent] {
        definitions.compactMap { if case .event(let event) = $0 { event } else { nil } }
    }

    /// The `SchemaInfo` entries QEMU's `query-qmp-schema` would list for these definitions.
    package func schemaInfo() -> [JSON] { SchemaIntrospection.entries(definitions) }

    /// Upstream's `query-qmp-schema` return value plus the broker's entries. Entries
    /// upstream already has (builtins such as `str`, arrays such as `[str]`) are not
    /// repeated; a command or event of upstream's with a broker command's or event's
    /// name is replaced, since the broker answers it.
    package func merge(upstreamSchema: JSON) -> JSON {
        let own = schemaInfo()
        let entities = Set(commands.map(\.name) + events.map(\.name))
        let merged = JSON.array()
        var names: Set<String> = []
        for entry in upstreamSchema.elements {
            let name = entry["name"]?.string ?? ""
            let metaType = entry["meta-type"]?.string
            if entities.contains(name) && (metaType == "command" || metaType == "event") { continue }
            names.insert(name)
            merged.append(entry)
        }
        for entry in own where !names.contains(entry["name"]?.string ?? "") { merged.append(entry) }
        return merged
    }

    /// Upstream's `query-commands` return value plus `{"name": ...}` for each broker command it lacks.
    package func mergeCommands(upstream: JSON) -> JSON {
        let merged = JSON.array()
        var names: Set<String> = []
        for entry in upstream.elements {
            names.insert(entry["name"]?.string ?? "")
            merged.append(entry)
        }
        for command in commands where !names.contains(command.name) {
            merged.append(.qdict([("name", .string(command.name))]))
        }
        return merged
    }
}
