import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel

/// `--output json|text|table`, as the AWS CLI prints a response.
package enum CLIOutput: String {
    case json, text, table

    package func render(_ value: JSONText, title: String) -> String {
        if case .object(let fields) = value, fields.isEmpty { return "" }
        switch self {
        case .json: return JSONText.pretty(value.rendered)
        case .text:
            var out = ""
            Self.text(value, identifier: nil, scalarKeys: nil, into: &out)
            return out
        case .table: return Table(title: title, value: value).rendered
        }
    }

    // MARK: text

    /// The AWS CLI's text: each object's scalars on one tab-separated line (keys sorted, led by the
    /// upper-cased name of the list or key it came from), its lists and objects on lines after it.
    package static func text(_ value: JSONText, identifier: String?, scalarKeys: [String]?, into out: inout String) {
        switch value {
        case .object(let fields):
            var scalars: [String] = []
            var nested: [(String, JSONText)] = []
            if let scalarKeys {
                for key in scalarKeys { scalars.append(fields.first { $0.0 == key }.map { scalar($0.1) } ?? "") }
                nested = fields.filter { !scalarKeys.contains($0.0) }.sorted { $0.0 < $1.0 }
            } else {
                for (key, field) in fields.sorted(by: { $0.0 < $1.0 }) {
                    if isScalar(field) { scalars.append(scalar(field)) } else { nested.append((key, field)) }
                }
            }
            if !scalars.isEmpty {
                out += ((identifier.map { [$0.uppercased()] } ?? []) + scalars).joined(separator: "\t") + "\n"
            }
            for (key, field) in nested { text(field, identifier: key, scalarKeys: nil, into: &out) }
        case .array(let items):
            guard !items.isEmpty else { return }
            if items.contains(where: { if case .object = $0 { return true } else { return false } }) {
                var keys = Set<String>()
                for case .object(let fields) in items {
                    for (key, field) in fields where isScalar(field) { keys.insert(key) }
                }
                for item in items { text(item, identifier: identifier, scalarKeys: keys.sorted(), into: &out) }
            } else {
                let scalars = items.filter(isScalar)
                if let identifier {
                    for item in scalars { out += "\(identifier.uppercased())\t\(scalar(item))\n" }
                } else if !scalars.isEmpty {
                    out += scalars.map(scalar).joined(separator: "\t") + "\n"
                }
                for item in items where !isScalar(item) {
                    text(item, identifier: identifier, scalarKeys: nil, into: &out)
                }
            }
        default:
            out += scalar(value) + "\n"
        }
    }

    static func isScalar(_ value: JSONText) -> Bool {
        switch value {
        case .object, .array: return false
        default: return true
        }
    }

    /// A scalar as Python's `str` writes it (the AWS CLI is Python): `True`, `80`, `None`.
    package static func scalar(_ value: JSONText) -> String {
        switch value {
        case .string(let text): return text
        case .integer(let number): return String(number)
        case .number(let number): return String(number)
        case .bool(let flag): return flag ? "True" : "False"
        case .null: return "None"
        case .raw(let text): return text
        case .object, .array: return ""
        }
    }
}

/// `--output table`: boxes in the AWS CLI's manner: a title, then each object's scalars as key | value
/// rows, each nested list or object in a box of its own, one level deeper.
package struct Table {
    var title: String
    package var value: JSONText

    package var rendered: String {
        var rows: [(depth: Int, kind: Row)] = [(0, .title(title))]
        collect(value, depth: 0, into: &rows)
        let keyWidth =
            rows.map { row -> Int in
                if case .pair(let key, _) = row.kind { return key.count } else { return 0 }
            }.max() ?? 0
        let width =
            rows.map { row -> Int in
                switch row.kind {
                case .pair(_, let value): return 2 * row.depth + 2 + keyWidth + 3 + value.count + 2
                case .title(let text): return 2 * row.depth + 2 + text.count + 4
                }
            }.max() ?? 0
        func line(_ depth: Int, _ middle: String) -> String {
            let bars = String(repeating: "|", count: depth)
            return bars + middle + bars + "\n"
        }
        func border(_ depth: Int) -> String {
            line(depth, "+" + String(repeating: "-", count: width - 2 * depth - 2) + "+")
        }
        var out = ""
        var open: [Int] = []  // the depths of the boxes open, innermost last
        for (depth, kind) in rows {
            let inner = width - 2 * depth - 2
            switch kind {
            case .title(let text):
                while let last = open.last, last >= depth {
                    out += border(last)
                    open.removeLast()
                }
                let padding = inner - text.count
                out += border(depth)
                out += line(
                    depth,
                    "|" + String(repeating: " ", count: padding / 2) + text
                        + String(repeating: " ", count: padding - padding / 2) + "|")
                out += border(depth)
                open.append(depth)
            case .pair(let key, let value):
                let keyCell = " " + key + String(repeating: " ", count: keyWidth - key.count) + " "
                let valueCell =
                    " " + value + String(repeating: " ", count: inner - keyCell.count - 1 - value.count - 2) + " "
                out += line(depth, "|" + keyCell + "|" + valueCell + "|")
            }
        }
        while let last = open.popLast() { out += border(last) }
        return out
    }

    package enum Row {
        case title(String)
        case pair(String, String)
    }

    func collect(_ value: JSONText, depth: Int, into rows: inout [(depth: Int, kind: Row)]) {
        switch value {
        case .object(let fields):
            for (key, field) in fields where CLIOutput.isScalar(field) {
                rows.append((depth, .pair(key, CLIOutput.scalar(field))))
            }
            for (key, field) in fields where !CLIOutput.isScalar(field) {
                if case .array(let items) = field, items.allSatisfy(CLIOutput.isScalar) {
                    rows.append((depth + 1, .title(key)))
                    for item in items { rows.append((depth + 1, .pair("", CLIOutput.scalar(item)))) }
                    continue
                }
                if case .array(let items) = field {
                    for item in items {
                        rows.append((depth + 1, .title(key)))
                        collect(item, depth: depth + 1, into: &rows)
                    }
                } else {
                    rows.append((depth + 1, .title(key)))
                    collect(field, depth: depth + 1, into: &rows)
                }
            }
        case .array(let items):
            for item in items { collect(item, depth: depth, into: &rows) }
        default:
            rows.append((depth, .pair("", CLIOutput.scalar(value))))
        }
    }
}

extension JSONValue {
    /// As JSON to print; an object's keys sorted (a parsed object keeps no order).
    package var text: JSONText {
        switch self {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? .integer(Int64(n)) : .number(n)
        case .string(let s): return .string(s)
        case .array(let items): return .array(items.map(\.text))
        case .object(let fields): return .object(fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value.text) })
        }
    }
}
