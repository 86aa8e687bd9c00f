/// qmp-broker's version, reported by `query-broker` and `--version`.
public enum BrokerVersion {
    public static let string = "0.1.0"
}
