import Foundation
import LocalNLBModel
import ProxyProtocol
import Synchronization

/// Where ended flows are written: one text line each on stderr, or JSON lines to a file.
public final class FlowLog: Sendable {
    package enum Sink: Sendable {
        case standardError
        case jsonLines(FileHandle)
        case none
    }

    let sink: Sink
    /// Event loops on several threads end flows at once: one whole line at a time.
    private let writing = Mutex(())

    public static let standardError = FlowLog(sink: .standardError)
    public static let disabled = FlowLog(sink: .none)

    package init(sink: Sink) { self.sink = sink }

    var isEnabled: Bool {
        if case .none = sink { return false }
        return true
    }

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

    /// Runs `body` holding the lock that keeps lines whole.
    func withLockWriting(_ body: () -> Void) { writing.withLock { _ in body() } }

    package func write(_ record: FlowRecord) {
        switch sink {
        case .none:
            return
        case .standardError:
            let line = Data((rfc3339Now() + " " + Self.text(record) + "\n").utf8)
            writing.withLock { _ in FileHandle.standardError.write(line) }
        case .jsonLines(let handle):
            let line = Data((Self.json(record, time: rfc3339Now()) + "\n").utf8)
            writing.withLock { _ in handle.write(line) }
        }
    }

    package static func text(_ r: FlowRecord) -> String {
        var line =
            "flow \(r.id)\(r.transport == .udp ? " UDP" : "") listener \(r.listener) client \(r.client) node \(r.node)"
        line += " target \(r.target?.description ?? "-") source \(r.source?.description ?? "-")"
        line += " proxy \(r.proxyHeader.map(hexString) ?? "-")"
        line += " bytes \(r.bytesFromClient)/\(r.bytesFromTarget) duration \(formatSeconds(r.durationSeconds))s"
        line += " reason \"\(r.closeReason.rawValue)\""
        if let detail = r.detail { line += " (\(detail))" }
        return line
    }

    /// `time`: when the flow ended (RFC 3339).
    package static func json(_ r: FlowRecord, time: String) -> String {
        JSONText.object([
            ("time", .string(time)),
            ("id", .integer(Int64(r.id))),
            ("protocol", .string(r.transport == .udp ? "UDP" : "TCP")),
            ("listener", .string(r.listener.description)),
            ("client", .string(r.client.description)),
            ("node", .string(r.node.description)),
            ("target", .optional(r.target?.description)),
            ("source", .optional(r.source?.description)),
            ("proxyHeader", .optional(r.proxyHeader.map(hexString))),
            ("bytesFromClient", .integer(Int64(r.bytesFromClient))),
            ("bytesFromTarget", .integer(Int64(r.bytesFromTarget))),
            ("durationSeconds", .number(r.durationSeconds)),
            ("closeReason", .string(r.closeReason.rawValue)),
            ("detail", .optional(r.detail)),
        ]).rendered
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
