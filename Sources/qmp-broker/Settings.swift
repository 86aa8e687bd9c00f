import BrokerState
import ErrorEvents
import QMPBroker
import VFIOWatch

/// The broker's settings: the TOML config file (if any) with command-line options on top.
/// The keys, their types and defaults are listed once, in `ConfigKeys`.
///
/// ```toml
/// socket-dir = "/run/qmp-broker"
/// state-dir = "/var/lib/qmp-broker"
///
/// [[vm]]
/// name = "vm1"
/// qmp = "/run/qemu/vm1.qmp"
/// allowed-uids = [0, 107]
///
/// [[vm.device]]
/// id = "hostdev0"
/// host = "0000:3b:00.0"
/// policy = "forward"
/// ```
struct Settings {
    var vms: [VMConfiguration] = []
    var socketDirectory = ""
    var stateDirectory: String?
    var historyRetention = HistoryRetentionSetting()

    /// Options of `run` that shape the VFIO side.
    struct VFIOOptions {
        var sysfsRoot: String?
        var allowInject = false
        var eventFDs: [String] = []
        var stateDirectory: String?
        /// At start the `--eventfd` descriptors are taken, so each must be an open eventfd
        /// of a configured device; a reload only compares them.
        var takingEventFDs = true
    }

    struct HistoryRetentionSetting {
        var maxAgeDays = HistoryRetention.defaultMaxAgeDays
        var maxRows = HistoryRetention.defaultMaxRows
    }

    /// Reads, checks and combines everything; all problems are reported together.
    static func load(file: String?, vmArguments: [String], socketDirectory: String?,
                     vfio: VFIOOptions = VFIOOptions()) throws(ConfigProblems) -> Settings {
        var reader = ConfigReader(source: file ?? "command line")
        var top = ConfigTable(location: "top level")
        if let file {
            let text: String
            switch ConfigFile.read(file) {
            case .text(let read):
                text = read
            case .unreadable(let problem):
                reader.problems.add(problem)
                throw reader.problems
            }
            // After a syntax error nothing else can be judged.
            guard let table = reader.read(text: text) else { throw reader.problems }
            top = table
        }
        var check = SettingsCheck(problems: reader.problems)
        let settings = check.settings(top: top, vmArguments: vmArguments, socketDirectory: socketDirectory, vfio: vfio)
        if vfio.takingEventFDs { check.inheritedDescriptors(vfio.eventFDs) }
        guard check.problems.isEmpty else { throw check.problems }
        return settings
    }
}

/// The value checks: each problem is noted and checking goes on.
struct SettingsCheck {
    var problems: ConfigProblems

    /// uid_t/gid_t are 32 bits and (uid_t)-1 means "no change" to chown: never a real id.
    static let idRange: ClosedRange<Int> = 0...Int(UInt32.max - 1)

    mutating func settings(top: ConfigTable, vmArguments: [String], socketDirectory: String?,
                           vfio: Settings.VFIOOptions) -> Settings {
        var settings = Settings()
        let directory = socketDirectory ?? top.string("socket-dir")
        if directory == nil { problems.add("missing --socket-dir (or socket-dir in the config file)") }
        settings.socketDirectory = directory ?? ""
        settings.stateDirectory = vfio.stateDirectory ?? top.string("state-dir")
        let defaults = ConfigKeys.vmDefaults
        let defaultMode = top.string("socket-mode").flatMap { mode($0, key: "socket-mode", at: top.location) } ?? defaults.socketMode
        let traceMode = top.string("trace-log-mode").flatMap { mode($0, key: "trace-log-mode", at: top.location) } ?? defaults.traceLogMode
        let traceOwner = top.string("trace-log-owner").flatMap { owner($0, at: top.location) }
        let queueBytes = positive(top.integer("client-queue-bytes"), key: "client-queue-bytes", at: top.location)
        // 0 turns polling off: the counters are then read on notifications only.
        let pollMs = top.integer("sysfs-poll-ms").flatMap { value in
            value == 0 ? 0 : inRange(value, 10...3_600_000, key: "sysfs-poll-ms", at: top.location)
        }
        settings.historyRetention.maxAgeDays = positive(top.integer("history-max-age-days"), key: "history-max-age-days",
                                                        at: top.location) ?? settings.historyRetention.maxAgeDays
        settings.historyRetention.maxRows = positive(top.integer("history-max-rows"), key: "history-max-rows",
                                                     at: top.location) ?? settings.historyRetention.maxRows
        var entries = top.tables("vm")
        for argument in vmArguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex,
                  argument.index(after: equals) != argument.endIndex else {
                problems.add("--vm takes NAME=QMP_SOCKET, got '\(argument)'")
                continue
            }
            let name = String(argument[..<equals])
            var entry = ConfigTable(location: "--vm \(name)")
            entry.values["name"] = .string(name)
            entry.values["qmp"] = .string(String(argument[argument.index(after: equals)...]))
            entries.append(entry)
        }
        if entries.isEmpty && problems.isEmpty { problems.add("no VM to serve: give --vm NAME=QMP_SOCKET or [[vm]] in the config") }
        var inherited: [EventFDArgument] = []
        for text in vfio.eventFDs {
            if let parsed = Self.parseEventFD(text) { inherited.append(parsed) } else {
                problems.add("--eventfd takes VM/DEVICE/SEVERITY=FD (FD > 2), got '\(text)'")
            }
        }
        var names = Set<String>()
        var hostOwners: [String: String] = [:]
        for entry in entries {
            guard let name = entry.string("name"), let qmp = entry.string("qmp") else { continue }
            if !Self.isValidName(name) {
                problems.add("\(entry.location): name '\(name)' must be letters, digits, '-', '_' or '.', not starting with '.'")
            }
            if !names.insert(name).inserted { problems.add("\(entry.location): VM '\(name)' is given twice") }
            var vm = VMConfiguration(name: name, upstreamPath: qmp, socketPath: "\(settings.socketDirectory)/\(name).qmp")
            vm.socketMode = entry.string("socket-mode").flatMap { mode($0, key: "socket-mode", at: entry.location) } ?? defaultMode
            vm.traceLogMode = traceMode
            vm.traceLogOwner = traceOwner
            vm.vmmPIDFile = entry.string("pid-file")
            if entry.boolean("read-only-socket") == true { vm.readOnlySocketPath = "\(settings.socketDirectory)/\(name).ro.qmp" }
            vm.allowedUIDs = ids(entry.integers("allowed-uids") ?? [], key: "allowed-uids", at: entry.location)
            vm.allowedGIDs = ids(entry.integers("allowed-gids") ?? [], key: "allowed-gids", at: entry.location)
            if let queueBytes { vm.clientQueueBytes = queueBytes }
            vm.clientsStayConnected = entry.boolean("clients-stay-connected") ?? vm.clientsStayConnected
            vm.linkResetCheckMilliseconds = entry.integer("link-reset-check-ms")
                .flatMap { inRange($0, 100...3_600_000, key: "link-reset-check-ms", at: entry.location) } ?? vm.linkResetCheckMilliseconds
            vm.eventRingSize = entry.integer("event-ring-size")
                .flatMap { inRange($0, 1...1_000_000, key: "event-ring-size", at: entry.location) } ?? vm.eventRingSize
            vm.handshakeTimeoutMilliseconds = entry.integer("handshake-timeout-ms")
                .flatMap { inRange($0, 1...3_600_000, key: "handshake-timeout-ms", at: entry.location) } ?? vm.handshakeTimeoutMilliseconds
            vm.commandTimeoutMilliseconds = entry.integer("command-timeout-ms")
                .flatMap { inRange($0, 1...86_400_000, key: "command-timeout-ms", at: entry.location) } ?? vm.commandTimeoutMilliseconds
            vm.recovery.sysfsRoot = vfio.sysfsRoot ?? top.string("sysfs-root") ?? vm.recovery.sysfsRoot
            vm.recovery.pollMilliseconds = pollMs ?? vm.recovery.pollMilliseconds
            vm.recovery.pollMillisecondsBesideTracepoint = pollMs ?? vm.recovery.pollMillisecondsBesideTracepoint
            vm.recovery.allowInject = vfio.allowInject || top.boolean("allow-inject") == true
            var deviceIDs = Set<String>()
            for table in entry.tables("device") {
                guard let device = device(table, vm: name, hostOwners: &hostOwners) else { continue }
                if !deviceIDs.insert(device.id).inserted {
                    problems.add("\(table.location): device id '\(device.id)' is given twice")
                }
                vm.recovery.devices.append(device)
            }
            vm.recovery.inheritedEventFDs = inherited.filter { $0.vm == name }.compactMap(\.eventFD)
            do throws(ConfigurationProblem) {
                // Devices already reported above are not reported twice.
                var whole = vm
                whole.recovery.devices.removeAll { $0.injectAt.map(Self.isSeveralWords) == true }
                try whole.validate()
            } catch {
                problems.add(error.description)
            }
            settings.vms.append(vm)
        }
        for fd in inherited {
            let flag = "--eventfd \(fd.vm)/\(fd.device)/\(fd.severity)=\(fd.fd)"
            guard let vm = settings.vms.first(where: { $0.name == fd.vm }) else {
                problems.add("\(flag): names VM '\(fd.vm)', which is not configured")
                continue
            }
            // An eventfd for a device nobody watches would protect nothing while the
            // orchestrator believes the device is covered.
            if vfio.takingEventFDs && !vm.recovery.devices.contains(where: { $0.id == fd.device }) {
                problems.add("\(flag): device '\(fd.device)' is not a [[vm.device]] of VM '\(fd.vm)'")
            }
            if fd.eventFD == nil {
                problems.add("\(flag): unknown severity \"\(fd.severity)\"; expected one of \(Self.eventFDSeverities.joined(separator: ", "))")
            }
        }
        return settings
    }

    private mutating func device(_ table: ConfigTable, vm: String,
                                 hostOwners: inout [String: String]) -> VFIORecoverySettings.DeviceConfiguration? {
        guard let id = table.string("id"), let host = table.string("host") else { return nil }
        if id.isEmpty { problems.add("\(table.location): `id` must not be empty") }
        var device = VFIORecoverySettings.DeviceConfiguration(id: id, host: host)
        if let address = HostAddress(host) {
            let claimant = "VM '\(vm)' device '\(id)'"
            if let owner = hostOwners[address.description] {
                problems.add("\(table.location): host \(address) is already claimed by \(owner)")
            } else {
                hostOwners[address.description] = claimant
            }
        } else {
            problems.add("\(table.location): `host` must be a PCI address like 0000:3b:00.0, got \"\(host)\"")
        }
        if let text = table.string("policy") {
            if let mode = DevicePolicy.Mode(rawValue: text) {
                device.policy.mode = mode
            } else {
                let hint = NearestName.to(text, among: ConfigKeys.policies).map { " (did you mean `\($0)`?)" } ?? ""
                problems.add("\(table.location): unknown policy \"\(text)\"\(hint); expected one of \(ConfigKeys.policies.joined(separator: ", "))")
            }
        }
        if let text = table.string("error-trigger") {
            device.errorTrigger = ErrorTriggerMode(rawValue: text)
            if device.errorTrigger == nil {
                problems.add("\(table.location): unknown error-trigger \"\(text)\"; expected one of \(ConfigKeys.errorTriggers.joined(separator: ", "))")
            }
        }
        device.autoCont = table.boolean("auto-cont") ?? device.autoCont
        device.injectAt = table.string("inject-at")
        if let target = device.injectAt, Self.isSeveralWords(target) {
            problems.add("\(table.location): `inject-at` must be one QEMU device id, got \"\(target)\"")
        }
        return device
    }

    private mutating func mode(_ text: String, key: String, at location: String) -> UInt32? {
        let digits = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
        guard let mode = UInt32(digits, radix: 8), mode <= 0o777 else {
            problems.add("\(location): `\(key)` must be an octal mode like 0660, got \"\(text)\"")
            return nil
        }
        return mode
    }

    private mutating func ids(_ values: [Int], key: String, at location: String) -> Set<UInt32> {
        var ids = Set<UInt32>()
        for value in values {
            if let id = inRange(value, Self.idRange, key: key, at: location) { ids.insert(UInt32(id)) }
        }
        return ids
    }

    /// `USER`, `UID` or `UID:GID`; a user name takes its primary group.
    private mutating func owner(_ text: String, at location: String) -> VMConfiguration.FileOwner? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2, let uid = Int(parts[0]), let gid = Int(parts[1]),
           Self.idRange.contains(uid), Self.idRange.contains(gid) {
            return .init(uid: UInt32(uid), gid: UInt32(gid))
        }
        if parts.count == 1, let uid = Int(parts[0]), Self.idRange.contains(uid) {
            return .init(uid: UInt32(uid), gid: UInt32(uid))
        }
        if parts.count == 1, let account = UserAccount(name: text) {
            return .init(uid: account.uid, gid: account.gid)
        }
        problems.add("\(location): `trace-log-owner` must be USER, UID or UID:GID (ids 0...\(Self.idRange.upperBound)), got \"\(text)\"")
        return nil
    }

    private mutating func positive(_ value: Int?, key: String, at location: String) -> Int? {
        value.flatMap { inRange($0, 1...Int.max, key: key, at: location) }
    }

    private mutating func inRange(_ value: Int, _ range: ClosedRange<Int>, key: String, at location: String) -> Int? {
        guard range.contains(value) else {
            let upper = range.upperBound == Int.max ? "" : "\(range.upperBound)"
            problems.add("\(location): `\(key)` must be in \(range.lowerBound)...\(upper), got \(value)")
            return nil
        }
        return value
    }

    static let eventFDSeverities = EventFDSeverity.allCases.map(\.rawValue)

    /// Each `--eventfd` descriptor must be an eventfd this process holds: a closed number
    /// (or another file) would be watched as if it were the device's error interrupt, and
    /// nothing would ever be heard on it.
    mutating func inheritedDescriptors(_ arguments: [String]) {
        for text in arguments {
            guard let inherited = Self.parseEventFD(text) else { continue }  // reported with the syntax
            switch InheritedDescriptor.kind(of: inherited.fd) {
            case .eventFD:
                break
            case .closed:
                problems.add("--eventfd \(text): descriptor \(inherited.fd) is not open in this process")
            case .other(let target):
                problems.add("--eventfd \(text): descriptor \(inherited.fd) is \(target), not an eventfd")
            }
        }
    }

    /// `--eventfd VM/DEVICE/SEVERITY=FD` as written: an eventfd inherited from the process
    /// that started the broker. The severity is checked (and reported) with the VM's devices.
    struct EventFDArgument {
        let vm: String
        let device: String
        let severity: String
        let fd: Int32

        /// Nil when the severity is not one of `EventFDSeverity`.
        var eventFD: VFIORecoverySettings.InheritedEventFD? {
            EventFDSeverity(rawValue: severity).map { .init(device: device, severity: $0, fd: fd) }
        }
    }

    static func parseEventFD(_ text: String) -> EventFDArgument? {
        let sides = text.split(separator: "=", maxSplits: 1)
        let path = sides.first?.split(separator: "/") ?? []
        guard sides.count == 2, path.count == 3, let fd = Int32(sides[1]), fd > 2 else { return nil }
        return EventFDArgument(vm: String(path[0]), device: String(path[1]), severity: String(path[2]), fd: fd)
    }

    /// Blanks or control characters: more than one word on the HMP command line.
    static func isSeveralWords(_ text: String) -> Bool {
        text.isEmpty || text.contains { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)
        }
    }
}
