import Testing
@testable import QMPBroker

/// `query-qmp-schema` entries as QEMU 7.2 would list them. The member layouts are the
/// ones QEMU 7.2's own `query-qmp-schema` shows, e.g. (verbatim from the binary):
///   {"name": "query-yank", "ret-type": "[222]", "allow-oob": true, "meta-type": "command", "arg-type": "0"}
///   {"name": "drive-backup", "ret-type": "0", "meta-type": "command", "arg-type": "30", "features": ["deprecated"]}
///   {"name": "SHUTDOWN", "meta-type": "event", "arg-type": "2"}
///   {"name": "0", "members": [], "meta-type": "object"}
///   {"name": "[str]", "element-type": "str", "meta-type": "array"}
///   {"name": "str", "json-type": "string", "meta-type": "builtin"}
///   {"name": "118", "members": [{"name": "tpm-tis"}, ...], "meta-type": "enum", "values": ["tpm-tis", ...]}
///   object members {"name": ..., "default": null, "type": ...} and {"name": ..., "type": ..., "features": [...]}
struct SchemaIntrospectionTests {
    @Test func entitiesFirstThenTypesInOrderOfFirstUse() throws {
        let lines = try SchemaFixture.catalog().schemaInfo().map(\.description)
        #expect(lines == [
            #"{"name": "thing-add", "ret-type": "qmp-broker-empty", "meta-type": "command", "arg-type": "qmp-broker-Thing", "features": ["unstable"]}"#,
            #"{"name": "thing-list", "ret-type": "[qmp-broker-Thing]", "allow-oob": true, "meta-type": "command", "arg-type": "qmp-broker-empty"}"#,
            #"{"name": "thing-names", "ret-type": "[str]", "meta-type": "command", "arg-type": "qmp-broker-empty"}"#,
            #"{"name": "THING_GONE", "meta-type": "event", "arg-type": "qmp-broker-THING_GONE-arg"}"#,
            #"{"name": "THINGS_RESET", "meta-type": "event", "arg-type": "qmp-broker-empty"}"#,
            #"{"name": "qmp-broker-Thing", "members": [{"name": "id", "type": "str"}, {"name": "size", "default": null, "type": "int"}, {"name": "tags", "type": "[int]"}, {"name": "color", "type": "qmp-broker-Color"}, {"name": "old", "type": "str", "features": ["deprecated"]}], "meta-type": "object"}"#,
            #"{"name": "qmp-broker-empty", "members": [], "meta-type": "object"}"#,
            #"{"name": "[qmp-broker-Thing]", "element-type": "qmp-broker-Thing", "meta-type": "array"}"#,
            #"{"name": "[str]", "element-type": "str", "meta-type": "array"}"#,
            #"{"name": "str", "json-type": "string", "meta-type": "builtin"}"#,
            #"{"name": "qmp-broker-THING_GONE-arg", "members": [{"name": "id", "type": "str"}, {"name": "why", "default": null, "type": "any"}], "meta-type": "object"}"#,
            #"{"name": "int", "json-type": "int", "meta-type": "builtin"}"#,
            #"{"name": "[int]", "element-type": "int", "meta-type": "array"}"#,
            #"{"name": "qmp-broker-Color", "members": [{"name": "red"}, {"name": "green"}], "meta-type": "enum", "values": ["red", "green"]}"#,
            #"{"name": "any", "json-type": "value", "meta-type": "builtin"}"#,
        ])
    }

    @Test func everyTypeTheBrokerSchemaUsesIsListed() {
        let entries = BrokerSchemaCatalog.broker.schemaInfo()
        let names = Set(entries.compactMap { $0["name"]?.string })
        #expect(names.count == entries.count, "no entry twice")
        for entry in entries {
            for key in ["arg-type", "ret-type", "element-type"] {
                if let type = entry[key]?.string { #expect(names.contains(type), "\(type)") }
            }
            for member in entry["members"]?.elements ?? [] {
                if let type = member["type"]?.string { #expect(names.contains(type), "\(type)") }
            }
        }
    }

    @Test func queryBrokerAsQEMUWouldListIt() {
        let entries = BrokerSchemaCatalog.broker.schemaInfo().map(\.description)
        #expect(entries.contains(
            #"{"name": "query-broker", "ret-type": "qmp-broker-BrokerInfo", "allow-oob": true, "meta-type": "command", "arg-type": "qmp-broker-empty"}"#))
        #expect(entries.contains(#"{"name": "BROKER_VMM_CONNECTED", "meta-type": "event", "arg-type": "qmp-broker-BROKER_VMM_CONNECTED-arg"}"#))
        #expect(entries.contains(#"{"name": "qmp-broker-BROKER_VMM_CONNECTED-arg", "members": [{"name": "vm", "type": "str"}], "meta-type": "object"}"#))
    }
}
