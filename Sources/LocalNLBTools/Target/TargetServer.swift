import CLocalNLB
import Foundation
import Glibc
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol
import Synchronization

/// `localnlb target`: a server that tells each client what it saw — the TCP peer, its own address and
/// any PROXY header — for demos and for anyone's integration tests.
public final class TargetServer: Sendable {
    public enum ProxyMode: String, Sendable {
        /// A PROXY header is data like any other byte.
        case off
        /// A leading PROXY header is parsed; without one the connection is served all the same.
        case optional
        /// A connection must start with a PROXY header, or it is closed.
        case required
    }

    public struct Options: Sendable {
        public var listen: IPEndpoint
        public var name: String
        public var proxyMode: ProxyMode
        /// Sent first (after the header when one is required), as SMTP does: a server-speaks-first protocol.
        public var banner: String?
        /// Print one JSON line per connection on stdout.
        public var printsReports: Bool
        /// Honour PROXY headers only from peers in these ranges (`--trust`); nil trusts every peer.
        public var trust: ProxyTrust?
        /// A connection whose PROXY header is not complete this long after it was accepted is closed
        /// (a header trickled byte by byte, or a v1 line that never ends, cannot hold it forever).
        public var headerTimeoutSeconds: Double = 10

        public init(
            listen: IPEndpoint, name: String = "target", proxyMode: ProxyMode = .optional, banner: String? = nil,
            printsReports: Bool = false, trust: ProxyTrust? = nil, headerTimeoutSeconds: Double = 10
        ) {
            self.headerTimeoutSeconds = headerTimeoutSeconds
            self.listen = listen
            self.name = name
            self.proxyMode = proxyMode
            self.banner = banner
            self.printsReports = printsReports
            self.trust = trust
        }
    }

    public let options: Options
    /// Where the server listens (the kernel's port when `listen` had port 0).
    public let endpoint: IPEndpoint
    private let listenFD: Int32
    /// Whether `stop()` ran, and the connections being served (shut down by `stop()`).
    private let state = Mutex<(stopped: Bool, connections: Set<Int32>)>((false, []))
    private let acceptDone = DispatchSemaphore(value: 0)

    public init(options: Options) throws {
        self.options = options
        do {
            let fd = try Socket.listen(on: options.listen, backlog: 128)
            // This server blocks, one thread per connection; only the balancer's loop is non-blocking.
            Socket.makeBlocking(fd)
            listenFD = fd
        } catch {
            throw ListenerError(description: "target \(options.listen): \(error)")
        }
        endpoint = Socket.localEndpoint(listenFD) ?? options.listen
    }

    /// Serves in background threads until `stop()`.
    public func start() {
        Thread.detachNewThread { [self] in
            acceptLoop()
            acceptDone.signal()
        }
    }

    /// Stops accepting, closes open connections and waits for the accept thread.
    public func stop() {
        let first = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.stopped = true
            for fd in state.connections { Socket.shutdownBoth(fd) }
            return true
        }
        guard first else { return }
        Socket.shutdownBoth(listenFD)
        acceptDone.wait()
        closeDescriptor(listenFD)
    }

    private func acceptLoop() {
        var lastWarning: UInt64 = 0
        while true {
            let fd: Int32
            switch Socket.acceptBlocking(listenFD) {
            case .accepted(let accepted): fd = accepted
            case .ended: return
            case .shortOf(let errno):
                // Out of descriptors: the listener is fine and the clients wait in its backlog; try again
                // when connections have ended and freed theirs.
                if state.withLock({ $0.stopped }) { return }
                if onceEvery10s(&lastWarning, now: monotonicNanoseconds()) {
                    FileHandle.standardError.write(
                        Data("localnlb target \(endpoint): accept: \(errno); trying again (raise ulimit -n)\n".utf8))
                }
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            let stopped = state.withLock { state -> Bool in
                if !state.stopped { state.connections.insert(fd) }
                return state.stopped
            }
            if stopped {
                closeDescriptor(fd)
                return
            }
            Thread.detachNewThread { [self] in
                serve(fd)
                state.withLock { _ = $0.connections.remove(fd) }
                closeDescriptor(fd)
            }
        }
    }

    // MARK: One connection

    private func serve(_ fd: Int32) {
        let connection = BlockingConnection(fd: fd)
        let peer = Socket.peerEndpoint(fd)
        let local = Socket.localEndpoint(fd)
        if let banner = options.banner, options.proxyMode != .required { connection.write(banner + "\r\n") }

        var header: (ProxyHeader, Int)?
        if options.proxyMode != .off {
            // Spec §2.2.5: a CRC32C that does not match makes the connection invalid: it is closed.
            let parser = ProxyHeaderParser(rejectsChecksumMismatch: true)
            let deadline = monotonicNanoseconds() + UInt64(max(0.001, options.headerTimeoutSeconds) * 1e9)
            defer { Socket.setReceiveTimeout(fd, nanoseconds: 0) }
            readHeader: while true {
                do {
                    switch try parser.parse(connection.buffer) {
                    case .needMoreData:
                        let now = monotonicNanoseconds()
                        if now < deadline { Socket.setReceiveTimeout(fd, nanoseconds: deadline - now) }
                        guard now < deadline, connection.readMore() else {
                            if monotonicNanoseconds() >= deadline {
                                report(
                                    "\(peer?.description ?? "?"): no complete PROXY header within "
                                        + "\(options.headerTimeoutSeconds) s; closed")
                            }
                            return
                        }
                    case .notProxyHeader:
                        if options.proxyMode == .required {
                            report("\(peer?.description ?? "?"): no PROXY header, and --proxy-protocol is required")
                            return
                        }
                        break readHeader
                    case .header(let parsed, let consumed):
                        header = (parsed, consumed)
                        connection.buffer.removeFirst(consumed)
                        break readHeader
                    }
                } catch {
                    // A malformed header closes the connection: nothing after it can be trusted.
                    report("\(peer?.description ?? "?"): \(error)")
                    return
                }
            }
        }
        if let banner = options.banner, options.proxyMode == .required { connection.write(banner + "\r\n") }

        var refusal: String?
        if let trust = options.trust, header != nil, let peer,
            case .untrusted(let reason) = trust.evaluate(peer: peer.ip)
        {
            // A header from a peer that is not the load balancer is a forgery: consumed, never believed.
            refusal = reason
            report(reason)
        }
        let json = Self.report(
            name: options.name, peer: peer, local: local, header: header?.0, headerLength: header?.1,
            refusal: refusal
        ).rendered
        if options.printsReports { print(json) }

        guard connection.startsLikeHTTP() else {
            connection.write(json + "\n")
            connection.echo()
            return
        }
        guard connection.readUntil(Array("\r\n\r\n".utf8), limit: 65536) else { return }
        var body = json + "\n"
        // Behind an application load balancer the client is in X-Forwarded-For: the report says so too.
        if let forwarded = Self.field("x-forwarded-for", in: connection.buffer) {
            body =
                Self.report(
                    name: options.name, peer: peer, local: local, header: header?.0, headerLength: header?.1,
                    refusal: refusal, forwardedFor: forwarded
                ).rendered + "\n"
        }
        connection.write(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body)
        Socket.shutdownWrite(fd)
    }

    /// The value of a request head's field (its name in lowercase), if the head has it.
    static func field(_ name: String, in bytes: [UInt8]) -> String? {
        let head = String(decoding: bytes, as: UTF8.self)
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    private func report(_ message: String) {
        FileHandle.standardError.write(Data("localnlb target \(options.name): \(message)\n".utf8))
    }

    /// The JSON a target reports for one connection.
    public static func report(
        name: String, peer: IPEndpoint?, local: IPEndpoint?, header: ProxyHeader?, headerLength: Int?,
        refusal: String? = nil, forwardedFor: String? = nil
    ) -> JSONText {
        var proxy = JSONText.null
        if let header {
            proxy = .object([
                ("version", .integer(Int64(header.version.rawValue))),
                ("command", .string(header.command.rawValue)),
                ("family", .string(header.familyName)),
                ("source", .optional(header.source?.description ?? header.unixPaths?.source)),
                ("destination", .optional(header.destination?.description ?? header.unixPaths?.destination)),
                (
                    "tlvs",
                    .array(
                        header.tlvs.map {
                            .object([
                                ("type", .integer(Int64($0.type))), ("name", .string($0.name)),
                                ("hex", .string(hexString($0.value))), ("value", decodedValue($0)),
                            ])
                        })
                ),
                ("crc32c", .string(header.crc32c.rawValue)),
                ("vpcEndpointId", .optional(header.awsVPCEndpointID)),
                ("length", .integer(Int64(headerLength ?? 0))),
            ])
        }
        let honoured = refusal == nil && header?.command == .proxy
        let client = honoured ? (header?.source ?? peer) : peer
        var fields: [(String, JSONText)] = [
            ("target", .string(name)),
            ("peer", .optional(peer?.description)),
            ("local", .optional(local?.description)),
            (refusal == nil ? "proxy" : "untrustedProxy", proxy),
            ("clientAddress", .optional(client?.description)),
        ]
        if let refusal {
            fields.insert(("proxy", .null), at: 3)
            fields.append(("refused", .string(refusal)))
        }
        if let forwardedFor { fields.append(("xForwardedFor", .string(forwardedFor))) }
        return .object(fields)
    }

    /// A TLV's value in readable form: text for names, numbers for lengths, the SSL fields by name.
    static func decodedValue(_ tlv: ProxyTLV) -> JSONText {
        guard let value = try? tlv.decoded() else { return .null }
        switch value {
        case .alpn(let bytes): return .string(String(decoding: bytes, as: UTF8.self))
        case .authority(let text), .netns(let text), .awsVPCEndpointID(let text): return .string(text)
        case .crc32c(let crc):
            return .string(
                hexString([UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]))
        case .noop(let count): return .integer(Int64(count))
        case .uniqueID(let bytes): return .string(String(decoding: bytes, as: UTF8.self))
        case .ssl(let info):
            return .object(
                [("clientFlags", .integer(Int64(info.clientFlags))), ("verify", .integer(Int64(info.verify)))]
                    + info.subTLVs.map {
                        (ProxyTLV.sslSubtypeName($0.type), .string(String(decoding: $0.value, as: UTF8.self)))
                    })
        case .aws(let subtype, let bytes):
            return .object([("subtype", .integer(Int64(subtype))), ("hex", .string(hexString(bytes)))])
        case .unknown: return .null
        }
    }
}

/// A blocking socket with a read buffer: the target's one-thread-per-connection service, and the
/// one-request clients of `demo` and `ctl`.
package final class BlockingConnection {
    /// What `exchange` can fail with: no connection, or no HTTP response on it.
    package enum ExchangeError: Error {
        case connect(SystemError)
        case noResponse
        case tls(TLSError)
    }

    /// One HTTP/1.x request on a new connection (from `source` when given), read to EOF. Returns the
    /// connection's local address, the status and the body.
    /// `tls`: over TLS, verifying the server against the authority's certificate (a PEM file) for a name.
    package static func exchange(
        _ request: [UInt8], with endpoint: IPEndpoint, from source: IPAddress? = nil, timeoutSeconds: Int,
        tls: (authority: String, serverName: String)? = nil
    )
        throws(ExchangeError) -> (local: IPEndpoint, status: Int, body: String)
    {
        let fd: Int32
        do {
            fd = try Socket.stream(for: endpoint.ip)
        } catch {
            throw .connect(error)
        }
        defer { closeDescriptor(fd) }
        Socket.makeBlocking(fd, timeoutSeconds: timeoutSeconds)
        do {
            if let source { try Socket.bind(fd, IPEndpoint(ip: source, port: 0)) }
            _ = try Socket.connect(fd, endpoint)
        } catch {
            throw .connect(error)
        }
        let local = Socket.localEndpoint(fd) ?? endpoint
        let connection = BlockingConnection(fd: fd)
        if let tls {
            do {
                connection.buffer = try TLSClient.exchange(
                    request, on: fd, authority: tls.authority, serverName: tls.serverName)
            } catch {
                throw .tls(error)
            }
        } else {
            connection.write(request)
            while connection.readMore() {}
        }
        let response = String(decoding: connection.buffer, as: UTF8.self)
        guard let split = response.range(of: "\r\n\r\n"),
            let status = Int(response[..<split.lowerBound].split(separator: " ").dropFirst().first ?? "")
        else { throw .noResponse }
        return (local, status, String(response[split.upperBound...]))
    }

    package let fd: Int32
    package var buffer: [UInt8] = []
    private var eof = false

    package init(fd: Int32) { self.fd = fd }

    /// Reads what is available (blocking for at least a byte); false at EOF or error.
    func readMore() -> Bool {
        guard !eof else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let read = chunk.withUnsafeMutableBytes { IO.read(fd, into: $0.baseAddress!, count: $0.count) }
        guard case .moved(let n) = read else {
            eof = true
            return false
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    func readUntil(_ marker: [UInt8], limit: Int) -> Bool {
        while !contains(marker) {
            guard buffer.count < limit, readMore() else { return false }
        }
        return true
    }

    private func contains(_ marker: [UInt8]) -> Bool {
        guard buffer.count >= marker.count else { return false }
        for start in 0...(buffer.count - marker.count)
        where buffer[start..<(start + marker.count)].elementsEqual(marker) {
            return true
        }
        return false
    }

    /// Whether the stream starts with an HTTP/1.x request line: reads until the first line is complete,
    /// or until the bytes cannot be one (an upper-case method, a space, a target, ` HTTP/1.`).
    func startsLikeHTTP() -> Bool {
        while true {
            var index = 0
            while index < buffer.count && buffer[index] >= 0x41 && buffer[index] <= 0x5A { index += 1 }
            if index < buffer.count && (index == 0 || buffer[index] != 0x20) { return false }
            if let lf = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[0..<lf], as: UTF8.self)
                return line.range(of: #"^[A-Z]+ \S+ HTTP/1\.[01]\r?$"#, options: .regularExpression) != nil
            }
            guard buffer.count < 8192, readMore() else { return false }
        }
    }

    package func write(_ text: String) { write(Array(text.utf8)) }

    package func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { IO.send(fd, from: $0.baseAddress!, count: $0.count) }
            guard case .moved(let n) = sent else { return }
            offset += n
        }
    }

    /// Sends back everything received until EOF, then FIN.
    package func echo() {
        if !buffer.isEmpty { write(buffer) }
        buffer.removeAll()
        while readMore() {
            write(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
        Socket.shutdownWrite(fd)
    }
}

extension ProxyHeader {
    /// The paths of a UNIX-family header, as text.
    var unixPaths: (source: String, destination: String)? {
        guard case .unix(let source, let destination) = addresses else { return nil }
        return (String(decoding: source, as: UTF8.self), String(decoding: destination, as: UTF8.self))
    }
}
