/// The QAPI schema of everything qmp-broker adds to QMP, embedded from `qmp-broker.json`.
public enum BrokerSchema {
    /// The schema file's bytes exactly as committed (QAPI syntax: JSON with `#` comments, single quotes).
    public static var source: [UInt8] { PackageResources.qmp_broker_json }
}
