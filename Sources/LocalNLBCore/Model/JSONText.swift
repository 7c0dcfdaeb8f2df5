import Foundation

/// A JSON value written with its keys in the order given: reports read top to bottom.
public indirect enum JSONText: Sendable {
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONText])
    case object([(String, JSONText)])
    /// JSON text already written (and checked) elsewhere.
    case raw(String)

    public static func optional(_ text: String?) -> JSONText { text.map { .string($0) } ?? .null }

    public var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    private func render(into out: inout String) {
        switch self {
        case .string(let s):
            out += "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            out += "\""
        case .integer(let n): out += String(n)
        // The shortest text that reads back as the same number, as Python's json writes it (the AWS CLI
        // prints 1795566190.60832, never 1795566190.608320).
        case .number(let n): out += n.isFinite ? String(n) : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .raw(let text): out += text
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.render(into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSONText.string(key).render(into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }
}

extension JSONText {
    /// Compact JSON indented by four spaces a level, as the AWS CLI prints it.
    static func pretty(_ json: String) -> String {
        var out = ""
        var depth = 0
        var inString = false
        var escaped = false
        let characters = Array(json.trimmingCharacters(in: .whitespacesAndNewlines))
        func newline() { out += "\n" + String(repeating: "    ", count: depth) }
        var index = 0
        while index < characters.count {
            let c = characters[index]
            defer { index += 1 }
            if inString {
                out.append(c)
                if escaped {
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    inString = false
                }
                continue
            }
            switch c {
            case "\"":
                inString = true
                out.append(c)
            case "{", "[":
                let close: Character = c == "{" ? "}" : "]"
                if index + 1 < characters.count && characters[index + 1] == close {
                    out += String(c) + String(close)
                    index += 1
                } else {
                    out.append(c)
                    depth += 1
                    newline()
                }
            case "}", "]":
                depth -= 1
                newline()
                out.append(c)
            case ",":
                out.append(c)
                newline()
            case ":":
                out += ": "
            case " ", "\n", "\t", "\r":
                break
            default:
                out.append(c)
            }
        }
        return out + "\n"
    }
}
