import LocalNLBDataPlane
import LocalNLBModel

/// The parameters of an ELBv2 Query API request (`Action=…&Version=2015-12-01&Names.member.1=web`), from
/// a form-encoded body or a query string, with AWS's list shapes read out of them.
package struct QueryForm: Equatable {
    package private(set) var values: [String: String] = [:]

    /// Parses an `application/x-www-form-urlencoded` body: `&`-separated pairs, `+` for a space,
    /// percent-escapes. A broken escape (`%zz`, a bare `%`) or text that is not UTF-8 is refused, naming
    /// the parameter.
    package init(form body: [UInt8]) throws(APIError) {
        for pair in body.split(separator: UInt8(ascii: "&")) where !pair.isEmpty {
            let field = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(decoding: field[0].prefix(64), as: UTF8.self)
            guard let key = Self.decode(field[0]), let value = field.count == 2 ? Self.decode(field[1]) : "" else {
                throw APIError(
                    code: "MalformedQueryString",
                    message: "parameter \(name): a broken %-escape, or text that is not UTF-8")
            }
            values[key] = value
        }
    }

    package init(values: [String: String]) { self.values = values }

    static func decode<Bytes: Sequence<UInt8>>(_ text: Bytes) -> String? {
        var bytes: [UInt8] = []
        var utf8 = text.makeIterator()
        while let byte = utf8.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = utf8.next().flatMap(Self.hex), let low = utf8.next().flatMap(Self.hex) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    package subscript(key: String) -> String? { values[key] }

    /// `Name.member.1`, `Name.member.2`, … in order, up to the first gap.
    package func list(_ name: String) -> [String] {
        var items: [String] = []
        while let value = values["\(name).member.\(items.count + 1)"] { items.append(value) }
        return items
    }

    /// Every parameter under `name` as one JSON value: `Name.member.N` lists, `Name.Field` objects, text
    /// leaves (numbers stay text, which the validator reads). Nil when none is given.
    package func tree(_ name: String) -> JSONValue? {
        final class Node {
            var text: String?
            var fields: [String: Node] = [:]
            var members: [Int: Node] = [:]
            var value: JSONValue {
                if let text { return .string(text) }
                if !members.isEmpty { return .array(members.keys.sorted().map { members[$0]!.value }) }
                return .object(fields.mapValues(\.value))
            }
        }
        let root = Node()
        var found = false
        for (key, value) in values where key == name || key.hasPrefix(name + ".") {
            found = true
            var node = root
            var parts = key.dropFirst(name.count).split(separator: ".", omittingEmptySubsequences: false).dropFirst()
            while let part = parts.first {
                parts = parts.dropFirst()
                if part == "member", let number = parts.first.flatMap({ Int($0) }) {
                    parts = parts.dropFirst()
                    node =
                        node.members[number]
                        ?? {
                            let child = Node()
                            node.members[number] = child
                            return child
                        }()
                } else {
                    node =
                        node.fields[String(part)]
                        ?? {
                            let child = Node()
                            node.fields[String(part)] = child
                            return child
                        }()
                }
            }
            node.text = value
        }
        return found ? root.value : nil
    }

    /// `Name.member.N.Field` for each N, up to the first N with none of `fields`.
    package func structures(_ name: String, fields: [String]) -> [[String: String]] {
        var items: [[String: String]] = []
        while true {
            let prefix = "\(name).member.\(items.count + 1)."
            var item: [String: String] = [:]
            for field in fields { item[field] = values[prefix + field] }
            guard !item.isEmpty else { return items }
            items.append(item)
        }
    }
}

/// XML as the Query API answers: elements, text escaped.
package enum XML {
    package static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// `<name>escaped text</name>`
    package static func text(_ name: String, _ value: String) -> String { "<\(name)>\(escape(value))</\(name)>" }

    /// `<name>children</name>`
    package static func element(_ name: String, _ children: [String]) -> String {
        "<\(name)>" + children.joined() + "</\(name)>"
    }

    /// `<name><member>…</member>…</name>`, AWS's list shape.
    package static func list(_ name: String, _ members: [String]) -> String {
        element(name, members.map { "<member>\($0)</member>" })
    }
}
