/// The known name an unknown one was most likely meant to be ("did you mean `policy`?").
enum NearestName {
    static func to(_ name: String, among candidates: [String]) -> String? {
        let scored = candidates.map { (candidate: $0, distance: distance(normalized(name), normalized($0))) }
        guard let best = scored.min(by: { $0.distance < $1.distance }) else { return nil }
        // Beyond a third of the name it is a different word, not a typo.
        return best.distance <= max(2, name.count / 3) ? best.candidate : nil
    }

    /// `allow_inject` and `allowInject` are the same typo as `allow-inject`.
    private static func normalized(_ name: String) -> [Character] {
        Array(name.lowercased().map { $0 == "_" ? "-" : $0 })
    }

    /// Levenshtein distance, one row at a time.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for (i, left) in a.enumerated() {
            var current = [i + 1]
            for (j, right) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (left == right ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
