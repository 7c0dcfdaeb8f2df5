/// HTTP/1.x heads as an Application Load Balancer reads them: a request or response line and its header
/// fields, found in place in a receive buffer (offsets, no copies), with what the proxy needs to know —
/// the body's framing, whether the connection stays open, the fields it rewrites — and the request's
/// desync classification (docs/alb.md §17). Nothing here allocates once a head's field list has grown.
package struct HTTPField: Sendable {
    package var nameStart: Int32
    package var nameEnd: Int32
    package var valueStart: Int32
    package var valueEnd: Int32
    /// One of the fields the proxy treats specially, or `.other`.
    package var known: HTTPKnownField
}

package enum HTTPKnownField: UInt8, Sendable {
    case other, host, contentLength, transferEncoding, connection, keepAlive, proxyConnection, upgrade
    case xForwardedFor, xForwardedProto, xForwardedPort, xAmznTraceID, expect, te, trailer, cookie, setCookie

    static let names: [(String, HTTPKnownField)] = [
        ("host", HTTPKnownField.host), ("content-length", .contentLength), ("transfer-encoding", .transferEncoding),
        ("connection", .connection), ("keep-alive", .keepAlive), ("proxy-connection", .proxyConnection),
        ("upgrade", .upgrade), ("x-forwarded-for", .xForwardedFor), ("x-forwarded-proto", .xForwardedProto),
        ("x-forwarded-port", .xForwardedPort), ("x-amzn-trace-id", .xAmznTraceID), ("expect", .expect),
        ("te", .te), ("trailer", .trailer), ("cookie", .cookie), ("set-cookie", .setCookie),
    ]
}

/// http_desync_guardian's tiers, which `routing.http.desync_mitigation_mode` acts on.
package enum DesyncClass: UInt8, Sendable, Comparable {
    case compliant, acceptable, ambiguous, severe

    package static func < (a: DesyncClass, b: DesyncClass) -> Bool { a.rawValue < b.rawValue }
}

/// How a message's body is delimited.
package enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
    /// A response without length: it ends when the target closes.
    case untilClose
}

package struct HTTPHead: Sendable {
    /// Request: the method is `[0, methodEnd)`, the target `[targetStart, targetEnd)`.
    /// Response: `status`, and the reason phrase `[targetStart, targetEnd)`.
    package var methodEnd = 0
    package var targetStart = 0
    package var targetEnd = 0
    package var status = 0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    package var minorVersion = 1
    /// Where the head ends (after its empty line): the body starts here.
    package var length = 0
    package var fields: [HTTPField] = []
    package var framing = BodyFraming.none
    /// The connection closes after this message (`Connection: close`, or HTTP/1.0 without keep-alive).
    package var closes = false
    /// `Connection: upgrade` with an `Upgrade` field: the connection becomes a tunnel on 101.
    package var upgrade = false
    /// `Expect: 100-continue`.
    package var expectsContinue = false
    package var desync = DesyncClass.compliant
    /// Why the request is not compliant (the first reason found), for the log.
    package var desyncReason: StaticString = ""

    package init() { fields.reserveCapacity(32) }

    mutating func reset() {
        methodEnd = 0
        targetStart = 0
        targetEnd = 0
        status = 0
        minorVersion = 1
        length = 0
        fields.removeAll(keepingCapacity: true)
        framing = .none
        closes = false
        upgrade = false
        expectsContinue = false
        desync = .compliant
        desyncReason = ""
    }

    mutating func classify(_ tier: DesyncClass, _ reason: StaticString) {
        if tier > desync {
            desync = tier
            desyncReason = reason
        }
    }
}

package enum HeadParse {
    /// No empty line yet: read more (or, with the buffer full, the head is too large).
    case incomplete
    case complete
    /// Not HTTP/1.x as the load balancer can forward it: answered with 400 (a response: 502).
    case malformed(StaticString)
}

package enum HTTPParser {
    /// The whole head (request or status line and fields): ALB's limit is 64 KB.
    package static let maximumHead = 65536
    /// ALB forwards at most this many fields.
    package static let maximumFields = 256

    /// Parses a request head from `bytes` into `head`.
    package static func parseRequest(_ bytes: UnsafeRawBufferPointer, into head: inout HTTPHead) -> HeadParse {
        head.reset()
        guard let end = headEnd(bytes) else { return .incomplete }
        head.length = end
        // The request line: method SP target SP HTTP/1.x CRLF.
        var i = 0
        while i < end && isTokenByte(bytes[i]) { i += 1 }
        guard i > 0, i < end, bytes[i] == 0x20 else { return .malformed("request line: the method is not a token") }
        head.methodEnd = i
        i += 1
        head.targetStart = i
        while i < end && bytes[i] > 0x20 && bytes[i] != 0x7F { i += 1 }
        guard i > head.targetStart, i < end, bytes[i] == 0x20 else {
            return .malformed("request line: the target holds a space or control byte")
        }
        head.targetEnd = i
        i += 1
        guard let minor = version(bytes, at: i), i + 10 <= end, bytes[i + 8] == 0x0D, bytes[i + 9] == 0x0A else {
            return .malformed("request line: not HTTP/1.0 or HTTP/1.1")
        }
        head.minorVersion = minor
        head.closes = minor == 0
        return parseFields(bytes, from: i + 10, end: end, into: &head, request: true)
    }

    /// Parses a response head; `requestMethodIsHEAD` and the status decide whether a body follows.
    package static func parseResponse(
        _ bytes: UnsafeRawBufferPointer, into head: inout HTTPHead, requestMethodIsHEAD: Bool
    ) -> HeadParse {
        head.reset()
        guard let end = headEnd(bytes) else { return .incomplete }
        head.length = end
        guard let minor = version(bytes, at: 0), end >= 14, bytes[8] == 0x20 else {
            return .malformed("status line: not HTTP/1.x")
        }
        head.minorVersion = minor
        var status = 0
        for k in 9..<12 {
            let digit = bytes[k]
            guard digit >= 0x30 && digit <= 0x39 else { return .malformed("status line: no three-digit status") }
            status = status * 10 + Int(digit - 0x30)
        }
        guard status >= 100, bytes[12] == 0x20 || bytes[12] == 0x0D else {
            return .malformed("status line: no three-digit status")
        }
        head.status = status
        var i = 12
        while i < end && bytes[i] != 0x0D { i += 1 }
        head.targetStart = min(13, i)
        head.targetEnd = i
        guard i + 1 < end, bytes[i + 1] == 0x0A else { return .malformed("status line: a bare CR") }
        head.closes = minor == 0
        let parsed = parseFields(bytes, from: i + 2, end: end, into: &head, request: false)
        guard case .complete = parsed else { return parsed }
        if requestMethodIsHEAD || status < 200 || status == 204 || status == 304 {
            head.framing = .none
        } else if head.framing == .none && !hasContentLength(head) {
            head.framing = .untilClose
            head.closes = true
        }
        return .complete
    }

    static func hasContentLength(_ head: HTTPHead) -> Bool {
        head.fields.contains { $0.known == .contentLength }
    }

    /// The offset after the first empty line (CRLF CRLF), or nil.
    static func headEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        guard count >= 4 else { return nil }
        var i = 3
        while i < count {
            let byte = bytes[i]
            if byte == 0x0A {
                if bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A && bytes[i - 3] == 0x0D { return i + 1 }
                i += 1
            } else if byte == 0x0D {
                i += 1
            } else {
                // Neither CR nor LF: the earliest the empty line can end is 4 bytes on.
                i += 4
            }
        }
        return nil
    }

    /// `HTTP/1.0` or `HTTP/1.1` at `at`: the minor version.
    static func version(_ bytes: UnsafeRawBufferPointer, at i: Int) -> Int? {
        guard i + 8 <= bytes.count else { return nil }
        let prefix: StaticString = "HTTP/1."
        for k in 0..<7 where bytes[i + k] != prefix.utf8Start[k] { return nil }
        switch bytes[i + 7] {
        case 0x30: return 0
        case 0x31: return 1
        default: return nil
        }
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// The field lines from `start` to the empty line before `end`.
    static func parseFields(
        _ bytes: UnsafeRawBufferPointer, from start: Int, end: Int, into head: inout HTTPHead, request: Bool
    ) -> HeadParse {
        var i = start
        var contentLength: Int?
        var chunked = false
        var transferEncodings = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var hasUpgrade = false
        var hosts = 0
        while i < end - 2 {
            let lineStart = i
            if bytes[i] == 0x20 || bytes[i] == 0x09 {
                // obs-fold: a field continued on the next line. http_desync_guardian: severe.
                if request { head.classify(.severe, "a folded header line") }
                return .malformed("a folded header line (obs-fold)")
            }
            while i < end && isTokenByte(bytes[i]) { i += 1 }
            let nameEnd = i
            guard nameEnd > lineStart else {
                if request { head.classify(.severe, "a header name with a byte outside token") }
                return .malformed("a header name with a byte outside token")
            }
            guard bytes[i] == 0x3A else {
                if bytes[i] == 0x20 || bytes[i] == 0x09 {
                    // Space before the colon: another server may read another name.
                    if request { head.classify(.severe, "space between a header name and its colon") }
                    return .malformed("space between a header name and its colon")
                }
                if request { head.classify(.severe, "a header name with a byte outside token") }
                return .malformed("a header name with a byte outside token")
            }
            i += 1
            while i < end && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            var valueStart = i
            var badByte = false
            while i < end && bytes[i] != 0x0D && bytes[i] != 0x0A {
                let byte = bytes[i]
                if (byte < 0x20 && byte != 0x09) || byte == 0x7F { badByte = true }
                i += 1
            }
            guard i + 1 < end, bytes[i] == 0x0D, bytes[i + 1] == 0x0A else {
                if request { head.classify(.severe, "a bare CR or LF in a header line") }
                return .malformed("a bare CR or LF in a header line")
            }
            var valueEnd = i
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) {
                valueEnd -= 1
            }
            if valueStart > valueEnd { valueStart = valueEnd }
            i += 2
            if badByte {
                if request { head.classify(.severe, "a control byte in a header value") }
                return .malformed("a control byte in a header value")
            }
            guard head.fields.count < maximumFields else { return .malformed("more header fields than ALB takes") }
            let known = knownField(bytes, lineStart, nameEnd)
            head.fields.append(
                HTTPField(
                    nameStart: Int32(lineStart), nameEnd: Int32(nameEnd), valueStart: Int32(valueStart),
                    valueEnd: Int32(valueEnd), known: known))
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            switch known {
            case .host:
                hosts += 1
            case .contentLength:
                guard let length = decimal(value) else {
                    if request { head.classify(.severe, "a Content-Length that is not a number") }
                    return .malformed("a Content-Length that is not a number")
                }
                if let earlier = contentLength, earlier != length {
                    if request { head.classify(.severe, "two different Content-Length values") }
                    return .malformed("two different Content-Length values")
                }
                if contentLength != nil && request { head.classify(.ambiguous, "Content-Length given twice") }
                contentLength = length
            case .transferEncoding:
                transferEncodings += 1
                // Only "chunked" (last, and alone) delimits a request: anything else is read differently
                // by different servers.
                if lastTokenIs(value, "chunked") {
                    chunked = true
                    if !equalsIgnoringCase(value, "chunked") && request {
                        head.classify(.ambiguous, "a Transfer-Encoding besides chunked")
                    }
                } else {
                    if request { head.classify(.severe, "a Transfer-Encoding that is not chunked") }
                    if request { return .malformed("a Transfer-Encoding that is not chunked") }
                }
            case .connection:
                forEachToken(value) { token in
                    if equalsIgnoringCase(token, "close") { connectionClose = true }
                    if equalsIgnoringCase(token, "keep-alive") { connectionKeepAlive = true }
                    if equalsIgnoringCase(token, "upgrade") { connectionUpgrade = true }
                }
            case .upgrade:
                hasUpgrade = true
            case .expect:
                if equalsIgnoringCase(value, "100-continue") { head.expectsContinue = true }
            default:
                break
            }
        }
        if transferEncodings > 1 && request { head.classify(.ambiguous, "Transfer-Encoding given twice") }
        if chunked && contentLength != nil {
            // Both: RFC 7230 says chunked wins; a server that reads Content-Length desyncs.
            if request { head.classify(.ambiguous, "both Content-Length and Transfer-Encoding") }
            head.closes = true
        }
        if request && head.minorVersion == 1 && hosts == 0 { head.classify(.acceptable, "no Host header") }
        if request && hosts > 1 {
            head.classify(.ambiguous, "Host given twice")
        }
        if chunked {
            head.framing = .chunked
        } else if let contentLength {
            head.framing = contentLength > 0 ? .length(contentLength) : .none
        } else {
            head.framing = .none
        }
        if connectionClose { head.closes = true }
        if head.minorVersion == 0 && connectionKeepAlive && !connectionClose { head.closes = false }
        head.upgrade = connectionUpgrade && hasUpgrade
        return .complete
    }

    static func knownField(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HTTPKnownField {
        let length = end - start
        for (name, field) in HTTPKnownField.names where name.utf8.count == length {
            var equal = true
            var k = start
            for byte in name.utf8 {
                if lowercase(bytes[k]) != byte {
                    equal = false
                    break
                }
                k += 1
            }
            if equal { return field }
        }
        return .other
    }

    @inline(__always) static func lowercase(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    static func equalsIgnoringCase(_ value: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard value.count == text.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        for k in 0..<value.count where lowercase(value[k]) != expected[k] { return false }
        return true
    }

    /// The last comma-separated token of a value, compared without case.
    static func lastTokenIs(_ value: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        var last: UnsafeRawBufferPointer?
        forEachToken(value) { last = $0 }
        return last.map { equalsIgnoringCase($0, text) } ?? false
    }

    /// Each comma-separated token of a value, trimmed of spaces.
    static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        var k = 0
        while k <= value.count {
            if k == value.count || value[k] == 0x2C {
                var a = start
                var b = k
                while a < b && (value[a] == 0x20 || value[a] == 0x09) { a += 1 }
                while b > a && (value[b - 1] == 0x20 || value[b - 1] == 0x09) { b -= 1 }
                if b > a { body(UnsafeRawBufferPointer(rebasing: value[a..<b])) }
                start = k + 1
            }
            k += 1
        }
    }

    /// A non-negative decimal of at most 15 digits.
    static func decimal(_ value: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 15 else { return nil }
        var number = 0
        for byte in value {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            number = number * 10 + Int(byte - 0x30)
        }
        return number
    }
}

/// Follows a chunked body as it passes (the bytes go on unchanged): where it ends, and whether it is
/// well-formed.
package struct ChunkedBody: Sendable {
    enum State: Sendable {
        case size, extensions, sizeLF, data, dataCR, dataLF, trailerStart, trailer, trailerLF, lastLF, done
    }
    var state = State.size
    var remaining = 0
    var digits = 0

    package init() {}

    package var isDone: Bool { state == .done }

    package enum Step: Equatable {
        /// All `count` bytes belong to the body, which goes on.
        case more
        /// The body ends after this many of the bytes.
        case ends(Int)
        case malformed
    }

    package mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Step {
        var i = 0
        let count = bytes.count
        while i < count {
            let byte = bytes[i]
            switch state {
            case .size:
                if let value = hexValue(byte) {
                    guard digits < 15 else { return .malformed }
                    remaining = remaining * 16 + value
                    digits += 1
                } else if digits > 0 && (byte == 0x3B || byte == 0x20 || byte == 0x09) {
                    state = .extensions
                } else if digits > 0 && byte == 0x0D {
                    state = .sizeLF
                } else {
                    return .malformed
                }
                i += 1
            case .extensions:
                if byte == 0x0D {
                    state = .sizeLF
                } else if byte == 0x0A || (byte < 0x20 && byte != 0x09) {
                    return .malformed
                }
                i += 1
            case .sizeLF:
                guard byte == 0x0A else { return .malformed }
                i += 1
                digits = 0
                state = remaining == 0 ? .trailerStart : .data
            case .data:
                let take = min(remaining, count - i)
                remaining -= take
                i += take
                if remaining == 0 { state = .dataCR }
            case .dataCR:
                guard byte == 0x0D else { return .malformed }
                state = .dataLF
                i += 1
            case .dataLF:
                guard byte == 0x0A else { return .malformed }
                state = .size
                i += 1
            case .trailerStart:
                if byte == 0x0D {
                    state = .lastLF
                } else if byte == 0x0A {
                    return .malformed
                } else {
                    state = .trailer
                }
                i += 1
            case .trailer:
                if byte == 0x0D { state = .trailerLF }
                i += 1
            case .trailerLF:
                guard byte == 0x0A else { return .malformed }
                state = .trailerStart
                i += 1
            case .lastLF:
                guard byte == 0x0A else { return .malformed }
                state = .done
                return .ends(i + 1)
            case .done:
                return .ends(i)
            }
        }
        return .more
    }

    func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte - 0x30)
        case 0x41...0x46: return Int(byte - 0x41 + 10)
        case 0x61...0x66: return Int(byte - 0x61 + 10)
        default: return nil
        }
    }
}
