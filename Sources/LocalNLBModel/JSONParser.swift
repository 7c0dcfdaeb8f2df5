/// A strict JSON reader for configuration files and API bodies (RFC 8259): a syntax error names its
/// line and column, a trailing comma is an error, and a key given twice in one object is reported
/// with its path (a decoder would silently keep one of them). One pass, linear in the input.
package struct JSONParser {
    package struct SyntaxError: Error, CustomStringConvertible {
        package var line: Int
        package var column: Int
        package var message: String
        package var description: String { "line \(line), column \(column): \(message)" }
    }

    /// The document, and every duplicated key as "path: given twice" problems.
    package static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> (value: JSONValue, duplicates: [String]) {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(path: "")
        parser.skipWhitespace()
        if parser.position < bytes.count { throw parser.error("unexpected \(parser.shownByte) after the document") }
        return (value, parser.duplicates)
    }

    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0
    private var duplicates: [String] = []
    static let maximumDepth = 256

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private var shownByte: String {
        guard position < bytes.count else { return "end of file" }
        let byte = bytes[position]
        return (0x21..<0x7F).contains(byte)
            ? "'\(Character(UnicodeScalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    /// Line and column (both from 1, the column in characters) of the current position.
    private func error(_ message: String) -> SyntaxError {
        var line = 1
        var lineStart = 0
        for index in 0..<min(position, bytes.count) where bytes[index] == 0x0A {
            line += 1
            lineStart = index + 1
        }
        let column = String(decoding: bytes[lineStart..<min(position, bytes.count)], as: UTF8.self).count + 1
        return SyntaxError(line: line, column: column, message: message)
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func value(path: String) throws(SyntaxError) -> JSONValue {
        guard position < bytes.count else { throw error("the document ends where a value should be") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(path: path)
        case UInt8(ascii: "["): return try array(path: path)
        case UInt8(ascii: "\""): return .string(try string(path: path))
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("unexpected \(shownByte) where a value should be")
        }
    }

    private mutating func literal(_ word: String, _ value: JSONValue) throws(SyntaxError) -> JSONValue {
        let utf8 = Array(word.utf8)
        guard position + utf8.count <= bytes.count, Array(bytes[position..<position + utf8.count]) == utf8 else {
            throw error("unexpected \(shownByte) where a value should be")
        }
        position += utf8.count
        return value
    }

    private mutating func enter() throws(SyntaxError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nested deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func object(path: String) throws(SyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                let trailing = position < bytes.count && bytes[position] == UInt8(ascii: "}")
                throw error(trailing ? "a comma before '}' (trailing commas are not JSON)" : "expected a \"key\"")
            }
            let key = try string(path: path.isEmpty ? "a key" : "a key of \(path)")
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("expected ':' after the key \"\(key)\"")
            }
            position += 1
            skipWhitespace()
            let memberPath = path.isEmpty ? key : "\(path).\(key)"
            let member = try value(path: memberPath)
            if members.updateValue(member, forKey: key) != nil {
                duplicates.append("\(memberPath): given twice in one object (remove one)")
            }
            skipWhitespace()
            guard position < bytes.count else { throw error("the document ends inside an object (missing '}')") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "}") else { throw error("expected ',' or '}' after a value") }
            position += 1
            return .object(members)
        }
    }

    private mutating func array(path: String) throws(SyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
                throw error("a comma before ']' (trailing commas are not JSON)")
            }
            items.append(try value(path: "\(path)[\(items.count)]"))
            skipWhitespace()
            guard position < bytes.count else { throw error("the document ends inside a list (missing ']')") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "]") else { throw error("expected ',' or ']' after a value") }
            position += 1
            return .array(items)
        }
    }

    /// A string at `path` (named when its bytes are not UTF-8: refused, never replaced with U+FFFD).
    private mutating func string(path: String) throws(SyntaxError) -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var runStart = position
        // A run between escapes is whole UTF-8: `"` and `\` never occur inside a multi-byte sequence.
        func run(_ parser: JSONParser, _ range: Range<Int>) throws(SyntaxError) -> String.UnicodeScalarView {
            guard let text = String(validating: parser.bytes[range], as: UTF8.self) else {
                throw parser.error("\(path.isEmpty ? "a string" : path): not valid UTF-8 (save the file as UTF-8)")
            }
            return text.unicodeScalars
        }
        while true {
            guard position < bytes.count else { throw error("the document ends inside a string (missing '\"')") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                scalars.append(contentsOf: try run(self, runStart..<position))
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw error("a control character inside a string (write it as \\n, \\t or \\u00XX)") }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            scalars.append(contentsOf: try run(self, runStart..<position))
            position += 1
            guard position < bytes.count else { throw error("the document ends inside a string") }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                {
                    position += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("an unpaired UTF-16 surrogate") }
                    code = 0x10000 + (code - 0xD800) << 10 + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("an unpaired UTF-16 surrogate") }
                scalars.append(scalar)
            default:
                position -= 1
                throw error("\\\(Character(UnicodeScalar(escape))) is not a JSON escape")
            }
            runStart = position
        }
    }

    private mutating func hex4() throws(SyntaxError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("\\u needs four hex digits") }
        var code: UInt32 = 0
        for byte in bytes[position..<position + 4] {
            guard let digit = Character(UnicodeScalar(byte)).hexDigitValue else {
                throw error("\\u needs four hex digits")
            }
            code = code << 4 | UInt32(digit)
        }
        position += 4
        return code
    }

    private mutating func number() throws(SyntaxError) -> JSONValue {
        let start = position
        func digits() -> Int {
            let from = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            return position - from
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        guard digits() > 0 else { throw error("a '-' with no digits after it") }
        if bytes[integerStart] == UInt8(ascii: "0") && position - integerStart > 1 {
            position = integerStart
            throw error("a number with a leading zero")
        }
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw error("a '.' with no digits after it") }
        }
        if position < bytes.count && (bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")) {
            position += 1
            if position < bytes.count && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-"))
            {
                position += 1
            }
            guard digits() > 0 else { throw error("an exponent with no digits") }
        }
        guard let number = Double(String(decoding: bytes[start..<position], as: UTF8.self)) else {
            throw error("not a number")
        }
        return .number(number)
    }
}
