/// Any JSON value, read by `JSONParser` so the configuration can be checked key by key and every
/// problem reported with its path, rather than stopping at the first one as a Decodable model would.
package enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value as the user wrote it, for error messages: `"yes"`, `7`, `true`.
    package var shown: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .string(let s): return "\"\(s)\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    /// A string, or a number/bool turned into the string AWS would hold (`300` → `"300"`).
    package var attributeString: String? {
        switch self {
        case .string(let s): return s
        case .number, .bool: return shown
        default: return nil
        }
    }
}
