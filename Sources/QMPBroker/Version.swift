/// qmp-broker's version, reported by `query-broker` and `--version`.
package enum BrokerVersion {
    package static let string = "0.1.0"
}
