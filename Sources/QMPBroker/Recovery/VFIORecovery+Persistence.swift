import BrokerState
import ErrorEvents
import VFIOWatch

/// Flags, policies and history on disk: persist before announce.
extension VFIORecovery {
    func persisted(id: String, host: HostAddress) -> StoredDevice? {
        guard let store else { return nil }
        do {
            guard let stored = try store.device(vm: vmName, id: id) else { return nil }
            guard stored.host == host.description else {
                logger.warning("stored state is for another host address; starting clean",
                               metadata: ["device": "\(id)", "stored": "\(stored.host)", "now": "\(host)"])
                return nil
            }
            if stored.state.linkError { logger.warning("link-error flag restored", metadata: ["device": "\(id)"]) }
            return stored
        } catch {
            logger.error("cannot read stored state", metadata: ["device": "\(id)", "reason": "\(error)"])
            return nil
        }
    }

    /// Writes a device's row (policy, flag, counters); a restored broker stop still being
    /// judged is written back as it was, not as the provisional machine sees it.
    func record(_ device: WatchedDevice) {
        storing("store device \(device.id)") { store in
            try store.save(StoredDevice(vm: vmName, id: device.id, host: device.host.description,
                                        policy: device.machine.policy,
                                        state: device.machine.storedState,
                                        counters: device.machine.counters,
                                        injectAt: device.injectAt, origin: device.origin))
        }
    }

    /// The counters the device's errors are reported up to, for the catch-up after a restart.
    /// Not while errors missed before this run wait to be reported (`catchUp`): the new
    /// counters include them, and a crash then would lose them.
    func saveAERBaseline(of device: WatchedDevice) {
        guard device.missedErrors.isEmpty else { return }
        writeLater("store the AER counters of \(device.id)") { store, failed in
            store.saveAERBaselineLater(vm: vmName, device: device.id, host: device.host.description,
                                       counters: device.counters.baselineText, onFailure: failed)
        }
    }

    /// The counters stored by the previous run, when they are for the same host address.
    func storedAERBaseline(of device: WatchedDevice) -> String? {
        guard let store else { return nil }
        do {
            return try store.aerBaseline(vm: vmName, device: device.id, host: device.host.description)
        } catch {
            logger.error("cannot read the stored AER counters", metadata: ["device": "\(device.id)", "reason": "\(error)"])
            return nil
        }
    }

    /// The flag and the broker-stop ownership: written before the event that announces them.
    func save(_ state: PersistedDeviceState, of device: WatchedDevice) {
        storing("store link-error flag of \(device.id)") { store in
            try store.saveState(vm: vmName, id: device.id, state)
        }
    }

    /// A failed write is logged loudly but never stops error handling: the VM's protection
    /// in this run does not depend on the disk. The first failure after a good write is
    /// also announced (`BROKER_STATE_NOT_DURABLE`): the flag then lives only in memory.
    func storing(_ what: String, _ body: (StateStore) throws -> Void) {
        guard let store else { return }
        do {
            try body(store)
            stateDurable = true
        } catch {
            logger.error("state store: cannot \(what); the state is kept in memory only and will not survive a restart",
                         metadata: ["reason": "\(error)"])
            if stateDurable {
                ask(.emit("BROKER_STATE_NOT_DURABLE", data: BrokerEventData.stateNotDurable(
                    vm: vmName, operation: what, reason: "\(error)")))
            }
            stateDurable = false
        }
    }

    /// Hands a write to the store's background writer. A failure there is logged (from the
    /// writer's thread); so is a write dropped because the writer is far behind, on the
    /// first drop and every 1000th after it.
    func writeLater(_ what: String,
                    _ body: (StateStore, @escaping @Sendable (StateStoreError) -> Void) -> HistoryHandOff) {
        guard let store else { return }
        let logger = logger
        let handOff = body(store) { error in
            logger.error("state store: cannot \(what)", metadata: ["reason": "\(error)"])
        }
        switch handOff {
        case .queued:
            break
        case .dropped(let total):
            if total == 1 || total % 1000 == 0 {
                logger.error("state store: the history writer is behind; write dropped",
                             metadata: ["operation": "\(what)", "dropped": "\(total)"])
            }
        }
    }
}
