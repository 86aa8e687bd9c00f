import Glibc

/// A fake `/sys` with one PCI device's AER counter files, written the way the 6.1
/// kernel prints them (`NAME COUNT` lines, then the total): the host side of the demo
/// and of the tests, read by the broker through `--sysfs-root`.
package struct FakeSysfsTree: Sendable {
    package let root: String
    package let host: String

    package init(under directory: String, host: String = "0000:3b:00.0") {
        root = "\(directory)/sys"
        self.host = host
        mkdir(root, 0o755)
        for part in ["bus", "bus/pci", "bus/pci/devices", "bus/pci/devices/\(host)"] { mkdir("\(root)/\(part)", 0o755) }
        set(correctable: [:], nonFatal: [:], fatal: [:])
    }

    package var deviceDirectory: String { "\(root)/bus/pci/devices/\(host)" }

    package static let correctableNames = ["RxErr", "BadTLP", "BadDLLP", "Rollover", "Timeout", "NonFatalErr", "CorrIntErr", "HeaderOF"]
    package static let uncorrectableNames = ["Undefined", "DLP", "SDES", "TLP", "FCP", "CmpltTO", "CmpltAbrt", "UnxCmplt", "RxOF",
                                     "MalfTLP", "ECRC", "UnsupReq", "ACSViol", "UncorrIntErr", "BlockedTLP",
                                     "AtomicOpBlocked", "TLPBlockedErr", "PoisonTLPBlocked"]

    package func set(correctable: [String: Int], nonFatal: [String: Int], fatal: [String: Int]) {
        write("aer_dev_correctable", Self.correctableNames, correctable, total: "TOTAL_ERR_COR")
        write("aer_dev_nonfatal", Self.uncorrectableNames, nonFatal, total: "TOTAL_ERR_NONFATAL")
        write("aer_dev_fatal", Self.uncorrectableNames, fatal, total: "TOTAL_ERR_FATAL")
    }

    package func write(_ file: String, _ names: [String], _ counts: [String: Int], total: String) {
        var text = names.map { "\($0) \(counts[$0] ?? 0)\n" }.joined()
        text += "\(total) \(counts.values.reduce(0, +))\n"
        writeRaw(file, text)
    }

    package func writeRaw(_ file: String, _ text: String) {
        // Write to a temporary name and rename, as sysfs reads never see half a file.
        let path = "\(deviceDirectory)/\(file)"
        let temporary = path + ".new"
        let handle = fopen(temporary, "w")!
        fputs(text, handle)
        fclose(handle)
        rename(temporary, path)
    }

    package func remove(_ file: String) { unlink("\(deviceDirectory)/\(file)") }
}

