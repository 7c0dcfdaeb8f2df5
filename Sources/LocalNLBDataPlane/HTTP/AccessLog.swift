import Foundation
import LocalNLBModel
import ProxyProtocol

/// An application load balancer's access log entry, one per request, in ALB's documented field order
/// (docs/alb.md §22), to the flow log: as ALB writes it (space-separated, quoted where ALB quotes) on
/// standard error, or as a JSON object with ALB's field names in a `--flow-log` file.
extension EventLoop {
    func logRequest(_ session: HTTPSession, elbStatus: Int) {
        guard options.flowLog.isEnabled else { return }
        let head = session.request
        func seconds(_ from: UInt64, _ to: UInt64) -> String {
            from == 0 || to < from ? "-1" : String(format: "%.3f", Double(to - from) / 1e9)
        }
        let routed = session.routedTarget
        let groupName = groups.indices.contains(session.groupIndex) ? groups[session.groupIndex].configuration.name : ""
        let names = configuration.names
        let balancer = listeners[session.listenerIndex].shared.loadBalancerName
        let arn = names.loadBalancer(balancer)
        let elb =
            arn.split(separator: ":").last.map { $0.dropFirst("loadbalancer/".count) }.map(String.init) ?? balancer
        let classification: String
        switch head.desync {
        case .compliant: classification = "-"
        case .acceptable: classification = "Acceptable"
        case .ambiguous: classification = "Ambiguous"
        case .severe: classification = "Severe"
        }
        let now = Self.microsecondTime(Date().timeIntervalSince1970)
        let fields: [(String, String, Bool)] = [
            ("type", session.settings.scheme == "https" ? "https" : (session.tunnel ? "ws" : "http"), false),
            ("time", now, false),
            ("elb", elb, false),
            ("client:port", "\(session.client.ip):\(session.client.port)", false),
            ("target:port", routed.map { "\($0.ip):\($0.port)" } ?? "-", false),
            ("request_processing_time", seconds(session.requestStarted, session.sentToTargetAt), false),
            ("target_processing_time", seconds(session.sentToTargetAt, session.responseAt), false),
            ("response_processing_time", session.responseAt == 0 ? "-1" : "0.000", false),
            ("elb_status_code", String(elbStatus), false),
            ("target_status_code", session.targetStatus == 0 ? "-" : String(session.targetStatus), false),
            ("received_bytes", String(session.exchangeBytesIn), false),
            ("sent_bytes", String(session.exchangeBytesOut), false),
            ("request", session.loggedRequest.isEmpty ? "- - -" : session.loggedRequest, true),
            ("user_agent", session.loggedAgent.isEmpty ? "-" : session.loggedAgent, true),
            ("ssl_cipher", session.tlsCipher.map { String(cString: $0) } ?? "-", false),
            ("ssl_protocol", session.tlsVersion.map { String(cString: $0) } ?? "-", false),
            ("target_group_arn", routed == nil || groupName.isEmpty ? "-" : names.targetGroup(groupName), false),
            ("trace_id", session.traceID.isEmpty ? "-" : String(decoding: session.traceID, as: UTF8.self), true),
            ("domain_name", "-", true),
            ("chosen_cert_arn", "-", true),
            ("matched_rule_priority", String(session.matchedRule), false),
            ("request_creation_time", Self.microsecondTime(session.receivedWallClock), false),
            ("actions_executed", session.actionTaken.isEmpty ? "-" : session.actionTaken, true),
            ("redirect_url", session.redirectURL.isEmpty ? "-" : session.redirectURL, true),
            ("error_reason", "-", true),
            ("target:port_list", routed.map { "\($0.ip):\($0.port)" } ?? "-", true),
            ("target_status_code_list", session.targetStatus == 0 ? "-" : String(session.targetStatus), true),
            ("classification", classification, true),
            ("classification_reason", classification == "-" ? "-" : String(describing: head.desyncReason), true),
            ("conn_trace_id", "TID_" + ResourceNames.id("conn/\(index)/\(session.index)/\(session.started)"), false),
        ]
        options.flowLog.writeAccessEntry(fields)
    }

    func wallClock() -> Double { Date().timeIntervalSince1970 }

    /// The request line (`GET http://host:port/path HTTP/1.1`, as ALB logs it) and the user agent, read
    /// while the head is at the start of the input buffer.
    func captureForLog(_ session: HTTPSession) {
        session.loggedRequest = ""
        session.loggedAgent = ""
        let bytes = session.inBytes
        let head = session.request
        guard head.targetEnd > 0, head.targetEnd <= bytes.count, head.methodEnd <= head.targetStart else { return }
        let method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<head.methodEnd]), as: UTF8.self)
        let target = String(
            decoding: UnsafeRawBufferPointer(rebasing: bytes[head.targetStart..<head.targetEnd]), as: UTF8.self)
        let host = session.hostValue(bytes).map { String(decoding: $0, as: UTF8.self) } ?? session.node.ip.description
        session.loggedRequest =
            "\(method) \(session.settings.scheme)://\(host):\(session.settings.port)\(target) HTTP/1.\(head.minorVersion)"
        if let field = head.fields.first(where: { Self.isUserAgent($0, bytes) }) {
            session.loggedAgent = String(
                decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]),
                as: UTF8.self)
        }
    }

    static func isUserAgent(_ field: HTTPField, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let name: StaticString = "user-agent"
        guard Int(field.nameEnd - field.nameStart) == name.utf8CodeUnitCount else { return false }
        for k in 0..<name.utf8CodeUnitCount
        where HTTPParser.lowercase(bytes[Int(field.nameStart) + k]) != name.utf8Start[k] {
            return false
        }
        return true
    }

    /// ALB's timestamps: ISO 8601 in UTC with microseconds (`2026-12-08T01:02:03.456789Z`).
    static func microsecondTime(_ epochSeconds: Double) -> String {
        var time = time_t(epochSeconds.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        let micro = Int((epochSeconds - epochSeconds.rounded(.down)) * 1e6)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micro)
    }
}

extension FlowLog {
    /// An access log entry: ALB's line on standard error, a JSON object in a file.
    package func writeAccessEntry(_ fields: [(name: String, value: String, quoted: Bool)]) {
        switch sink {
        case .none:
            return
        case .standardError:
            let line = fields.map { $0.quoted ? "\"\($0.value)\"" : $0.value }.joined(separator: " ")
            let data = Data((line + "\n").utf8)
            withLockWriting { FileHandle.standardError.write(data) }
        case .jsonLines(let handle):
            let line = JSONText.object(fields.map { ($0.name, .string($0.value)) }).rendered
            let data = Data((line + "\n").utf8)
            withLockWriting { handle.write(data) }
        }
    }
}
