@testable import QMPBroker
@testable import QMPWire
import Testing

/// Upstream's `query-qmp-schema` and `query-commands` answers with the broker's added.
struct SchemaMergeTests {
    /// Entries verbatim from QEMU 7.2's `query-qmp-schema`.
    static let upstream = """
        [{"name": "query-status", "ret-type": "1", "meta-type": "command", "arg-type": "0"},
         {"name": "thing-list", "ret-type": "0", "meta-type": "command", "arg-type": "0"},
         {"name": "0", "members": [], "meta-type": "object"},
         {"name": "str", "json-type": "string", "meta-type": "builtin"},
         {"name": "[str]", "element-type": "str", "meta-type": "array"}]
        """

    @Test func brokerEntriesFollowUpstreamsWithoutRepeats() throws {
        let catalog = try SchemaFixture.catalog()
        let merged = catalog.merge(upstreamSchema: try JSON.parse(Self.upstream))
        let names = merged.elements.compactMap { $0["name"]?.string }
        #expect(names == [
            "query-status", "0", "str", "[str]",
            "thing-add", "thing-list", "thing-names", "THING_GONE", "THINGS_RESET",
            "qmp-broker-Thing", "qmp-broker-empty", "[qmp-broker-Thing]",
            "qmp-broker-THING_GONE-arg", "int", "[int]", "qmp-broker-Color", "any",
        ])
        // Upstream's entries are passed on untouched; the broker's own `thing-list` replaced upstream's.
        #expect(merged[0]?.description == #"{"name": "query-status", "ret-type": "1", "meta-type": "command", "arg-type": "0"}"#)
        #expect(merged[5]?["allow-oob"]?.bool == true)
    }

    @Test func commandsAreAddedOnce() throws {
        let catalog = try SchemaFixture.catalog()
        let merged = catalog.mergeCommands(upstream: try JSON.parse(#"[{"name": "query-status"}, {"name": "thing-list"}]"#))
        #expect(merged.description
            == #"[{"name": "query-status"}, {"name": "thing-list"}, {"name": "thing-add"}, {"name": "thing-names"}]"#)
    }
}
