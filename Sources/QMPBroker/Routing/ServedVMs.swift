import Synchronization

/// The VMs of a broker and the configuration last applied to each (a device-only reload
/// changes the latter, not the VM object).
final class ServedVMs: Sendable {
    private let state: Mutex<[(vm: VMBroker, configuration: VMConfiguration)]>

    init(_ vms: [VMBroker]) { state = Mutex(vms.map { ($0, $0.configuration) }) }

    var all: [VMBroker] { state.withLock { $0.map(\.vm) } }

    func applied(_ name: String) -> (vm: VMBroker, configuration: VMConfiguration)? {
        state.withLock { $0.first { $0.vm.configuration.name == name } }
    }

    func setApplied(_ configuration: VMConfiguration) {
        state.withLock { entries in
            for index in entries.indices where entries[index].vm.configuration.name == configuration.name {
                entries[index].configuration = configuration
            }
        }
    }

    func add(_ vm: VMBroker) { state.withLock { $0.append((vm, vm.configuration)) } }

    func remove(_ name: String) { state.withLock { $0.removeAll { $0.vm.configuration.name == name } } }
}
