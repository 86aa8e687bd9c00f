@testable import QMPBroker
@testable import QMPWire
import Testing

/// Reading a QAPI schema into commands, events and their arguments.
struct BrokerSchemaCatalogTests {
    @Test func theEmbeddedSchemaLoads() {
        let catalog = BrokerSchemaCatalog.broker
        #expect(catalog.commands.contains { $0.name == "query-broker" && $0.allowOOB && $0.arguments.isEmpty })
        for name in ["BROKER_VMM_CONNECTED", "BROKER_VMM_DISCONNECTED"] {
            let event = catalog.events.first { $0.name == name }
            #expect(event?.arguments == [QAPIMember(name: "vm", type: .named("str"), optional: false, features: [])])
        }
    }

    @Test func commandsWithTheirArguments() throws {
        let catalog = try SchemaFixture.catalog()
        #expect(catalog.commands.map(\.name) == ["thing-add", "thing-list", "thing-names"])
        // A named struct's members, its base's first.
        #expect(catalog.commands[0].arguments.map(\.name) == ["id", "size", "tags", "color", "old"])
        #expect(catalog.commands[0].arguments.map(\.type) == [
            .named("str"), .named("uint64"), .array("int8"), .named("Color"), .named("str"),
        ])
        #expect(catalog.commands[0].arguments.map(\.optional) == [false, true, false, false, false])
        #expect(catalog.commands[0].arguments[4].features == ["deprecated"])
        #expect(catalog.commands[1].returns == .array("Thing"))
        #expect(catalog.commands[1].allowOOB)
        #expect(catalog.commands[2].arguments.isEmpty)
    }

    @Test func eventsWithTheirArguments() throws {
        let catalog = try SchemaFixture.catalog()
        #expect(catalog.events.map(\.name) == ["THING_GONE", "THINGS_RESET"])
        #expect(catalog.events[0].arguments.map(\.name) == ["id", "why"])
        #expect(catalog.events[0].arguments.map(\.optional) == [false, true])
        #expect(catalog.events[1].arguments.isEmpty)
    }

    @Test func hashInsideAStringIsNoComment() throws {
        let enums = try SchemaFixture.catalog().definitions.compactMap { if case .enumeration(let e) = $0 { e } else { nil } }
        #expect(enums.map(\.values) == [["red", "green"], ["a#b"]])
    }

    @Test(arguments: [
        ("{ 'command': 'x', 'data': { 'a': 'Nope' } }", "x: unknown type 'Nope'"),
        ("{ 'union': 'U', 'data': {} }", "unsupported definition"),
        ("{ 'struct': 'S', 'data': {}, 'if': 'CONFIG_X' }", "unsupported key 'if'"),
        ("{ 'event': 'E', 'data': { 'a': 'str' }, 'typo': 1 }", "unsupported key 'typo'"),
        ("{ 'event': 'E' ", "schema ends inside an expression"),
        ("{ 'event': 'E' ] }", "schema does not parse: JSON parse error, expected separator in dict"),
    ])
    func badSchemasAreRejected(source: String, message: String) {
        #expect {
            _ = try SchemaFixture.catalog(source)
        } throws: { error in
            String(describing: error).contains(message)
        }
    }
}
