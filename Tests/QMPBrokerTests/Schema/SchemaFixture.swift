@testable import QMPBroker

/// A small schema using every construct the catalog supports, in QAPI's own syntax.
enum SchemaFixture {
    static let source = """
        # -*- Mode: Python -*-
        # A comment with 'quotes', { braces and a # hash.
        ##
        # @Color: doc comments are comments too
        ##
        { 'enum': 'Color', 'data': [ 'red', 'green' ] }
        { 'struct': 'Base', 'data': { 'id': 'str' } }   # a trailing comment
        { 'struct': 'Thing', 'base': 'Base',
          'data': { '*size': 'uint64', 'tags': ['int8'], 'color': 'Color',
                    'old': { 'type': 'str', 'features': [ 'deprecated' ] } } }
        { 'command': 'thing-add', 'data': 'Thing', 'features': [ 'unstable' ] }
        { 'command': 'thing-list', 'returns': ['Thing'], 'allow-oob': true }
        { 'command': 'thing-names', 'data': {}, 'returns': ['str'] }
        { 'event': 'THING_GONE', 'data': { 'id': 'str', '*why': 'any' } }
        { 'enum': 'Hash', 'data': [ 'a#b' ] }
        { 'event': 'THINGS_RESET' }
        """

    static func catalog(_ text: String = source) throws -> BrokerSchemaCatalog {
        try BrokerSchemaCatalog(source: Array(text.utf8))
    }
}
