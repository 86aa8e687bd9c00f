import QMPSessions
import QMPWire

/// The one place where the VM's parts meet: every action a part asks for is run here,
/// and the answers go back to the part that asked, as inputs.
extension VMBroker {
    func run(_ actions: [VMAction]) {
        // The commands of one input (a check's queries and canary) leave in one write.
        if actions.count > 1 { upstream.cork() }
        defer { if actions.count > 1 { upstream.uncork() } }
        for action in actions { run(action) }
    }

    func run(_ action: VMAction) {
        switch action {
        case .command(let command, let purpose):
            sent(upstream.execute(command, for: purpose), for: purpose)
        case .encodedCommand(let command, let members, let purpose):
            sent(upstream.execute(command, members: members, for: purpose), for: purpose)
        case .emit(let name, let data):
            emit(name, data: data)
        case .forwardToGuest(let error, let device, let ticket, let event, let notes):
            exchange { vm in await vm.forwardToGuest(error, device: device, ticket: ticket, event: event, notes: notes) }
        case .learnPlacement(let id):
            guard upstream.isReady else { return }
            exchange { vm in
                if let device = vm.recovery.devices[id] { await vm.learnPlacement(of: device) }
            }
        case .discoverDevices:
            exchange { vm in await vm.discoverDevices() }
        case .readTopology:
            exchange { vm in await vm.readTopology() }
        case .watchedDevicesChanged:
            guard let linkResetWatcher else { return }
            run(linkResetWatcher.watching(recovery.orderedDevices.map { .init(id: $0.id, host: $0.host.description) }))
        case .guestLinkReset(let device, let origin, let late):
            run(recovery.handle(.guestLinkReset(device: device, origin: origin, late: late)))
        case .protectionChanged:
            publishProtection()
        case .watchDetached:
            detachEnded()
        case .forward(let request, let fds, let slot, let client):
            forward(request, fds: fds, slot: slot, from: client)
        case .handleLocally(let request, let slot, let client):
            handleLocally(request, slot: slot, from: client)
        case .clientClosed(let client, let reason):
            clientClosed(client, reason: reason)
        case .upstreamReady:
            upstreamReady()
        case .upstreamLost:
            upstreamLost()
        case .upstreamEvent(let line):
            upstreamEvent(line)
        case .upstreamReadHandled:
            uncorkClients()
        case .upstreamReplied(let command, let reply):
            upstreamReplied(command, reply)
        }
    }
}

extension VMBroker {
    /// One of the broker's own commands went upstream with broker id `id` (nil: it could not).
    private func sent(_ id: Int64?, for purpose: BrokerPurpose) {
        switch purpose {
        case .stopVM:
            // Written now even inside a corked batch: nothing of its input goes first.
            upstream.uncork()
            // Counted once written: the broker's own stops are what the stopped-VM alert counts.
            if id != nil { metrics.brokerStop() }
        case .contVM:
            if id != nil { metrics.brokerCont() }
        case .linkResetCanary:
            linkResetWatcher?.canarySent(id: id)
        case .usdtCanary:
            linkResetWatcher?.usdtCanarySent(id: id)
        default:
            break
        }
    }
}

/// The parts' descriptors and timers fire on the VM's loop, outside any job: they enter
/// the actor with `assumeIsolated`, which traps anywhere else. The actions come from parts
/// in the VM's isolation and stay on its loop, so passing them in cannot race; the
/// compiler cannot see that the caller is already the actor's executor, hence `unsafe`.
extension VMBroker: VMActionRunner {
    nonisolated func runOnLoop(_ action: VMAction) {
        nonisolated(unsafe) let action = action
        assumeIsolated { vm in vm.run(action) }
    }

    nonisolated func runOnLoop(_ actions: [VMAction]) {
        nonisolated(unsafe) let actions = actions
        assumeIsolated { vm in vm.run(actions) }
    }
}
