import Foundation
import ProxyProtocol

/// Where ended flows are written: one text line each on stderr, or JSON lines to a file.
public final class FlowLog: @unchecked Sendable {
    enum Sink {
        case standardError
        case jsonLines(FileHandle)
        case none
    }

    let sink: Sink

    public static let standardError = FlowLog(sink: .standardError)
    public static let disabled = FlowLog(sink: .none)

    init(sink: Sink) { self.sink = sink }

    /// JSON lines appended to `path` (created if missing).
    public static func jsonLines(path: String) throws -> FlowLog {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ConfigurationError(problems: ["--flow-log \(path): cannot create the file"])
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw ConfigurationError(problems: ["--flow-log \(path): cannot open the file for writing"])
        }
        handle.seekToEndOfFile()
        return FlowLog(sink: .jsonLines(handle))
    }

    func write(_ record: FlowRecord) {
        switch sink {
        case .none:
            return
        case .standardError:
            FileHandle.standardError.write(Data((Self.text(record) + "\n").utf8))
        case .jsonLines(let handle):
            handle.write(Data((Self.json(record) + "\n").utf8))
        }
    }

    static func text(_ r: FlowRecord) -> String {
        var line = "flow \(r.id) listener \(r.listener) client \(r.client) node \(r.node)"
        line += " target \(r.target?.description ?? "-") source \(r.source?.description ?? "-")"
        line += " proxy \(r.proxyHeader.map(hexString) ?? "-")"
        line += " bytes \(r.bytesFromClient)/\(r.bytesFromTarget) duration \(formatSeconds(r.durationSeconds))s"
        line += " reason \"\(r.closeReason.rawValue)\""
        if let detail = r.detail { line += " (\(detail))" }
        return line
    }

    static func json(_ r: FlowRecord) -> String {
        func quoted(_ text: String?) -> String {
            guard let text else { return "null" }
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        let fields: [(String, String)] = [
            ("id", String(r.id)),
            ("listener", quoted(r.listener.description)),
            ("client", quoted(r.client.description)),
            ("node", quoted(r.node.description)),
            ("target", quoted(r.target?.description)),
            ("source", quoted(r.source?.description)),
            ("proxyHeader", quoted(r.proxyHeader.map(hexString))),
            ("bytesFromClient", String(r.bytesFromClient)),
            ("bytesFromTarget", String(r.bytesFromTarget)),
            ("durationSeconds", formatSeconds(r.durationSeconds)),
            ("closeReason", quoted(r.closeReason.rawValue)),
            ("detail", quoted(r.detail)),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    static func formatSeconds(_ seconds: Double) -> String { String(format: "%.6f", seconds) }
}

public func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}
