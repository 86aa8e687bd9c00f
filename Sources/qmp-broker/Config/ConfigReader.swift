import TOMLKit

/// Reads a TOML document against `ConfigKeys`: unknown keys, wrong types and missing
/// required keys become problems, and reading goes on so that all of them are reported.
struct ConfigReader {
    var problems: ConfigProblems

    init(source: String) { problems = ConfigProblems(source: source) }

    /// The parsed file, or nil with the TOML syntax error recorded.
    mutating func read(text: String) -> ConfigTable? {
        do {
            let document = try TOMLTable(string: text)
            return read(document, as: .broker, at: "top level")
        } catch let error as TOMLParseError {
            problems.add("line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            problems.add("not TOML: \(error)")
        }
        return nil
    }

    private mutating func read(_ toml: TOMLTable, as section: ConfigSection, at location: String) -> ConfigTable {
        var table = ConfigTable(location: location)
        let known = section.keys
        for (name, value) in toml {
            guard let key = known.first(where: { $0.name == name }) else {
                let hint = NearestName.to(name, among: known.map(\.name)).map { ": did you mean `\($0)`?" } ?? ""
                problems.add("\(location): unknown key `\(name)`\(hint)")
                continue
            }
            if let converted = convert(value, to: key.type, named: name, at: location) {
                table.values[name] = converted
            } else {
                problems.add("\(location): key `\(name)` expects \(key.type.expectation), got \(Self.describe(value))")
            }
        }
        for key in known where key.required && table.values[key.name] == nil && toml[key.name] == nil {
            problems.add("\(location): the required key `\(key.name)` is missing")
        }
        return table
    }

    private mutating func convert(_ value: TOMLValueConvertible, to type: ConfigType, named name: String,
                                  at location: String) -> ConfigValue? {
        switch type {
        case .string: return value.string.map(ConfigValue.string)
        case .integer: return value.int.map(ConfigValue.integer)
        case .boolean: return value.bool.map(ConfigValue.boolean)
        case .integerList:
            guard let array = value.array else { return nil }
            let integers = array.compactMap(\.int)
            return integers.count == array.count ? .integers(integers) : nil
        case .tableList(let section):
            guard let array = value.array else { return nil }
            let tables = array.compactMap(\.table)
            guard tables.count == array.count else { return nil }
            return .tables(tables.enumerated().map { index, toml in
                read(toml, as: section, at: Self.location(of: toml, in: section, index: index, parent: location))
            })
        }
    }

    /// Names a table by its `name`/`id` when it has one, else by its position.
    private static func location(of toml: TOMLTable, in section: ConfigSection, index: Int, parent: String) -> String {
        let label = (toml["name"]?.string ?? toml["id"]?.string).map { "'\($0)'" } ?? "#\(index + 1)"
        switch section {
        case .broker, .vm: return "\(section.header) \(label)"
        case .device: return "\(section.header) \(label) of \(parent)"
        }
    }

    /// A value as the operator wrote it, with its TOML type.
    static func describe(_ value: TOMLValueConvertible) -> String {
        if let string = value.string { return "the string \"\(string)\"" }
        if let integer = value.int { return "the integer \(integer)" }
        if let boolean = value.bool { return "the boolean \(boolean)" }
        if let double = value.double { return "the number \(double)" }
        if let array = value.array { return "the array [\(array.map(describeElement).joined(separator: ", "))]" }
        if value.table != nil { return "a table" }
        return "a \(value.type)"
    }

    private static func describeElement(_ value: TOMLValueConvertible) -> String {
        if let string = value.string { return "\"\(string)\"" }
        if let integer = value.int { return "\(integer)" }
        if let boolean = value.bool { return "\(boolean)" }
        if let double = value.double { return "\(double)" }
        return value.table != nil ? "{...}" : "\(value.type)"
    }
}
