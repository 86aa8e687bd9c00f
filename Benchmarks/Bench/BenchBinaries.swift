import Glibc

/// The executables built beside the bench (`swift build -c release` builds them all).
struct BenchBinaries {
    let directory: String

    init() {
        var path = [CChar](repeating: 0, count: Int(PATH_MAX))
        let count = readlink("/proc/self/exe", &path, path.count - 1)
        let bytes = path[..<max(count, 0)].map { UInt8(bitPattern: $0) }
        let full = String(decoding: bytes, as: UTF8.self)
        directory = String(full[..<(full.lastIndex(of: "/") ?? full.endIndex)])
    }

    var broker: String { "\(directory)/qmp-broker" }
    var fanoutReader: String { "\(directory)/qmp-broker-fanout-reader" }
}
