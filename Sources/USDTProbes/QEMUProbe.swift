import LinkResetTrace

/// The QEMU trace events the broker watches through their USDT probes (provider `qemu`,
/// one probe per trace event in a build configured `--enable-trace-backends=dtrace`),
/// and how a probe hit becomes the same `QEMUTraceLine.Event` the log backend's line
/// would (hw/pci/trace-events, hw/vfio/trace-events, hw/core/trace-events,
/// monitor/trace-events of QEMU 7.2 give the argument lists).
package enum QEMUProbe: String, CaseIterable, Sendable {
    /// `(const char *dev, uint32_t bus, uint32_t slot, uint32_t func, unsigned offset, unsigned val)`
    case pciConfigWrite = "pci_cfg_write"
    /// `(const char *name, const char *type)`: the host address and `one` or `multi`.
    case vfioHotReset = "vfio_pci_hot_reset"
    /// `(const char *name, const char *result)`
    case vfioHotResetResult = "vfio_pci_hot_reset_result"
    /// `(void *obj, const char *objtype, unsigned count, int type)`
    case resetEnterBegin = "resettable_phase_enter_begin"
    /// `(void *obj, const char *objtype, unsigned count)`
    case resetExitEnd = "resettable_phase_exit_end"
    /// `(void *mon, const char *req)`: every QMP request QEMU reads; the canary, whose id
    /// is in `req` (read at the hit through a tracefs event, `USDTCanaryEvent`).
    /// Not `monitor_qmp_cmd_in_band`: QEMU 7.2 guards that one with
    /// `trace_event_get_state` (its own switch, which a dtrace build never turns on), while
    /// `handle_qmp_command` is guarded with `trace_event_get_state_backends`, which the
    /// probe's semaphore turns on (monitor/qmp.c).
    case qmpRequest = "handle_qmp_command"

    /// `handle_qmp_command`'s `req` (`8@(%rax)` in Debian's 7.2 build: the `GString`).
    package static let qmpRequestTextArgument = 1

    package static let provider = "qemu"

    /// Probes the watch cannot do without (a system reset's bracket and the vfio ones are
    /// in every QEMU build with the PCI and vfio code, the canary proves the path).
    package static let required: [QEMUProbe] = [.pciConfigWrite, .resetEnterBegin, .resetExitEnd, .qmpRequest]

    /// How many arguments the handler reads: fewer in the note means another QEMU.
    var minimumArgumentCount: Int {
        switch self {
        case .pciConfigWrite: 6
        case .vfioHotReset, .vfioHotResetResult, .resetEnterBegin, .resetExitEnd, .qmpRequest: 2
        }
    }

    /// What one hit of this probe says. `values` are the decoded arguments (pointers as
    /// numbers); `string` reads a NUL-terminated string from the traced process (nil when
    /// unreadable).
    package func hit(values: [Int64], string: (Int64) -> String?) -> QEMUProbeHit? {
        guard values.count >= minimumArgumentCount else { return nil }
        switch self {
        case .pciConfigWrite:
            guard let model = string(values[0]),
                  let bus = UInt8(exactly: values[1]), let slot = UInt8(exactly: values[2]), slot < 32,
                  let function = UInt8(exactly: values[3]), function < 8,
                  let offset = UInt16(exactly: values[4]), let value = UInt32(exactly: values[5])
            else { return nil }
            let address = GuestPCIAddress(bus: bus, slot: slot, function: function)
            return .trace(.configWrite(PCIConfigAccess(model: model, address: address, offset: offset, value: value)))
        case .vfioHotReset:
            guard let host = string(values[0]), let scopeText = string(values[1]),
                  let scope = VFIOHotResetScope(rawValue: scopeText) else { return nil }
            return .trace(.vfioHotReset(host: host, scope: scope))
        case .vfioHotResetResult:
            guard let host = string(values[0]), let result = string(values[1]) else { return nil }
            return .trace(.vfioHotResetResult(host: host, result: result))
        case .resetEnterBegin, .resetExitEnd:
            // Only the main system bus's bracket is a system reset (as the log parser).
            guard string(values[1]) == "System" else { return nil }
            return .trace(.systemReset(self == .resetEnterBegin ? .begin : .end))
        case .qmpRequest:
            // Only the monitor: the request's JSON (`8@(%rax)`) is freed as soon as the
            // probe returns, so reading it later from the process yields garbage (seen on
            // the dtrace build); a perf sample carries registers, not memory.
            return .qmpRequest(monitor: values[0])
        }
    }
}

package enum QEMUProbeHit: Equatable, Sendable {
    case trace(QEMUTraceLine.Event)
    /// QEMU read a QMP request on the monitor at this address.
    case qmpRequest(monitor: Int64)
}

/// The probes of one QEMU binary that the broker would arm, or why it cannot.
package struct QEMUProbeSites: Equatable, Sendable {
    package let sites: [QEMUProbe: [USDTProbeSite]]

    package enum Unusable: Error, Equatable, Sendable, CustomStringConvertible {
        case noProbes
        case missing([String])
        case bad(String)

        package var description: String {
            switch self {
            case .noProbes: "the VMM's binary has no USDT probes (.note.stapsdt)"
            case .missing(let names): "the VMM's binary lacks the USDT probes \(names.joined(separator: ", "))"
            case .bad(let reason): "the VMM's USDT probes cannot be used: \(reason)"
            }
        }
    }

    /// The sites of the watched probes (a probe inlined in several places has several).
    package init(image: ELFImage) throws(Unusable) {
        let probes: [USDTProbe]
        do {
            probes = try USDTProbe.probes(in: image)
        } catch {
            throw .bad("\(error)")
        }
        guard !probes.isEmpty else { throw .noProbes }
        var sites: [QEMUProbe: [USDTProbeSite]] = [:]
        for probe in probes where probe.provider == QEMUProbe.provider {
            guard let watched = QEMUProbe(rawValue: probe.name) else { continue }
            let site: USDTProbeSite
            do {
                site = try USDTProbeSite(probe, in: image)
            } catch {
                throw .bad("\(error)")
            }
            guard site.arguments.count >= watched.minimumArgumentCount else {
                throw .bad("\(probe.name) has \(site.arguments.count) arguments")
            }
            sites[watched, default: []].append(site)
        }
        let missing = QEMUProbe.required.filter { sites[$0] == nil }
        guard missing.isEmpty else { throw .missing(missing.map(\.rawValue)) }
        self.sites = sites
    }

    /// The probe count in the binary's notes, for the log.
    package var siteCount: Int { sites.values.reduce(0) { $0 + $1.count } }
}

extension USDTArgument {
    /// The argument's value: a register's from the sample, a memory operand's through
    /// `readMemory(address, size)` (the traced process's memory, little-endian), nil when
    /// the register was not sampled or the memory is unreadable.
    package func resolve(registers: [Int: UInt64], readMemory: (UInt64, Int) -> UInt64?) -> Int64? {
        switch location {
        case .constant(let value):
            return value
        case .register(let register):
            return registers[register.rawValue].map { value(fromRaw: $0) }
        case .memory(let base, let displacement):
            guard let baseValue = registers[base.rawValue], let raw = readMemory(baseValue &+ UInt64(bitPattern: displacement), size)
            else { return nil }
            return value(fromRaw: raw)
        }
    }
}
