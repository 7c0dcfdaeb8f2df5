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
        var out: [UInt8] = []
        out.reserveCapacity(256)
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Written as UTF-8 bytes, a string's bytes copied as they are but for the escapes JSON needs: a
    /// page of 1,000 flows is rendered in a few milliseconds, not character by character.
    private func render(into out: inout [UInt8]) {
        switch self {
        case .string(let s):
            out.append(UInt8(ascii: "\""))
            // Most strings need no escape: copied whole.
            if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                out += s.utf8
                out.append(UInt8(ascii: "\""))
                return
            }
            for byte in s.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case ..<0x20:
                    let digits = Array("0123456789abcdef".utf8)
                    out += Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        case .integer(let n): out += String(n).utf8
        // The shortest text that reads back as the same number, as Python's json writes it (the AWS CLI
        // prints 1795566190.60832, never 1795566190.608320).
        case .number(let n): out += (n.isFinite ? String(n) : "null").utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .null: out += "null".utf8
        case .raw(let text): out += text.utf8
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.render(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONText.string(key).render(into: &out)
                out.append(UInt8(ascii: ":"))
                value.render(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}

extension JSONText {
    /// Compact JSON indented by four spaces a level, as the AWS CLI prints it.
    package static func pretty(_ json: String) -> String {
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
