import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// Every socket call the balancer makes, each wrapped once; `sockaddr` juggling stays in this file.
public enum Socket {
    /// A non-blocking, close-on-exec TCP socket of the endpoint's family.
    public static func stream(for ip: IPAddress) throws(SystemError) -> Int32 {
        let fd = try syscallNonBlocking("socket") { clnb_socket(ip.isIPv6 ? AF_INET6 : AF_INET) }
        DescriptorLedger.opened(fd)
        return fd
    }

    public static func bind(_ fd: Int32, _ endpoint: IPEndpoint) throws(SystemError) {
        // bind returns 0 or fails: the value says nothing more.
        _ = try withSockAddr(endpoint) { address, length throws(SystemError) in
            try syscallNonBlocking("bind") { Glibc.bind(fd, address, length) }
        }
    }

    /// The source address the kernel's routing picks for a connection to `destination` (a UDP
    /// connect sends nothing), or nil when there is no route.
    public static func routeSource(towards destination: IPEndpoint) -> IPAddress? {
        let fd = socket(
            destination.ip.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        DescriptorLedger.opened(fd)
        defer { closeDescriptor(fd) }
        let connected =
            (try? withSockAddr(destination) { address, length in Glibc.connect(fd, address, length) == 0 }) ?? false
        return connected ? localEndpoint(fd)?.ip : nil
    }

    /// Starts a connect; `.wouldBlock` means it is in progress (EINPROGRESS), finished when writable.
    public static func connect(_ fd: Int32, _ endpoint: IPEndpoint) throws(SystemError) -> IOResult<Void> {
        try withSockAddr(endpoint) { address, length throws(SystemError) in
            while true {
                if Glibc.connect(fd, address, length) == 0 { return .done(()) }
                let code = Errno.current
                if code == .interrupted { continue }
                if code == .inProgress { return .wouldBlock }
                throw SystemError(call: "connect", errno: code)
            }
        }
    }

    /// A stream socket bound to `endpoint` for listening (SO_REUSEADDR, and SO_REUSEPORT if asked;
    /// IPv6 sockets IPv6-only).
    package static func bound(to endpoint: IPEndpoint, reusePort: Bool) throws(SystemError) -> Int32 {
        try bindForListening(try stream(for: endpoint.ip), endpoint, reusePort: reusePort)
    }

    /// Binds `fd` (a stream or datagram socket) to `endpoint` with SO_REUSEADDR, SO_REUSEPORT if asked,
    /// IPV6_V6ONLY for IPv6; on failure closes it.
    /// `reuseAddress` (SO_REUSEADDR) is for TCP listeners (a port in TIME_WAIT binds again at once); a
    /// UDP socket never sets it: on UDP it lets another program's socket bind the same port and take
    /// its datagrams, so a second daemon would share, not be told the port is in use.
    static func bindForListening(_ fd: Int32, _ endpoint: IPEndpoint, reusePort: Bool, reuseAddress: Bool = true)
        throws(SystemError) -> Int32
    {
        do {
            if reuseAddress { try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if endpoint.ip.isIPv6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            try bind(fd, endpoint)
        } catch {
            closeDescriptor(fd)
            throw error
        }
        return fd
    }

    /// A listening socket on `endpoint` (see `bound(to:reusePort:)`).
    public static func listen(on endpoint: IPEndpoint, backlog: Int32 = 1024, reusePort: Bool = false)
        throws(SystemError) -> Int32
    {
        let fd = try bound(to: endpoint, reusePort: reusePort)
        do {
            // Accepted sockets inherit TCP_NODELAY on Linux: one setsockopt fewer per connection.
            setNoDelay(fd)
            try syscallNonBlocking("listen") { Glibc.listen(fd, backlog) }
        } catch {
            closeDescriptor(fd)
            throw error
        }
        return fd
    }

    /// `count` listening sockets on one endpoint, one per event loop, among which the kernel shares out
    /// new connections by their addresses (SO_REUSEPORT). The endpoint is first bound once without
    /// SO_REUSEPORT, so a port another program (or another localnlb) holds is still "in use".
    public static func listenGroup(on endpoint: IPEndpoint, count: Int) throws(SystemError) -> [Int32] {
        guard count > 1 else { return [try listen(on: endpoint)] }
        return try reusePortGroup(
            on: endpoint, count: count, probe: { (e) throws(SystemError) in try bound(to: e, reusePort: false) }
        ) { (e) throws(SystemError) in try listen(on: e, reusePort: true) }
    }

    /// `count` sockets on one endpoint with SO_REUSEPORT (TCP listeners and UDP sockets alike). `probe`
    /// binds it once without SO_REUSEPORT first, so a port another program holds is "in use", and
    /// gives the kernel's port when `endpoint` asks for port 0; `open` makes each socket. On a failure,
    /// what was opened is closed.
    static func reusePortGroup(
        on endpoint: IPEndpoint, count: Int, probe: (IPEndpoint) throws(SystemError) -> Int32,
        open: (IPEndpoint) throws(SystemError) -> Int32
    ) throws(SystemError) -> [Int32] {
        let probed = try probe(endpoint)
        let resolved = endpoint.port == 0 ? (localEndpoint(probed) ?? endpoint) : endpoint
        closeDescriptor(probed)
        var fds: [Int32] = []
        do {
            for _ in 0..<count { fds.append(try open(resolved)) }
        } catch {
            for fd in fds { closeDescriptor(fd) }
            throw error
        }
        return fds
    }

    /// Accepts one connection: its descriptor (non-blocking) and the peer's address.
    public static func accept(_ fd: Int32) throws(SystemError) -> IOResult<(Int32, IPEndpoint)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try withUnsafeMutablePointer(to: &storage) { pointer throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SystemError) in
                try syscall("accept4") { clnb_accept4(fd, address, &length) }
            }
        }
        guard case .done(let client) = result else { return .wouldBlock }
        DescriptorLedger.opened(client)
        return .done((client, endpoint(from: storage) ?? IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)))
    }

    public static func localEndpoint(_ fd: Int32) -> IPEndpoint? {
        name(fd) { getsockname($0, $1, $2) }
    }

    public static func peerEndpoint(_ fd: Int32) -> IPEndpoint? {
        name(fd) { getpeername($0, $1, $2) }
    }

    /// The pending error of a socket (SO_ERROR): how a non-blocking connect ended. nil is success.
    public static func pendingError(_ fd: Int32) -> Errno? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return Errno.current }
        return value == 0 ? nil : Errno(value)
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var value = value
        try syscallNonBlocking("setsockopt") {
            setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Turns a socket blocking, each read and write bounded by `timeoutSeconds` (the command-line
    /// clients and the built-in target; the balancer's loop never blocks).
    public static func makeBlocking(_ fd: Int32, timeoutSeconds: Int? = nil) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        guard let seconds = timeoutSeconds else { return }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        bestEffort("setsockopt(SO_RCVTIMEO)") {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        bestEffort("setsockopt(SO_SNDTIMEO)") {
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Bounds each blocking read of `fd` by `nanoseconds` (0: no bound).
    package static func setReceiveTimeout(_ fd: Int32, nanoseconds: UInt64) {
        var timeout = timeval(
            tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1000))
        if nanoseconds > 0 && timeout.tv_sec == 0 && timeout.tv_usec == 0 { timeout.tv_usec = 1 }
        bestEffort("setsockopt(SO_RCVTIMEO)") {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// The segments this TCP socket has received (TCP_INFO's `tcpi_segs_in`, which glibc's
    /// `tcp_info` lacks: read at its offset in the kernel's), keepalive probes included.
    static func segmentsReceived(_ fd: Int32) -> UInt32? {
        guard fd >= 0 else { return nil }
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { info -> UInt32? in
            var length = socklen_t(info.count)
            guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, info.baseAddress, &length) == 0, length >= 144 else {
                return nil
            }
            return UnsafeRawBufferPointer(info).loadUnaligned(fromByteOffset: 140, as: UInt32.self)
        }
    }

    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        bestEffort("setsockopt(TCP_NODELAY)") {
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// IP_TRANSPARENT: lets the socket bind an address that is not local (needs CAP_NET_ADMIN).
    public static func setTransparent(_ fd: Int32, ipv6: Bool) throws(SystemError) {
        if ipv6 {
            try setOption(fd, Int32(IPPROTO_IPV6), CLNB_IPV6_TRANSPARENT, 1)
        } else {
            try setOption(fd, Int32(IPPROTO_IP), CLNB_IP_TRANSPARENT, 1)
        }
    }

    /// IP_BIND_ADDRESS_NO_PORT: bind an address now, pick the port at connect, so the 4-tuple decides.
    public static func setBindAddressNoPort(_ fd: Int32) {
        var one: Int32 = 1
        bestEffort("setsockopt(IP_BIND_ADDRESS_NO_PORT)") {
            setsockopt(fd, Int32(IPPROTO_IP), CLNB_IP_BIND_ADDRESS_NO_PORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    public enum SendProgress {
        /// Everything is sent.
        case complete
        /// The socket's buffer is full: wait until it is writable.
        case wouldBlock
        /// The peer is gone (EPIPE, ECONNRESET…).
        case failed
    }

    /// Sends `bytes` from `offset` on a non-blocking socket, advancing `offset` past what was sent.
    public static func sendPending(_ fd: Int32, _ bytes: [UInt8], from offset: inout Int) -> SendProgress {
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                return .wouldBlock
            } else {
                return .failed
            }
        }
        return .complete
    }

    /// FIN towards the peer; further reads still work. ENOTCONN (peer already gone) is ignored.
    /// Wakes whoever blocks on `fd` (an accept, a read) with an end, in both directions.
    /// Whether a connected socket's peer has closed (or reset) it: a peek that reads no byte.
    package static func closedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    package static func shutdownBoth(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    package enum BlockingAccept {
        case accepted(Int32)
        /// No descriptor, or no memory, to take it with: the listener is fine, try again later.
        case shortOf(Errno)
        /// The listener was shut down, or failed.
        case ended
    }

    /// accept(2) on a blocking listener, for the built-in target: a connection that was aborted
    /// before it was taken is skipped.
    package static func acceptBlocking(_ fd: Int32) -> BlockingAccept {
        while true {
            let accepted = Glibc.accept(fd, nil, nil)
            if accepted >= 0 {
                DescriptorLedger.opened(accepted)
                return .accepted(accepted)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            if [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(errno) { return .shortOf(Errno(errno)) }
            return .ended
        }
    }

    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes with SO_LINGER 0, so the kernel sends RST instead of FIN.
    /// A connected pair of local stream sockets, non-blocking: a TLS flow's decrypted side.
    package static func streamPair() throws(SystemError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw SystemError(call: "socketpair", errno: Errno.current)
        }
        DescriptorLedger.opened(fds[0])
        DescriptorLedger.opened(fds[1])
        return (fds[0], fds[1])
    }

    public static func closeWithReset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        bestEffort("setsockopt(SO_LINGER)") {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        closeDescriptor(fd)
    }

    // MARK: sockaddr conversions

    static func withSockAddr<R>(
        _ endpoint: IPEndpoint, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> R
    ) throws(SystemError) -> R {
        switch endpoint.ip {
        case .v4(let ip):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = endpoint.port.bigEndian
            address.sin_addr.s_addr = ip.value.bigEndian
            return try withUnsafePointer(to: &address) { pointer throws(SystemError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
                    try body(sa, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(let ip):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
                for i in 0..<16 { raw[i] = ip.bytes[i] }
            }
            return try withUnsafePointer(to: &address) { pointer throws(SystemError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
                    try body(sa, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    package static func endpoint(from storage: sockaddr_storage) -> IPEndpoint? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    let value = UInt32(bigEndian: pointer.pointee.sin_addr.s_addr)
                    let ip = IPv4Address(
                        UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF),
                        UInt8(value & 0xFF))
                    return IPEndpoint(ip: .v4(ip), port: UInt16(bigEndian: pointer.pointee.sin_port))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    let bytes = withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    let ip = IPv6Address(bytes: bytes)!
                    // A v4-mapped peer on a dual-stack socket is reported as the IPv4 address it is.
                    let address: IPAddress = ip.mappedIPv4.map { .v4($0) } ?? .v6(ip)
                    return IPEndpoint(ip: address, port: UInt16(bigEndian: pointer.pointee.sin6_port))
                }
            }
        default:
            return nil
        }
    }

    private static func name(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> IPEndpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) == 0 }
        }
        return ok ? endpoint(from: storage) : nil
    }
}

/// Monotonic time in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Raises the soft limit of open files to the hard limit: each flow holds two sockets and two pipes.
public func raiseOpenFileLimit() {
    var limit = rlimit()
    if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Writing to a socket whose peer has gone must be an EPIPE error, not a process-killing signal.
public func ignoreSIGPIPE() {
    signal(SIGPIPE, SIG_IGN)
}
