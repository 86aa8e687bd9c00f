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
///
/// [[vm.device]]
/// id = "hostdev0"              # the guest-visible QEMU device id
/// host = "0000:3b:00.0"        # the host PCI address
/// policy = "forward"           # report | forward | stop
/// auto-cont = false
/// ```
struct Settings {
    var vms: [VMConfiguration] = []

    struct ConfigFile: Decodable {
        var socketDir: String?
        var socketMode: String?
        var clientQueueBytes: Int?
        var stateDir: String?
        var sysfsRoot: String?
        var sysfsPollMs: Int?
        var allowInject: Bool?
        var vm: [VMEntry]?

        enum CodingKeys: String, CodingKey {
            case socketDir = "socket-dir", socketMode = "socket-mode", clientQueueBytes = "client-queue-bytes", vm
            case stateDir = "state-dir", sysfsRoot = "sysfs-root", sysfsPollMs = "sysfs-poll-ms"
            case allowInject = "allow-inject"
        }
    }

    struct VMEntry: Decodable {
        var name: String
        var qmp: String
        var socketMode: String?
        var readOnlySocket: Bool?
        var allowedUids: [UInt32]?
        var allowedGids: [UInt32]?
        var device: [DeviceEntry]?

        enum CodingKeys: String, CodingKey {
            case name, qmp, socketMode = "socket-mode", readOnlySocket = "read-only-socket"
            case allowedUids = "allowed-uids", allowedGids = "allowed-gids", device
        }
    }

    struct DeviceEntry: Decodable {
        var id: String
        var host: String
        var policy: String?
        var autoCont: Bool?
        var injectAt: String?

        enum CodingKeys: String, CodingKey {
            case id, host, policy, autoCont = "auto-cont", injectAt = "inject-at"
        }
    }

    /// Options of `run` that shape the VFIO side.
    struct VFIOOptions {
        var sysfsRoot: String?
        var allowInject = false
        var eventFDs: [String] = []
        var stateDirectory: String?
    }

    var stateDirectory: String?

    static func load(file: String?, vmArguments: [String], socketDirectory: String?,
                     vfio: VFIOOptions = VFIOOptions()) throws -> Settings {
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
        settings.stateDirectory = vfio.stateDirectory ?? config.stateDir
        let inherited = try vfio.eventFDs.map(parseEventFD)
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
            vm.recovery.sysfsRoot = vfio.sysfsRoot ?? config.sysfsRoot ?? "/sys"
            vm.recovery.pollMilliseconds = config.sysfsPollMs ?? vm.recovery.pollMilliseconds
            vm.recovery.allowInject = vfio.allowInject || config.allowInject == true
            vm.recovery.devices = (entry.device ?? []).map { device in
                var configured = VFIORecoverySettings.DeviceConfiguration(id: device.id, host: device.host)
                configured.policy = device.policy ?? "forward"
                configured.autoCont = device.autoCont ?? false
                configured.injectAt = device.injectAt
                return configured
            }
            vm.recovery.inheritedEventFDs = inherited.filter { $0.vm == entry.name }.map(\.eventFD)
            settings.vms.append(vm)
        }
        return settings
    }

    /// `--eventfd VM/DEVICE/SEVERITY=FD`: an eventfd inherited from the process that started the broker.
    static func parseEventFD(_ text: String) throws -> (vm: String, eventFD: VFIORecoverySettings.InheritedEventFD) {
        let sides = text.split(separator: "=", maxSplits: 1)
        let path = sides.first?.split(separator: "/") ?? []
        guard sides.count == 2, path.count == 3, let fd = Int32(sides[1]), fd > 2 else {
            throw ValidationError("--eventfd takes VM/DEVICE/SEVERITY=FD (FD > 2), got '\(text)'.")
        }
        return (String(path[0]), .init(device: String(path[1]), severity: String(path[2]), fd: fd))
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
        guard let text = TextFile.read(path) else { throw ValidationError("Cannot read \(path).") }
        return text
    }
}
