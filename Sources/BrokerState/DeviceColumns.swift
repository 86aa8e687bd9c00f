import ErrorEvents
import GRDB

/// The `device` table's SQL and row mapping.
enum DeviceColumns {
    static let table = "device"

    static let selectColumns = """
        vm, id, host, policy_mode, auto_cont, link_error, stopped_by_broker,
        correctable_errors, non_fatal_errors, fatal_errors, inject_at, origin
        """

    private static let joined = "device LEFT JOIN device_registration USING (vm, id)"
    static let selectOne = "SELECT \(selectColumns) FROM \(joined) WHERE vm = ? AND id = ?"
    static let selectVM = "SELECT \(selectColumns) FROM \(joined) WHERE vm = ? ORDER BY id"

    /// How the device was added; a device without an origin has no registration row.
    static let upsertRegistration = """
        INSERT INTO device_registration (vm, id, inject_at, origin) VALUES (:vm, :id, :injectAt, :origin)
        ON CONFLICT (vm, id) DO UPDATE SET inject_at = excluded.inject_at, origin = excluded.origin
        """

    /// The broker's ownership time is the store's business: kept while ownership goes on,
    /// stamped with `:now` when it begins, cleared when it ends.
    static let upsert = """
        INSERT INTO device (
            vm, id, host, policy_mode, auto_cont, link_error, stopped_by_broker,
            stopped_by_broker_at, correctable_errors, non_fatal_errors, fatal_errors)
        VALUES (
            :vm, :id, :host, :mode, :autoCont, :linkError, :stopped,
            CASE WHEN :stopped THEN :now END, :correctable, :nonFatal, :fatal)
        ON CONFLICT (vm, id) DO UPDATE SET
            host = excluded.host,
            policy_mode = excluded.policy_mode,
            auto_cont = excluded.auto_cont,
            link_error = excluded.link_error,
            stopped_by_broker = excluded.stopped_by_broker,
            stopped_by_broker_at = CASE WHEN excluded.stopped_by_broker
                THEN coalesce(device.stopped_by_broker_at, excluded.stopped_by_broker_at) END,
            correctable_errors = excluded.correctable_errors,
            non_fatal_errors = excluded.non_fatal_errors,
            fatal_errors = excluded.fatal_errors
        """

    static let updateState = """
        UPDATE device SET
            link_error = :linkError,
            stopped_by_broker = :stopped,
            stopped_by_broker_at = CASE WHEN :stopped THEN coalesce(stopped_by_broker_at, :now) END
        WHERE vm = :vm AND id = :id
        """

    static let updateCounters = """
        UPDATE device SET correctable_errors = :correctable, non_fatal_errors = :nonFatal,
            fatal_errors = :fatal
        WHERE vm = :vm AND id = :id
        """

    static let delete = "DELETE FROM device WHERE vm = ? AND id = ?"

    static let selectBrokerStops = """
        SELECT id, stopped_by_broker_at FROM device
        WHERE vm = ? AND stopped_by_broker
        ORDER BY stopped_by_broker_at, id
        """

    static func arguments(_ device: StoredDevice, now: Int64) -> StatementArguments {
        var arguments: StatementArguments = [
            "vm": device.vm, "id": device.id, "host": device.host,
            "mode": device.policy.mode.rawValue, "autoCont": device.policy.autoCont,
            "now": now, "injectAt": device.injectAt, "origin": device.origin,
        ]
        arguments += stateArguments(device.state)
        arguments += counterArguments(device.counters)
        return arguments
    }

    static func stateArguments(_ state: PersistedDeviceState) -> StatementArguments {
        ["linkError": state.linkError, "stopped": state.stoppedByBroker]
    }

    static func counterArguments(_ counters: DeviceErrorCounters) -> StatementArguments {
        [
            "correctable": StoredCount.encode(counters.correctable),
            "nonFatal": StoredCount.encode(counters.nonFatal),
            "fatal": StoredCount.encode(counters.fatal),
        ]
    }

    static func decode(_ row: Row) throws(StateStoreError) -> StoredDevice {
        let columns = ColumnReader(row: row, table: table)
        return StoredDevice(
            vm: try columns.string("vm"),
            id: try columns.string("id"),
            host: try columns.string("host"),
            policy: DevicePolicy(
                try columns.enumeration(DevicePolicy.Mode.self, "policy_mode"),
                autoCont: try columns.bool("auto_cont")),
            state: PersistedDeviceState(
                linkError: try columns.bool("link_error"),
                stoppedByBroker: try columns.bool("stopped_by_broker")),
            counters: DeviceErrorCounters(
                correctable: try columns.count("correctable_errors"),
                nonFatal: try columns.count("non_fatal_errors"),
                fatal: try columns.count("fatal_errors")),
            injectAt: try columns.optionalString("inject_at"),
            origin: try columns.optionalString("origin"))
    }
}
