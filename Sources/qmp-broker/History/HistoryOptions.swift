import ArgumentParser
import BrokerState
import Glibc
import QMPWire

/// What `history` and `summary` share: where the database is, and the filters.
struct HistoryOptions: ParsableArguments {
    @Option(name: .customLong("state-dir"), help: "The broker's --state-dir (holds qmp-broker.sqlite).")
    var stateDirectory = "/var/lib/qmp-broker"

    @Option(help: ArgumentHelp(HumanTime.sinceHelp))
    var since: String?

    @Option(help: "Only this VM.")
    var vm: String?

    @Option(help: "Only this device id.")
    var device: String?

    @Flag(help: "JSON instead of text.")
    var json = false

    var databasePath: String { "\(stateDirectory)/qmp-broker.sqlite" }

    /// Opens the broker's own file; never creates one where there was none.
    func openStore() throws -> StateStore {
        guard access(databasePath, R_OK) == 0 else {
            throw ValidationError("No readable state database at \(databasePath) (give the broker's --state-dir).")
        }
        do {
            return try StateStore(path: databasePath)
        } catch {
            throw ValidationError("Cannot open \(databasePath): \(error)")
        }
    }

    func query(limit: Int) throws -> HistoryQuery {
        var query = HistoryQuery(vm: vm, device: device, limit: limit)
        if let since {
            guard let micros = HumanTime.parseSince(since, now: WallClock.microsecondsSinceEpoch()) else {
                throw ValidationError("--since takes 90s, 15m, 2h, 7d, 1w, a UTC time like 2026-12-01T10:00:00Z, or @EPOCH; got '\(since)'.")
            }
            query.sinceMicroseconds = micros
        }
        return query
    }
}
