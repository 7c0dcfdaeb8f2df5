import Foundation
import LocalNLBDataPlane
import LocalNLBModel

/// One HTTP/1.1 request to the control API.
package struct AdminRequest: Equatable {
    package var method: String
    package var path: String
    /// The query string's parameters (`?MaxItems=100&Marker=42`), percent-decoded.
    package var query: [String: String] = [:]
    package var headers: [String: String]
    package var body: [UInt8]
    /// How many bytes of the input the request took, head and body.
    var wireLength = 0

    /// The most a request may be, headers and body: the API takes small JSON documents only.
    static let maximumSize = 1 << 20

    package enum Parse: Equatable {
        case incomplete
        case request(AdminRequest)
        case invalid(status: Int, message: String)
    }

    /// Parses a complete request from the start of `bytes`, or says why not yet or not at all.
    package static func parse(_ bytes: [UInt8]) -> Parse {
        guard let end = find([13, 10, 13, 10], in: bytes) else {
            return bytes.count > 65536 ? .invalid(status: 431, message: "request headers are too large") : .incomplete
        }
        guard let head = String(validating: bytes[0..<end], as: UTF8.self) else {
            return .invalid(status: 400, message: "the request line or a header is not UTF-8")
        }
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else {
            return .invalid(status: 400, message: "the request line is not 'METHOD /path HTTP/1.1'")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                return .invalid(status: 400, message: "header line without a colon")
            }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        var length = 0
        if let text = headers["content-length"] {
            guard let value = Int(text), value >= 0 else {
                return .invalid(status: 400, message: "Content-Length is not a number")
            }
            length = value
        }
        if headers["transfer-encoding"] != nil {
            return .invalid(status: 411, message: "send the body with Content-Length, not chunked")
        }
        guard end + 4 + length <= maximumSize else {
            return .invalid(status: 413, message: "the request is larger than \(maximumSize) bytes")
        }
        guard bytes.count >= end + 4 + length else { return .incomplete }
        let target = String(requestLine[1])
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count == 2 {
            // A query string decodes as a form body does (`+`, %-escapes, UTF-8 or refused).
            do throws(APIError) {
                query = try QueryForm(form: Array(parts[1].utf8)).values
            } catch {
                return .invalid(status: 400, message: "query \(error.message)")
            }
        }
        return .request(
            AdminRequest(
                method: String(requestLine[0]), path: String(parts[0]), query: query, headers: headers,
                body: Array(bytes[(end + 4)..<(end + 4 + length)]), wireLength: end + 4 + length))
    }

    private static func find(_ marker: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= marker.count else { return nil }
        for start in 0...(bytes.count - marker.count) where bytes[start..<(start + marker.count)].elementsEqual(marker)
        {
            return start
        }
        return nil
    }
}

/// A response: a status and a body (JSON, or Prometheus text for /metrics).
package struct AdminResponse {
    package var status: Int
    package var body: String
    var contentType = "application/json"
    /// More header lines (`x-amzn-ErrorType` of a REST-JSON error).
    package var headers: [(String, String)] = []

    package static func json(_ status: Int, _ value: JSONText) -> AdminResponse {
        AdminResponse(status: status, body: value.rendered + "\n")
    }

    /// An error shaped as the AWS CLI shows ELBv2 errors: a code and a message.
    package static func error(_ status: Int, _ code: String, _ message: String) -> AdminResponse {
        json(status, .object([("Error", .object([("Code", .string(code)), ("Message", .string(message))]))]))
    }

    package var bytes: [UInt8] {
        let reason =
            [
                200: "OK", 201: "Created", 400: "Bad Request", 409: "Conflict", 401: "Unauthorized", 404: "Not Found",
                405: "Method Not Allowed",
                408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
                431: "Request Header Fields Too Large", 503: "Service Unavailable",
            ][status] ?? "Error"
        let payload = Array(body.utf8)
        let head =
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(payload.count)\r\n"
            + headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "Connection: close\r\n\r\n"
        return Array(head.utf8) + payload
    }
}

/// A control API connection: bytes in until a request is whole, then the response out, then close.
package final class AdminConnection {
    package let index: Int
    package var generation: UInt32 = 0
    package var fd: Int32 = -1
    package var input: [UInt8] = []
    package var output: [UInt8] = []
    package var written = 0
    var responding = false
    package var finSent = false
    package var deadline: UInt64 = 0

    package init(index: Int) { self.index = index }
}
