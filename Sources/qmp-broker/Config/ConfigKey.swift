/// One key the config file may hold: its name, its type, its default, what it means.
struct ConfigKey: Sendable {
    let name: String
    let type: ConfigType
    /// As shown in `run --help` and the man page; nil when the key has no default.
    let defaultValue: String?
    let required: Bool
    let help: String

    init(_ name: String, _ type: ConfigType, default defaultValue: String? = nil, required: Bool = false, _ help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.help = help
    }
}

/// The TOML shapes a key accepts.
enum ConfigType: Sendable {
    case string
    case integer
    case boolean
    case integerList
    case tableList(ConfigSection)

    /// "expects ..." in a diagnostic.
    var expectation: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .boolean: "true or false"
        case .integerList: "a list of integers"
        case .tableList(let section): "a list of tables (\(section.header))"
        }
    }
}

/// Where in the file a table sits; each has its own keys.
enum ConfigSection: Sendable {
    case broker
    case vm
    case device

    var keys: [ConfigKey] {
        switch self {
        case .broker: ConfigKeys.broker
        case .vm: ConfigKeys.vm
        case .device: ConfigKeys.device
        }
    }

    var header: String {
        switch self {
        case .broker: "top level"
        case .vm: "[[vm]]"
        case .device: "[[vm.device]]"
        }
    }
}
