import Foundation
import Glibc
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import LocalNLBTools
import ProxyProtocol
import Synchronization

let loopback = IPAddress.v4(IPv4Address(127, 0, 0, 1))
let otherLoopback = IPAddress.v4(IPv4Address(127, 0, 0, 2))
let loopback6 = IPAddress.v6(IPv6Address("::1")!)

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A load balancer running on its own thread, with its ended flows collected.
final class RunningBalancer: @unchecked Sendable {
    let balancer: LoadBalancer
    private var endpoints: [(listener: Int, endpoint: IPEndpoint)] = []
    private(set) var adminEndpoint: IPEndpoint?
    private let lock = NSCondition()
    private var records: [FlowRecord] = []
    private let done = DispatchSemaphore(value: 0)
    private var stopped = false

    /// The event log's lines so far.
    var logLines: [String] { logged.lines.withLock { $0 } }
    private let logged = LogSink()

    init(
        _ configuration: Configuration, drainSeconds: Double = 0.3, flowLog: FlowLog = .disabled, timeScale: Double = 1,
        eventLoops: Int = 2, udpFlowLimit: Int = 8192
    ) throws {
        var options = LoadBalancerOptions()
        options.udpFlowLimit = udpFlowLimit
        // Two loops, as the daemon runs on this machine: every end-to-end test crosses loops.
        options.eventLoops = eventLoops
        options.timeScale = timeScale
        options.flowLog = flowLog
        options.drainSeconds = drainSeconds
        options.log = { [logged] line in logged.lines.withLock { $0.append(line) } }
        let box = RecordSink()
        options.onFlowEnd = { box.append($0) }
        balancer = try LoadBalancer(configuration: configuration, options: options)
        // Read before the loop's thread starts: afterwards the loop owns the balancer's state.
        endpoints = balancer.listenerEndpoints
        adminEndpoint = balancer.adminEndpoint
        box.owner = self
        Thread.detachNewThread { [balancer, done] in
            try? balancer.run()
            done.signal()
        }
    }

    func endpoint(_ listener: Int = 0, ipv6: Bool = false) -> IPEndpoint {
        endpoints.first { $0.listener == listener && $0.endpoint.ip.isIPv6 == ipv6 }!.endpoint
    }

    fileprivate func append(_ record: FlowRecord) {
        lock.lock()
        records.append(record)
        lock.broadcast()
        lock.unlock()
    }

    /// Waits (at most `seconds`) until `count` flows have ended; returns them.
    func endedFlows(count: Int, within seconds: Double = 5) throws -> [FlowRecord] {
        let deadline = Date().addingTimeInterval(seconds)
        lock.lock()
        defer { lock.unlock() }
        while records.count < count {
            guard lock.wait(until: deadline) else {
                throw TestFailure("expected \(count) ended flows, saw \(records.count): \(records.map(\.closeReason))")
            }
        }
        return records
    }

    /// Stops and waits for the loop to exit (bounded by the drain time plus a margin).
    func stop() {
        guard !stopped else { return }
        stopped = true
        balancer.stop()
        _ = done.wait(timeout: .now() + 10)
    }

    /// Whether the loop has exited by itself within `seconds`.
    func exited(within seconds: Double) -> Bool { done.wait(timeout: .now() + seconds) == .success }
}

private final class LogSink: Sendable {
    let lines = Mutex<[String]>([])
}

private final class RecordSink: @unchecked Sendable {
    weak var owner: RunningBalancer?
    func append(_ record: FlowRecord) { owner?.append(record) }
}

/// A blocking TCP socket for tests, every wait bounded by a receive timeout. Sendable: a test may
/// send on one thread while it receives on another; closing takes the descriptor exactly once.
final class TestSocket: Sendable {
    private let descriptor: Atomic<Int32>
    var fd: Int32 { descriptor.load(ordering: .acquiring) }

    init(fd: Int32, timeout: Double = 5) {
        descriptor = Atomic(fd)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        setTimeout(timeout)
    }

    /// Connects to `endpoint`, from `source` if given.
    static func connect(to endpoint: IPEndpoint, from source: IPAddress? = nil, timeout: Double = 5) throws
        -> TestSocket
    {
        let fd = try Socket.stream(for: endpoint.ip)
        let socket = TestSocket(fd: fd, timeout: timeout)
        if let source { try Socket.bind(fd, IPEndpoint(ip: source, port: 0)) }
        _ = try Socket.connect(fd, endpoint)
        return socket
    }

    deinit { close() }

    func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    var local: IPEndpoint { Socket.localEndpoint(fd)! }
    var peer: IPEndpoint? { Socket.peerEndpoint(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError(call: "send", errno: .current)
            }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    enum Received: Equatable {
        case data([UInt8])
        case eof
        case reset
        case timeout
    }

    /// One read: data, EOF, a reset, or nothing within the timeout.
    func receive(max: Int = 65536) -> Received {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return .data(Array(buffer[0..<n])) }
            if n == 0 { return .eof }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .timeout
            case ECONNRESET: return .reset
            default: return .reset
            }
        }
    }

    /// Reads exactly `count` bytes, or fails.
    func receive(exactly count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count < count {
            switch receive(max: count - result.count) {
            case .data(let bytes): result += bytes
            case let other: throw TestFailure("wanted \(count) bytes, got \(result.count) then \(other)")
            }
        }
        return result
    }

    /// Reads until EOF; fails on reset or timeout.
    func receiveUntilEOF() throws -> [UInt8] {
        var result: [UInt8] = []
        while true {
            switch receive() {
            case .data(let bytes): result += bytes
            case .eof: return result
            case let other: throw TestFailure("after \(result.count) bytes: \(other) instead of EOF")
            }
        }
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    func resetAndClose() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { Socket.closeWithReset(fd) }
    }

    func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { closeDescriptor(fd) }
    }
}

/// A raw TCP server for tests: hands out each accepted connection.
final class TestServer {
    let fd: Int32
    let endpoint: IPEndpoint

    init(on ip: IPAddress = loopback) throws {
        fd = try Socket.listen(on: IPEndpoint(ip: ip, port: 0), backlog: 64)
        endpoint = Socket.localEndpoint(fd)!
    }

    deinit { closeDescriptor(fd) }

    /// The next connection, waiting at most `seconds`.
    func accept(within seconds: Double = 5) throws -> TestSocket {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, Int32(seconds * 1000)) == 1 else {
            throw TestFailure("no connection within \(seconds) s")
        }
        guard case .done(let (client, _)) = try Socket.accept(fd) else { throw TestFailure("accept would block") }
        return TestSocket(fd: client)
    }

    /// Whether a connection is waiting, after `seconds`.
    func hasPendingConnection(within seconds: Double) -> Bool {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pollFD, 1, Int32(seconds * 1000)) == 1
    }
}

/// Opens a flow through `lb` to `server` and moves one byte ("x") across it, so both ends are up.
func openFlow(through lb: RunningBalancer, to server: TestServer) throws -> (client: TestSocket, upstream: TestSocket) {
    let client = try TestSocket.connect(to: lb.endpoint())
    try client.send("x")
    let upstream = try server.accept()
    _ = try upstream.receive(exactly: 1)
    return (client, upstream)
}

/// Ends a flow from `openFlow` normally: the target sends "bye", the client reads it and closes, and
/// the target reads the client's FIN. Throws if any step goes otherwise.
func closeFlow(client: TestSocket, upstream: TestSocket) throws {
    try upstream.send("bye")
    guard try client.receive(exactly: 3) == Array("bye".utf8) else {
        throw TestFailure("the client did not get the target's bytes")
    }
    client.close()
    guard try upstream.receiveUntilEOF().isEmpty else { throw TestFailure("the target got bytes, not the FIN") }
    upstream.close()
}

/// A port on which nothing listens (bound then closed), so a connect is refused.
func closedPort(on ip: IPAddress = loopback) throws -> UInt16 {
    let fd = try Socket.listen(on: IPEndpoint(ip: ip, port: 0))
    let port = Socket.localEndpoint(fd)!.port
    closeDescriptor(fd)
    return port
}

/// A one-listener configuration forwarding to `targets`.
func configuration(
    type: TargetType = .ip, targets: [IPEndpoint], attributes: (inout TargetGroupConfiguration) -> Void = { _ in },
    idleTimeout: Int = 350, nodes: [LoadBalancerNode] = [LoadBalancerNode(subnetID: "subnet-test", ipv4: loopback)]
) -> Configuration {
    var group = TargetGroupConfiguration(
        name: "tg", port: 80, targetType: type,
        targets: targets.map { TargetConfiguration(id: $0.ip.description, address: $0.ip, port: $0.port) })
    // Data-plane tests run without health checks, whose connections would reach the test servers too.
    group.healthCheck.enabled = false
    attributes(&group)
    return Configuration(
        loadBalancerName: "test-nlb", nodes: nodes,
        listeners: [
            ListenerConfiguration(
                loadBalancerName: "test-nlb", port: 0, targetGroupName: "tg", idleTimeoutSeconds: idleTimeout)
        ],
        targetGroups: [group])
}

extension RunningBalancer {
    /// A balancer forwarding to `server` (the one-listener `configuration`), with its control API on an
    /// ephemeral loopback port and `edit` applied to that API's settings.
    static func withControlAPI(to server: TestServer, _ edit: (inout AdminConfiguration) -> Void = { _ in }) throws
        -> RunningBalancer
    {
        var config = configuration(targets: [server.endpoint])
        var admin = AdminConfiguration(address: IPEndpoint(ip: loopback, port: 0))
        edit(&admin)
        config.admin = admin
        return try RunningBalancer(config)
    }
}
