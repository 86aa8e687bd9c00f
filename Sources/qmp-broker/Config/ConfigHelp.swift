/// The config keys, their defaults and meanings, for `run --help` and the man page.
enum ConfigHelp {
    static var text: String {
        var lines = ["CONFIG FILE KEYS (TOML; unknown keys are refused, `check-config FILE` checks a file):"]
        for (title, keys) in [("top level", ConfigKeys.broker), ("[[vm]]", ConfigKeys.vm), ("[[vm.device]]", ConfigKeys.device)] {
            lines.append("")
            lines.append("  \(title)")
            for key in keys {
                let detail = key.required ? "required" : key.defaultValue.map { "default: \($0)" } ?? "optional"
                lines.append("    \(key.name) (\(detail))")
                lines.append("        \(key.help)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
