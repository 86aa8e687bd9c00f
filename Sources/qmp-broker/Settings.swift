import ArgumentParser
import QMPBroker
import TOMLKit
import Glibc

/// The broker's settings: the TOML config file (if any) with command-line options on top.
///
/// ```toml
/// socket-dir = "/run/qmp-broker"
/// socket-mode = "0660"
/// client-queue-bytes = 4194304
///
/// [[vm]]
/// name = "vm1"
/// qmp = "/run/qemu/vm1.qmp"
/// read-only-socket = true      # also serve DIR/vm1.ro.qmp, query-* only
/// allowed-uids = [0, 107]      # SO_PEERCRED allow-list (uids or gids)
/// ```
struct Settings {
    var vms: [VMConfiguration] = []

    struct ConfigFile: Decodable {
        var socketDir: String?
        var socketMode: String?
        var clientQueueBytes: Int?
        var vm: [VMEntry]?

        enum CodingKeys: String, CodingKey {
            case socketDir = "socket-dir", socketMode = "socket-mode", clientQueueBytes = "client-queue-bytes", vm
        }
    }

    struct VMEntry: Decodable {
        var name: String
        var qmp: String
        var socketMode: String?
        var readOnlySocket: Bool?
        var allowedUids: [UInt32]?
        var allowedGids: [UInt32]?

        enum CodingKeys: String, CodingKey {
            case name, qmp, socketMode = "socket-mode", readOnlySocket = "read-only-socket"
            case allowedUids = "allowed-uids", allowedGids = "allowed-gids"
        }
    }

    static func load(file: String?, vmArguments: [String], socketDirectory: String?) throws -> Settings {
        var config = ConfigFile()
        if let file {
            let text = try readFile(file)
            do {
                config = try TOMLDecoder().decode(ConfigFile.self, from: text)
            } catch {
                throw ValidationError("\(file): \(error)")
            }
        }
        guard let directory = socketDirectory ?? config.socketDir else {
            throw ValidationError("Missing --socket-dir (or socket-dir in the config file).")
        }
        let defaultMode = try parseMode(config.socketMode ?? "0660")
        var entries = config.vm ?? []
        for argument in vmArguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex,
                  argument.index(after: equals) != argument.endIndex else {
                throw ValidationError("--vm takes NAME=QMP_SOCKET, got '\(argument)'.")
            }
            entries.append(VMEntry(name: String(argument[..<equals]), qmp: String(argument[argument.index(after: equals)...])))
        }
        guard !entries.isEmpty else { throw ValidationError("No VM to serve: give --vm NAME=QMP_SOCKET or [[vm]] in the config.") }
        var settings = Settings()
        var seen = Set<String>()
        for entry in entries {
            guard isValidName(entry.name) else {
                throw ValidationError("VM name '\(entry.name)' must be letters, digits, '-', '_' or '.'.")
            }
            guard seen.insert(entry.name).inserted else { throw ValidationError("VM '\(entry.name)' is given twice.") }
            var vm = VMConfiguration(name: entry.name, upstreamPath: entry.qmp, socketPath: "\(directory)/\(entry.name).qmp")
            vm.socketMode = try entry.socketMode.map(parseMode) ?? defaultMode
            if entry.readOnlySocket == true { vm.readOnlySocketPath = "\(directory)/\(entry.name).ro.qmp" }
            vm.allowedUIDs = Set(entry.allowedUids ?? [])
            vm.allowedGIDs = Set(entry.allowedGids ?? [])
            if let bytes = config.clientQueueBytes { vm.clientQueueBytes = bytes }
            settings.vms.append(vm)
        }
        return settings
    }

    static func parseMode(_ text: String) throws -> UInt32 {
        guard let mode = UInt32(text.hasPrefix("0o") ? String(text.dropFirst(2)) : text, radix: 8), mode <= 0o777 else {
            throw ValidationError("Socket mode '\(text)' is not an octal mode like 0660.")
        }
        return mode
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)
        }
    }

    static func readFile(_ path: String) throws -> String {
        guard let file = fopen(path, "r") else { throw ValidationError("Cannot read \(path).") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
