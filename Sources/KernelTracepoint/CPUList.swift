/// A kernel CPU list (`/sys/devices/system/cpu/online`: `0-3,6,8-9`), as CPU numbers.
package enum CPUList {
    /// Nil when the text is not a CPU list; an empty line is no CPUs.
    package static func parse(_ text: String) -> [Int]? {
        var cpus: [Int] = []
        let line = Substring(text).trimmingBlanks().filter { $0 != "\n" }
        guard !line.isEmpty else { return [] }
        for range in line.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = range.split(separator: "-", omittingEmptySubsequences: false)
            guard let first = Int(ends[0]), first >= 0 else { return nil }
            switch ends.count {
            case 1:
                cpus.append(first)
            case 2:
                guard let last = Int(ends[1]), last >= first, last - first < 65_536 else { return nil }
                cpus.append(contentsOf: first...last)
            default:
                return nil
            }
        }
        return cpus
    }
}
