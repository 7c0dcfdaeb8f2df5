import Foundation
import LocalNLBModel

/// `--query`: JMESPath (jmespath.org's specification) over an answer, as AWS CLI users type it: fields
/// and quoted fields, indexes (negative too) and slices, `[*]` and `*` projections, `[]` flattening,
/// `[?…]` filters with comparisons, `&&`, `||` and `!`, multiselect lists and hashes, pipes, `@`,
/// raw `'…'` and JSON `` `…` `` literals, and the functions `length`, `contains`, `starts_with`,
/// `ends_with`, `keys`, `values`, `to_string`, `sort`, `join`, `min`, `max` and `sum`.
package indirect enum Query {
    case identity
    case field(String)
    case literal(JSONText)
    case subexpression(Query, Query)
    case index(Query, Int)
    case slice(Query, Int?, Int?, Int?)
    /// `left[*].right`: `right` over each element of the list `left` gives, nulls left out.
    case projection(Query, Query)
    /// `left.*.right`: over each value of the object `left` gives.
    case valueProjection(Query, Query)
    case flatten(Query)
    case filter(Query, condition: Query, Query)
    case comparison(String, Query, Query)
    case and(Query, Query)
    case or(Query, Query)
    case not(Query)
    case pipe(Query, Query)
    case list([Query])
    case hash([(String, Query)])
    case function(String, [Query])

    package struct SyntaxError: Error, Equatable {
        package var message: String
    }

    package static func parse(_ text: String) throws(SyntaxError) -> Query {
        var parser = Parser(tokens: try Lexer.tokens(text), text: text)
        let query = try parser.expression(0)
        guard parser.peek == .end else { throw parser.unexpected() }
        return query
    }

    // MARK: Evaluation

    package func evaluate(_ value: JSONText) -> JSONText {
        switch self {
        case .identity: return value
        case .field(let name):
            guard case .object(let fields) = value else { return .null }
            return fields.first { $0.0 == name }?.1 ?? .null
        case .literal(let literal): return literal
        case .subexpression(let left, let right): return right.evaluate(left.evaluate(value))
        case .index(let left, let position):
            guard case .array(let items) = left.evaluate(value) else { return .null }
            let index = position < 0 ? items.count + position : position
            return items.indices.contains(index) ? items[index] : .null
        case .slice(let left, let start, let stop, let step):
            guard case .array(let items) = left.evaluate(value) else { return .null }
            return .array(Self.slice(items, start, stop, step ?? 1))
        case .projection(let left, let right):
            guard case .array(let items) = left.evaluate(value) else { return .null }
            return .array(items.map(right.evaluate).filter { !$0.isNull })
        case .valueProjection(let left, let right):
            guard case .object(let fields) = left.evaluate(value) else { return .null }
            return .array(fields.map { right.evaluate($0.1) }.filter { !$0.isNull })
        case .flatten(let inner):
            guard case .array(let items) = inner.evaluate(value) else { return .null }
            return .array(
                items.flatMap { item -> [JSONText] in if case .array(let nested) = item { nested } else { [item] } })
        case .filter(let left, let condition, let right):
            guard case .array(let items) = left.evaluate(value) else { return .null }
            return .array(items.filter { condition.evaluate($0).isTruthy }.map(right.evaluate).filter { !$0.isNull })
        case .comparison(let op, let left, let right):
            return Self.compare(op, left.evaluate(value), right.evaluate(value))
        case .and(let left, let right):
            let first = left.evaluate(value)
            return first.isTruthy ? right.evaluate(value) : first
        case .or(let left, let right):
            let first = left.evaluate(value)
            return first.isTruthy ? first : right.evaluate(value)
        case .not(let inner): return .bool(!inner.evaluate(value).isTruthy)
        case .pipe(let left, let right): return right.evaluate(left.evaluate(value))
        case .list(let items):
            if value.isNull { return .null }
            return .array(items.map { $0.evaluate(value) })
        case .hash(let pairs):
            if value.isNull { return .null }
            return .object(pairs.map { ($0.0, $0.1.evaluate(value)) })
        case .function(let name, let arguments):
            return Self.call(name, arguments.map { $0.evaluate(value) })
        }
    }

    static func slice(_ items: [JSONText], _ start: Int?, _ stop: Int?, _ step: Int) -> [JSONText] {
        guard step != 0 else { return [] }
        let count = items.count
        func clamp(_ given: Int?, _ whenNil: Int) -> Int {
            guard var index = given else { return whenNil }
            if index < 0 { index += count }
            return step > 0 ? min(max(index, 0), count) : min(max(index, -1), count - 1)
        }
        var index = clamp(start, step > 0 ? 0 : count - 1)
        let end = clamp(stop, step > 0 ? count : -1)
        var result: [JSONText] = []
        while step > 0 ? index < end : index > end {
            result.append(items[index])
            index += step
        }
        return result
    }

    static func compare(_ op: String, _ a: JSONText, _ b: JSONText) -> JSONText {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        default:
            guard let x = a.numeric, let y = b.numeric else { return .null }
            switch op {
            case "<": return .bool(x < y)
            case "<=": return .bool(x <= y)
            case ">": return .bool(x > y)
            default: return .bool(x >= y)
            }
        }
    }

    static func call(_ name: String, _ arguments: [JSONText]) -> JSONText {
        switch (name, arguments.first, arguments.count) {
        case ("length", .string(let text)?, 1): return .integer(Int64(text.count))
        case ("length", .array(let items)?, 1): return .integer(Int64(items.count))
        case ("length", .object(let fields)?, 1): return .integer(Int64(fields.count))
        case ("contains", .array(let items)?, 2): return .bool(items.contains { $0.equals(arguments[1]) })
        case ("contains", .string(let text)?, 2):
            guard case .string(let part) = arguments[1] else { return .bool(false) }
            return .bool(text.contains(part))
        case ("starts_with", .string(let text)?, 2), ("ends_with", .string(let text)?, 2):
            guard case .string(let part) = arguments[1] else { return .null }
            return .bool(name == "starts_with" ? text.hasPrefix(part) : text.hasSuffix(part))
        case ("keys", .object(let fields)?, 1): return .array(fields.map { .string($0.0) })
        case ("values", .object(let fields)?, 1): return .array(fields.map(\.1))
        case ("to_string", let value?, 1):
            if case .string = value { return value }
            return .string(value.rendered)
        case ("sort", .array(let items)?, 1):
            if items.allSatisfy({ $0.numeric != nil }) { return .array(items.sorted { $0.numeric! < $1.numeric! }) }
            let texts = items.compactMap { item -> String? in if case .string(let text) = item { text } else { nil } }
            return texts.count == items.count ? .array(texts.sorted().map { .string($0) }) : .null
        case ("join", .string(let separator)?, 2):
            guard case .array(let items) = arguments[1] else { return .null }
            let texts = items.compactMap { item -> String? in if case .string(let text) = item { text } else { nil } }
            return texts.count == items.count ? .string(texts.joined(separator: separator)) : .null
        case ("min", .array(let items)?, 1), ("max", .array(let items)?, 1):
            let numbers = items.compactMap(\.numeric)
            guard !numbers.isEmpty, numbers.count == items.count else { return .null }
            let chosen = name == "min" ? numbers.min()! : numbers.max()!
            return items.first { $0.numeric == chosen }!
        case ("sum", .array(let items)?, 1):
            let numbers = items.compactMap(\.numeric)
            guard numbers.count == items.count else { return .null }
            let total = numbers.reduce(0, +)
            return items.allSatisfy({ if case .integer = $0 { true } else { false } })
                ? .integer(Int64(total)) : .number(total)
        default: return .null
        }
    }

    static let functions: [String: Int] = [
        "length": 1, "contains": 2, "starts_with": 2, "ends_with": 2, "keys": 1, "values": 1, "to_string": 1,
        "sort": 1, "join": 2, "min": 1, "max": 1, "sum": 1,
    ]

    // MARK: Tokens

    enum Token: Equatable {
        case identifier(String)
        case quoted(String)
        case literal(JSONText)
        case number(Int)
        case symbol(String)
        case end

        static func == (a: Token, b: Token) -> Bool {
            switch (a, b) {
            case (.identifier(let x), .identifier(let y)), (.quoted(let x), .quoted(let y)): return x == y
            case (.number(let x), .number(let y)): return x == y
            case (.symbol(let x), .symbol(let y)): return x == y
            case (.end, .end): return true
            case (.literal(let x), .literal(let y)): return x.equals(y)
            default: return false
            }
        }
    }

    enum Lexer {
        static func tokens(_ text: String) throws(SyntaxError) -> [Token] {
            let characters = Array(text)
            var tokens: [Token] = []
            var i = 0
            func fail(_ message: String) -> SyntaxError { SyntaxError(message: "\(message) at column \(i + 1)") }
            func delimited(_ close: Character) throws(SyntaxError) -> String {
                var out = ""
                i += 1
                while i < characters.count, characters[i] != close {
                    if characters[i] == "\\", i + 1 < characters.count {
                        if close == "'" && characters[i + 1] == "'" || close == "`" && characters[i + 1] == "`" {
                            out.append(characters[i + 1])
                            i += 2
                            continue
                        }
                        out.append(characters[i])
                        i += 1
                    }
                    out.append(characters[i])
                    i += 1
                }
                guard i < characters.count else { throw fail("an unclosed \(close)") }
                i += 1
                return out
            }
            while i < characters.count {
                let c = characters[i]
                if c.isWhitespace {
                    i += 1
                } else if c.isLetter || c == "_" {
                    var name = ""
                    while i < characters.count, characters[i].isLetter || characters[i].isNumber || characters[i] == "_"
                    {
                        name.append(characters[i])
                        i += 1
                    }
                    tokens.append(.identifier(name))
                } else if c.isNumber || (c == "-" && i + 1 < characters.count && characters[i + 1].isNumber) {
                    var digits = String(c)
                    i += 1
                    while i < characters.count, characters[i].isNumber {
                        digits.append(characters[i])
                        i += 1
                    }
                    guard let number = Int(digits) else { throw fail("\(digits) is not a number") }
                    tokens.append(.number(number))
                } else if c == "\"" {
                    let body = try delimited("\"")
                    guard let (value, _) = try? JSONParser.parse(Array("\"\(body)\"".utf8)),
                        case .string(let name) = value
                    else { throw fail("\"\(body)\" is not a quoted identifier") }
                    tokens.append(.quoted(name))
                } else if c == "'" {
                    tokens.append(.literal(.string(try delimited("'"))))
                } else if c == "`" {
                    let body = try delimited("`")
                    if let (value, _) = try? JSONParser.parse(Array(body.utf8)) {
                        tokens.append(.literal(value.text))
                    } else {
                        // As jmespath.py (the AWS CLI's) takes it: `ip` is the string "ip".
                        tokens.append(.literal(.string(body.trimmingCharacters(in: .whitespaces))))
                    }
                } else {
                    let two = i + 1 < characters.count ? String([c, characters[i + 1]]) : ""
                    if ["[?", "[]", "||", "&&", "==", "!=", "<=", ">="].contains(two) {
                        tokens.append(.symbol(two))
                        i += 2
                    } else if "[]{}().,:*@|!<>".contains(c) {
                        tokens.append(.symbol(String(c)))
                        i += 1
                    } else {
                        throw fail("'\(c)' is not part of a query")
                    }
                }
            }
            return tokens + [.end]
        }
    }

    // MARK: Parser (binding powers as the specification orders its operators)

    struct Parser {
        var tokens: [Token]
        var text: String
        var position = 0

        var peek: Token { tokens[position] }
        var peekNext: Token { position + 1 < tokens.count ? tokens[position + 1] : .end }

        mutating func next() -> Token {
            defer { position += 1 }
            return tokens[position]
        }

        func unexpected() -> SyntaxError {
            SyntaxError(message: "unexpected \(Self.shown(peek)) in \"\(text)\"")
        }

        static func shown(_ token: Token) -> String {
            switch token {
            case .identifier(let name): return "'\(name)'"
            case .quoted(let name): return "\"\(name)\""
            case .literal(let value): return "literal \(value.rendered)"
            case .number(let value): return "\(value)"
            case .symbol(let symbol): return "'\(symbol)'"
            case .end: return "end of the query"
            }
        }

        static func bindingPower(_ token: Token) -> Int {
            guard case .symbol(let symbol) = token else { return 0 }
            switch symbol {
            case "|": return 1
            case "||": return 2
            case "&&": return 3
            case "==", "!=", "<", "<=", ">", ">=": return 5
            case "[]": return 9
            case "*": return 20
            case "[?": return 21
            case ".": return 40
            case "!": return 45
            case "{": return 50
            case "[": return 55
            case "(": return 60
            default: return 0
            }
        }

        mutating func expect(_ symbol: String) throws(SyntaxError) {
            guard peek == .symbol(symbol) else { throw unexpected() }
            position += 1
        }

        mutating func expression(_ power: Int) throws(SyntaxError) -> Query {
            var left = try prefix()
            while power < Self.bindingPower(peek) { left = try infix(left) }
            return left
        }

        mutating func prefix() throws(SyntaxError) -> Query {
            let token = next()
            switch token {
            case .identifier(let name):
                if peek == .symbol("(") { return try function(name) }
                return .field(name)
            case .quoted(let name): return .field(name)
            case .literal(let value): return .literal(value)
            case .symbol("@"): return .identity
            case .symbol("*"): return .valueProjection(.identity, try projectionRight(20))
            case .symbol("[]"): return .projection(.flatten(.identity), try projectionRight(9))
            case .symbol("[?"): return try filter(.identity)
            case .symbol("{"): return try hash()
            case .symbol("!"): return .not(try expression(45))
            case .symbol("("):
                let inner = try expression(0)
                try expect(")")
                return inner
            case .symbol("["):
                if case .number = peek { return try indexOrSlice(.identity) }
                if peek == .symbol(":") { return try indexOrSlice(.identity) }
                if peek == .symbol("*"), peekNext == .symbol("]") {
                    position += 2
                    return .projection(.identity, try projectionRight(20))
                }
                return try list()
            default:
                position -= 1
                throw unexpected()
            }
        }

        mutating func infix(_ left: Query) throws(SyntaxError) -> Query {
            let token = next()
            switch token {
            case .symbol("."):
                if peek == .symbol("*") {
                    position += 1
                    return .valueProjection(left, try projectionRight(20))
                }
                return .subexpression(left, try dotRight())
            case .symbol("|"): return .pipe(left, try expression(1))
            case .symbol("||"): return .or(left, try expression(2))
            case .symbol("&&"): return .and(left, try expression(3))
            case .symbol(let op) where ["==", "!=", "<", "<=", ">", ">="].contains(op):
                return .comparison(op, left, try expression(5))
            case .symbol("[]"): return .projection(.flatten(left), try projectionRight(9))
            case .symbol("[?"): return try filter(left)
            case .symbol("["):
                if peek == .symbol("*"), peekNext == .symbol("]") {
                    position += 2
                    return .projection(left, try projectionRight(20))
                }
                return try indexOrSlice(left)
            default:
                position -= 1
                throw unexpected()
            }
        }

        /// What follows a `.`: a field, a multiselect list or hash, or a function.
        mutating func dotRight() throws(SyntaxError) -> Query {
            switch peek {
            case .identifier, .quoted: return try prefix()
            case .symbol("["):
                position += 1
                return try list()
            case .symbol("{"):
                position += 1
                return try hash()
            default: throw unexpected()
            }
        }

        /// The expression a projection applies to each element: up to an operator that ends it.
        mutating func projectionRight(_ power: Int) throws(SyntaxError) -> Query {
            if Self.bindingPower(peek) < 10 { return .identity }
            switch peek {
            case .symbol("["), .symbol("[?"), .symbol("[]"): return try expression(power)
            case .symbol("."):
                position += 1
                return try rest(after: try dotRight(), power)
            default: throw unexpected()
            }
        }

        mutating func rest(after left: Query, _ power: Int) throws(SyntaxError) -> Query {
            var left = left
            while power < Self.bindingPower(peek) { left = try infix(left) }
            return left
        }

        mutating func filter(_ left: Query) throws(SyntaxError) -> Query {
            let condition = try expression(0)
            try expect("]")
            return .filter(left, condition: condition, try projectionRight(21))
        }

        mutating func indexOrSlice(_ left: Query) throws(SyntaxError) -> Query {
            var parts: [Int?] = [nil]
            while peek != .symbol("]") {
                switch next() {
                case .number(let value):
                    guard parts[parts.count - 1] == nil else { throw unexpected() }
                    parts[parts.count - 1] = value
                case .symbol(":") where parts.count < 3: parts.append(nil)
                default:
                    position -= 1
                    throw unexpected()
                }
            }
            position += 1
            if parts.count == 1 {
                guard let index = parts[0] else { throw unexpected() }
                return .index(left, index)
            }
            if parts.count == 3, parts[2] == 0 { throw SyntaxError(message: "a slice's step cannot be 0") }
            return .projection(
                .slice(left, parts[0], parts[1], parts.count == 3 ? parts[2] : nil), try projectionRight(20))
        }

        mutating func list() throws(SyntaxError) -> Query {
            var items = [try expression(0)]
            while peek == .symbol(",") {
                position += 1
                items.append(try expression(0))
            }
            try expect("]")
            return .list(items)
        }

        mutating func hash() throws(SyntaxError) -> Query {
            var pairs: [(String, Query)] = []
            repeat {
                if peek == .symbol(",") { position += 1 }
                let key: String
                switch next() {
                case .identifier(let name), .quoted(let name): key = name
                default:
                    position -= 1
                    throw unexpected()
                }
                try expect(":")
                pairs.append((key, try expression(0)))
            } while peek == .symbol(",")
            try expect("}")
            return .hash(pairs)
        }

        mutating func function(_ name: String) throws(SyntaxError) -> Query {
            position += 1  // (
            var arguments: [Query] = []
            while peek != .symbol(")") {
                if !arguments.isEmpty { try expect(",") }
                arguments.append(try expression(0))
            }
            position += 1
            guard let arity = Query.functions[name] else {
                throw SyntaxError(
                    message: "unknown function \(name)() (localnlb's --query has "
                        + Query.functions.keys.sorted().map { "\($0)()" }.joined(separator: ", ") + ")")
            }
            guard arity == arguments.count else {
                throw SyntaxError(message: "\(name)() takes \(arity) argument(s), \(arguments.count) given")
            }
            return .function(name, arguments)
        }
    }
}

extension JSONText {
    var isNull: Bool { if case .null = self { true } else { false } }

    /// JMESPath's truth: false, null, and empty strings, lists and objects are false.
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let flag): return flag
        case .string(let text): return !text.isEmpty
        case .array(let items): return !items.isEmpty
        case .object(let fields): return !fields.isEmpty
        default: return true
        }
    }

    var numeric: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// Equality as JMESPath has it: numbers by value, objects whatever their keys' order.
    func equals(_ other: JSONText) -> Bool {
        switch (self, other) {
        case (.string(let a), .string(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.null, .null): return true
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count
                && a.allSatisfy { pair in b.contains { $0.0 == pair.0 && $0.1.equals(pair.1) } }
        default:
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }
}
