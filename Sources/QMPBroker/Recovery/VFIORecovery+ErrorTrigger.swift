import ErrorEvents
import Glibc
import VFIOWatch

/// The device's error interrupt, taken over from stock QEMU (SPEC 4, 10): QEMU arms
/// `VFIO_PCI_ERR_IRQ_INDEX` itself and stops the VM on any uncorrectable error, so the
/// broker duplicates QEMU's handle on the device and arms ERR with its own eventfd (the
/// last registrant wins). REQ stays with QEMU, so a host unbind still unplugs the device.
extension VFIORecovery {
    /// The mode a device gets when none was asked for: takeover for a vfio-pci device once
    /// QOM says it is one, handed-over eventfds otherwise.
    func settleTriggerMode(of device: WatchedDevice) {
        if !device.triggerModeConfigured {
            device.triggerMode = device.qemuType == VFIODiscovery.vfioPCIType ? .takeover : .eventfd
        }
        if device.triggerMode == .takeover && device.trigger == nil { takeTriggerOverSayingSo(device) }
    }

    /// Takes the trigger over of a device QEMU has realized: the log says that it is not
    /// protected until then, and how long the takeover took, so that the window is
    /// visible (and measurable) in the log.
    func takeTriggerOverSayingSo(_ device: WatchedDevice) {
        logger.notice("device not yet protected: QEMU's own error handler stops the VM until the broker takes the trigger over",
                      metadata: deviceMetadata(device))
        let started = Deadline.now()
        takeTriggerOver(device)
        if device.triggerWatcher != nil {
            let milliseconds = ((Deadline.now() - started) * 10_000).rounded() / 10
            logger.notice("device protected: the broker holds its error trigger", metadata: deviceMetadata(device).merging(
                ["takeover-ms": "\(milliseconds)"], uniquingKeysWith: { $1 }))
        }
    }

    /// Takes the trigger over (again): at attach, after `device_add`, after a restart.
    /// Throws the reason when it cannot; the device is then watched without its interrupt,
    /// and `query-vfio-devices` says so.
    @discardableResult
    func takeTriggerOver(_ device: WatchedDevice) -> VFIOTakeoverError? {
        defer { protectionChanged() }
        releaseTrigger(of: device)
        guard let pid = vmm?.pid else {
            device.triggerStatus = ErrorTriggerStatus(mode: .takeover, active: false, error: "the VMM's process is not known (not attached)")
            return nil
        }
        let eventFD: Int32
        do {
            eventFD = try EventFD.makeEventFD()
        } catch {
            device.triggerStatus = ErrorTriggerStatus(mode: .takeover, active: false, error: error.description)
            return nil
        }
        do throws(VFIOTakeoverError) {
            let trigger = try VFIOErrorTrigger.takeOver(vmmPID: pid, host: device.host, eventFD: eventFD)
            let watcher: EventFDWatcher
            do {
                watcher = try EventFDWatcher(fd: eventFD, loop: loop, logger: logger) { [weak self, weak device] count in
                    guard let self, let device else { return }
                    outbox.handOver { notified(device, source: .eventfd, tag: nil, signals: Int(clamping: count)) }
                }
            } catch {
                _ = trigger.release()
                device.triggerStatus = ErrorTriggerStatus(mode: .takeover, active: false, error: error.description)
                return nil
            }
            device.triggerStatus = trigger.status
            device.trigger = consume trigger
            device.triggerWatcher = watcher
            watcher.start()
            logger.notice("took the vfio error trigger over from the VMM",
                          metadata: ["device": "\(device.id)", "host": "\(device.host)", "pid": "\(pid)",
                                     "method": "\(device.triggerStatus.method?.rawValue ?? "?")"])
            return nil
        } catch {
            close(eventFD)
            device.triggerStatus = .takeoverFailed(error)
            logger.error("cannot take the vfio error trigger over: the VMM still stops the VM on any uncorrectable error",
                         metadata: ["device": "\(device.id)", "host": "\(device.host)", "reason": "\(error.description)"])
            return error
        }
    }

    /// Disarms ERR and closes the broker's handle, which otherwise keeps the device open in
    /// the kernel (a host unbind would wait for it).
    func releaseTrigger(of device: WatchedDevice) {
        device.triggerWatcher?.cancel()
        device.triggerWatcher = nil
        guard let trigger = device.trigger.take() else { return }
        defer { protectionChanged() }
        if let failure = trigger.release() {
            logger.warning("disarming the error trigger failed", metadata: ["device": "\(device.id)", "reason": "\(failure)"])
        }
        device.triggerStatus = .released
        logger.info("released the vfio error trigger", metadata: ["device": "\(device.id)"])
    }
}
