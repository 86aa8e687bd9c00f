import ErrorEvents
import Glibc
import QMPWire
import VFIOWatch

/// The VFIO commands of `schemas/qmp-broker.json`, answered by the broker.
enum VFIOCommands {
    static func register(in commands: LocalCommands) {
        commands.register("query-vfio-devices") { request, vm, _, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                try arguments.finish()
                let watching = vm.linkResetWatcher?.watch.isIntact ?? false
                let tracepoint = vm.recovery.hearsAERTracepoint
                let source = vm.linkResetWatcher?.source ?? .none
                return .array(vm.recovery.orderedDevices.map {
                    deviceInfo($0, linkResetWatch: watching, aerTracepoint: tracepoint, source: source)
                })
            }
        }
        commands.register("vfio-device-add") { request, vm, _, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let id = try arguments.string("id")
                let host = try arguments.string("host")
                let mode = try arguments.optionalEnum("policy", DevicePolicy.Mode.self) ?? .forward
                let autoCont = try arguments.optionalBool("auto-cont") ?? false
                let injectAt = try arguments.optionalString("inject-at")
                let trigger = try arguments.optionalEnum("error-trigger", ErrorTriggerMode.self)
                try arguments.finish()
                try vm.run(vm.recovery.handle(.addDevice(id: id, host: host, policy: DevicePolicy(mode, autoCont: autoCont),
                                                         injectAt: injectAt, errorTrigger: trigger)))
                return .object()
            }
        }
        commands.register("vfio-device-del") { request, vm, _, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let id = try arguments.string("id")
                try arguments.finish()
                try vm.run(vm.recovery.handle(.removeDevice(id: id)))
                return .object()
            }
        }
        commands.register("vfio-eventfd-add") { request, vm, client, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let device = try arguments.string("device")
                let severity = try arguments.requiredEnum("severity", EventFDSeverity.self)
                let fdname = try arguments.optionalString("fdname")
                try arguments.finish()
                let fd: Int32
                if let fdname {
                    guard let named = vm.takeNamedFD(fdname) else {
                        throw QMPError("File descriptor named '\(fdname)' not found")
                    }
                    fd = named
                } else {
                    let passed = client.takeFDs()
                    guard let first = passed.first else {
                        throw QMPError("No file descriptor supplied via SCM_RIGHTS")
                    }
                    passed.dropFirst().forEach { _ = close($0) }
                    fd = first
                }
                try vm.run(vm.recovery.handle(.attachEventFD(fd, device: device, severity: severity)))
                return .object()
            }
        }
        commands.register("vfio-device-set-policy") { request, vm, client, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let device = try arguments.string("device")
                let mode = try arguments.requiredEnum("policy", DevicePolicy.Mode.self)
                let current = try vm.recovery.device(device).machine.policy
                let autoCont = try arguments.optionalBool("auto-cont") ?? current.autoCont
                try arguments.finish()
                try vm.run(vm.recovery.handle(.setPolicy(device: device, DevicePolicy(mode, autoCont: autoCont),
                                                         by: .client(client.credentials))))
                return .object()
            }
        }
        commands.register("vfio-link-error-clear") { request, vm, client, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                let device = try arguments.string("device")
                try arguments.finish()
                try vm.run(vm.recovery.handle(.clearLinkError(device: device, by: .client(client.credentials))))
                return .object()
            }
        }
        commands.register("x-vfio-inject-error") { request, vm, _, completion in
            LocalCommands.answer(request, completion) { (arguments: inout CommandArguments) throws(QMPError) in
                guard vm.recovery.settings.allowInject else {
                    throw QMPError("x-vfio-inject-error is disabled; enable it with --allow-inject or allow-inject = true")
                }
                let device = try arguments.string("device")
                let severity = try arguments.requiredEnum("severity", Severity.self)
                let names = try arguments.optionalStrings("errors") ?? []
                try arguments.finish()
                let error: HostError
                do throws(UnknownAERErrorName) {
                    error = try HostError(severity: severity, names: names, count: 1, source: .inject)
                } catch {
                    throw QMPError("Unknown \(severity.rawValue) AER error '\(error.name)'")
                }
                try vm.run(vm.recovery.handle(.injectHostError(error, device: device)))
                return .object()
            }
        }
    }

    /// One entry of `query-vfio-devices`, in the schema's member order.
    /// `linkResetWatch`: whether a guest reset of this device's link would be seen now;
    /// `aerTracepoint`: whether the process hears `ras:aer_event`.
    static func deviceInfo(_ device: WatchedDevice, linkResetWatch: Bool, aerTracepoint: Bool = false,
                           source: LinkResetSource = .none) -> JSON {
        let counters = device.machine.counters
        var members: [(String, JSON)] = [
            ("id", .string(device.id)), ("host", .string(device.host.description)),
            ("policy", .string(device.machine.policy.mode.rawValue)), ("auto-cont", .bool(device.machine.policy.autoCont)),
            ("state", .string(device.machine.status.rawValue)), ("link-error", .bool(device.machine.linkError)),
            ("counters", .qdict([
                "correctable": .integer(Int64(clamping: counters.correctable)),
                "non-fatal": .integer(Int64(clamping: counters.nonFatal)),
                "fatal": .integer(Int64(clamping: counters.fatal)),
            ])),
            ("sources", .strings(device.sourceNames(aerTracepoint: aerTracepoint))), ("inject-at", .string(device.injectTarget)),
            ("error-trigger", .string(device.errorTriggerState)),
            ("host-recovery", .string(device.machine.hostRecovery.rawValue)),
            ("link-reset-watch", .bool(linkResetWatch)),
            ("link-reset-source", .string(source.rawValue)),
            ("present", .bool(device.isPresent)),
        ]
        if let error = device.triggerStatus.error { members.append(("error-trigger-error", .string(error))) }
        if let physicalFunction = device.counters.physicalFunction {
            members.append(("physical-function", .string(physicalFunction.description)))
        }
        return .qdict(members)
    }
}
