/// One table of the config file after its keys and types were checked: only known keys,
/// each with a value of its key's type.
struct ConfigTable {
    /// How diagnostics name this table: "[[vm]] 'vm1'", "[[vm.device]] 'gpu0' of VM 'vm1'".
    var location: String
    var values: [String: ConfigValue] = [:]

    func string(_ key: String) -> String? {
        if case .string(let value) = values[key] { value } else { nil }
    }

    func integer(_ key: String) -> Int? {
        if case .integer(let value) = values[key] { value } else { nil }
    }

    func boolean(_ key: String) -> Bool? {
        if case .boolean(let value) = values[key] { value } else { nil }
    }

    func integers(_ key: String) -> [Int]? {
        if case .integers(let value) = values[key] { value } else { nil }
    }

    func tables(_ key: String) -> [ConfigTable] {
        if case .tables(let value) = values[key] { value } else { [] }
    }
}

enum ConfigValue {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case integers([Int])
    case tables([ConfigTable])
}
