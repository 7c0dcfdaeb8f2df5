import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// What an Application Load Balancer's listener does to each request (docs/alb.md §16): its scheme and
/// port for `X-Forwarded-Proto`/`-Port`, and the load balancer's routing attributes.
package struct HTTPListenerSettings: Sendable {
    package enum XFFMode: String, Sendable { case append, preserve, remove }
    package enum DesyncMode: String, Sendable { case monitor, defensive, strictest }

    package var scheme = "http"
    package var port: UInt16 = 80
    package var xffMode = XFFMode.append
    package var xffClientPort = false
    package var desyncMode = DesyncMode.defensive
    package var dropInvalidHeaderFields = false
    /// `idle_timeout.timeout_seconds`: a connection without bytes either way this long is closed, and a
    /// target that has not answered by then gets the client a 504.
    package var idleNanoseconds: UInt64 = 60_000_000_000
    /// `client_keep_alive.seconds`: a client connection is closed after its first request past this age.
    package var clientKeepAliveNanoseconds: UInt64 = 3_600_000_000_000
    /// The listener's rules by priority; a request none matches goes to the listener's group.
    package var rules: [HTTPRule] = []
    /// The listener's default action when it is not one forward (then its group is -1, or the first of a
    /// weighted forward).
    package var defaultAction: HTTPAction?
    /// Towards `HTTPS` target groups: the client side, with the backend policy AWS uses (no verification).
    package var backendTLS: TLSClientContext?
    /// `routing.http.preserve_host_header.enabled` false on a listener whose port is not its scheme's
    /// default: the port goes on a Host that has none.
    package var appendsListenerPort = false
    /// `routing.http.x_amzn_tls_version_and_cipher_suite.enabled` on an HTTPS listener: the TLS version
    /// and cipher go to the target under these field names (each with its `: `).
    package var tlsHeaders = false
    package var tlsVersionField: [UInt8] = Array("X-Amzn-Tls-Version: ".utf8)
    package var tlsCipherSuiteField: [UInt8] = Array("X-Amzn-Tls-Cipher-Suite: ".utf8)
    /// `routing.http.response.server.enabled`: the load balancer's own answers carry `Server: awselb/2.0`.
    package var serverHeader = true
    /// The listener's response headers (docs/alb.md §24), as the lines added to every response
    /// (`Name: value\r\n` each), and their names lowercased: a target's field of one of them is replaced.
    package var addedHeaders: [UInt8] = []
    package var addedHeaderNames: [[UInt8]] = []

    package init() {}
}

/// One client connection of an Application Load Balancer's HTTP listener: its request and response in
/// flight, and the connection to the target that serves them (kept open between requests while the
/// next goes to the same target).
package final class HTTPSession {
    let index: Int
    var generation: UInt32 = 0
    /// The connection's id in `GET /flows`, from the loop's flow ids.
    var id: UInt64 = 0
    var clientFD: Int32 = -1
    var targetFD: Int32 = -1
    var listenerIndex = 0
    var groupIndex = 0
    var client = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var node = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var settings = HTTPListenerSettings()
    var started: UInt64 = 0
    var lastActivity: UInt64 = 0

    /// Client → load balancer: a request head, then its body, then any pipelined request.
    let inBuffer: UnsafeMutableRawPointer
    var inStart = 0
    var inEnd = 0
    /// Target → load balancer: a response head, then its body.
    let responseBuffer: UnsafeMutableRawPointer
    var responseStart = 0
    var responseEnd = 0
    /// A head written by the load balancer (the request as forwarded, a response as returned, or the
    /// load balancer's own answer), sent before any body byte.
    let stage: UnsafeMutableRawPointer
    var stageStart = 0
    var stageEnd = 0
    var stageToTarget = false

    enum RequestPhase { case head, body, done }
    enum ResponsePhase { case idle, head, body, done }
    var requestPhase = RequestPhase.head
    var responsePhase = ResponsePhase.idle
    var request = HTTPHead()
    var response = HTTPHead()
    /// What is left of the request body: bytes for a length, or the chunked parser.
    var requestRemaining = 0
    var requestChunks = ChunkedBody()
    var responseRemaining = 0
    var responseChunks = ChunkedBody()
    var methodIsHEAD = false
    /// The target's connection: which target, connect in progress, whether it may serve the next request.
    var targetIndex = -1
    /// The group `targetIndex` is of (a rule may send a request to another group than the listener's).
    var targetGroup = -1
    /// Where the target connection goes and leaves from: its key in the loop's pool of idle ones.
    var targetKey: HTTPTargetPool.Key?
    var targetConnecting = false
    var targetReusable = false
    var targetEOF = false
    // What the access log says of the request in flight (docs/alb.md §22).
    var receivedWallClock = 0.0
    var sentToTargetAt: UInt64 = 0
    var responseAt: UInt64 = 0
    var exchangeBytesIn = 0
    var exchangeBytesOut = 0
    var targetStatus = 0
    var matchedRule = 0
    var actionTaken = ""
    var redirectURL = ""
    var traceID: [UInt8] = []
    /// The request line and user agent as logged, taken while the head is in the buffer (logging on only).
    var loggedRequest = ""
    var loggedAgent = ""
    var routedTarget: IPEndpoint?
    /// An HTTPS listener's connection: OpenSSL's names of its TLS version and cipher (static strings
    /// of the library, kept for the connection), nil over plain HTTP.
    var tlsVersion: UnsafePointer<CChar>?
    var tlsCipher: UnsafePointer<CChar>?
    /// Stickiness: the token of the target this response's cookie names, or 0 for none to set.
    var stickyToken: UInt64 = 0
    /// Target group stickiness: the group this response's `AWSALBTG` cookie names, for how long (0: none).
    var groupStickyToken: UInt64 = 0
    var groupStickySeconds = 0
    /// The routed target's count of requests in flight, while this session's request is one of them.
    var outstanding: SharedCounter?
    /// The client connection ends once the current response has gone (close, an ambiguous request,
    /// HTTP/1.0, a body left unread).
    var closeClientAfter = false
    var clientEOF = false
    /// Whether a read of each socket may find bytes: set by its readable edge, cleared by a read that
    /// comes back short (edge-triggered epoll brings a new edge for what arrives after).
    var clientReadable = true
    var targetReadable = true
    /// The peer's FIN was seen on an event: a short read does not clear readiness then, so the read
    /// that returns 0 still happens (the FIN brings no edge of its own behind the bytes).
    var clientHungUp = false
    var targetHungUp = false
    /// When the target connection last finished an exchange: a connection idle this long is checked for
    /// the target's close before it is used again.
    var targetIdleSince: UInt64 = 0
    /// After a 101: bytes pass both ways unparsed.
    var tunnel = false
    /// The last answer is sent and the write side shut: what the client still sends is read and
    /// dropped until it closes (or `lingerDeadline`), so unread bytes do not turn the close into a
    /// reset that could destroy the answer in flight.
    var lingering = false
    /// The client may have sent bytes the load balancer has not read (a body it answered before, a
    /// request after a closing one): only then is the close lingered over.
    var mayHaveUnread = false
    var lingerDeadline: UInt64 = 0
    /// Bytes moved both ways since the last count.
    var uncountedBytes: UInt64 = 0
    var requestStarted: UInt64 = 0
    var inUse: Bool { clientFD >= 0 }

    static let inCapacity = HTTPParser.maximumHead
    static let responseCapacity = 65536
    /// A forwarded head: the client's head plus what the load balancer adds (forwarding fields, trace id).
    static let stageCapacity = HTTPParser.maximumHead + 1024

    init(index: Int) {
        self.index = index
        inBuffer = .allocate(byteCount: Self.inCapacity, alignment: 16)
        responseBuffer = .allocate(byteCount: Self.responseCapacity, alignment: 16)
        stage = .allocate(byteCount: Self.stageCapacity, alignment: 16)
    }

    deinit {
        inBuffer.deallocate()
        responseBuffer.deallocate()
        stage.deallocate()
    }

    var inBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: inBuffer + inStart, count: inEnd - inStart) }
    var responseBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: responseBuffer + responseStart, count: responseEnd - responseStart)
    }
}
