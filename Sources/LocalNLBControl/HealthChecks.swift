import CLocalNLB
import Glibc
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// One health-check connection in flight. Probes live in a slab and are reused.
package final class HealthProbe {
    package let index: Int
    package var generation: UInt32 = 0
    package var fd: Int32 = -1
    package var group = 0
    package var target = 0
    package var registration: UInt64 = 0
    package var deadline: UInt64 = 0
    package var http = false
    package var connected = false
    /// The PROXY header (if the group sends one), then the HTTP request (HTTP checks).
    package var output: [UInt8] = []
    package var written = 0
    package var response: [UInt8] = []
    package var matcher: [ClosedRange<Int>] = []
    /// An HTTPS check: the PROXY header (the first `rawLength` bytes of `output`) goes before the TLS
    /// handshake, the request inside the session.
    package var tls: TLSSession?
    package var https = false
    package var rawLength = 0
    package var handshakeDone = false

    package init(index: Int) { self.index = index }
}

extension ControlPlane {
    /// The request an HTTP check sends, as an ALB sends it (seed 000): `Host` is the node's address and
    /// the listener's port (docs/health.md §3).
    static func healthCheckRequest(path: String, host: IPEndpoint) -> [UInt8] {
        Array(
            ("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
                + "User-Agent: ELB-HealthChecker/2.0\r\nAccept-Encoding: gzip, compressed\r\n\r\n").utf8)
    }

    /// What a check connection starts with when the group sends PROXY headers: the LOCAL command,
    /// with no client (docs/health.md §3).
    static func healthCheckHeader(_ mode: ProxyProtocolMode) -> [UInt8] {
        switch mode {
        case .off: return []
        case .v1: return Array("PROXY UNKNOWN\r\n".utf8)
        case .v2(let awsTLVs, _):
            return awsTLVs
                ? ProxyHeader.awsHealthCheck().encoded()
                : ProxyHeader(version: .v2, command: .local, addresses: .unspecified).encoded()
        }
    }

    /// The node a check of a group comes from, and the listener port an HTTP check names in `Host`:
    /// the checks of a target take turns from each node's address of its family (`round`), so the
    /// target sees every node probing it, as behind an NLB (docs/health.md §3).
    func checkHost(group: Int, family: IPAddress, round: Int = 0) -> IPEndpoint {
        let name = groups[group].configuration.name
        let listener = listeners.first { $0.isOpen && configuration.listeners[$0.configIndex].targetGroupName == name }
        let nodes = listener?.nodes ?? configuration.loadBalancers.flatMap(\.nodes)
        let addresses = nodes.flatMap(\.addresses).filter { $0.isIPv6 == family.isIPv6 }
        let ip = addresses.isEmpty ? family : addresses[round % addresses.count]
        return IPEndpoint(ip: ip, port: listener?.endpoint.port ?? groups[group].configuration.port)
    }

    func startProbe(group groupIndex: Int, target targetIndex: Int) {
        // Read before the lifecycle changes, so no copy of the group outlives the change.
        let target = groups[groupIndex].targets[targetIndex]
        let settings = groups[groupIndex].configuration.healthCheck
        let header = Self.healthCheckHeader(groups[groupIndex].configuration.proxyProtocol)
        let timeout = groups[groupIndex].lifecycle.checkTimeout
        groups[groupIndex].lifecycle.checkStarted(targetIndex, now: now)

        let probe = probes.take(HealthProbe.init(index:))
        probe.group = groupIndex
        probe.target = targetIndex
        probe.registration = target.registration
        probe.deadline = now + timeout
        probe.http = settings.protocolName.isHTTP
        probe.https = settings.protocolName == .https
        probe.tls = nil
        probe.handshakeDone = false
        probe.rawLength = header.count
        probe.connected = false
        probe.written = 0
        probe.response.removeAll(keepingCapacity: true)
        probe.matcher = settings.matcher
        let host = checkHost(group: groupIndex, family: target.endpoint.ip, round: target.probeRound)
        groups[groupIndex].lifecycle.targets[targetIndex].probeRound &+= 1
        probe.output = header
        if probe.http { probe.output += Self.healthCheckRequest(path: settings.path, host: host) }

        // Each check is its own connection from the node's address (docs/health.md §3).
        let destination = IPEndpoint(ip: target.endpoint.ip, port: settings.port ?? target.endpoint.port)
        do {
            probe.fd = try Socket.stream(for: destination.ip)
            Socket.setBindAddressNoPort(probe.fd)
            try Socket.bind(probe.fd, IPEndpoint(ip: host.ip, port: 0))
            let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
            try poller.add(probe.fd, events: interest, token: token(.probe, probe.index, probe.generation))
            if try Socket.connect(probe.fd, destination).isDone {
                probe.connected = true
                advanceProbe(probe)
            }
        } catch  where Self.isLocalShortage(error.errno) {
            skipProbe(probe, error.errno)
        } catch {
            finishProbe(probe, passed: false, cause: "connect: \(error.errno)")
        }
    }

    /// What this process or machine ran out of, not what the target did: no descriptor, no memory, no
    /// local port. AWS does not fail a target because the load balancer is short of resources.
    static func isLocalShortage(_ errno: Errno) -> Bool {
        [.tooManyOpenFiles, .fileTableFull, Errno(ENOBUFS), Errno(ENOMEM), .addressNotAvailable].contains(errno)
    }

    /// A check that could not be made: no result either way, counted, logged at most every 10 s, and
    /// tried again soon (within a second, or the interval if that is shorter).
    func skipProbe(_ probe: HealthProbe, _ errno: Errno) {
        probe.tls = nil
        if probe.fd >= 0 {
            closeDescriptor(probe.fd)
            probe.fd = -1
        }
        probe.generation &+= 1
        probes.release(probe.index)
        let name = groups[probe.group].configuration.name
        healthChecksSkipped[name, default: 0] += 1
        groups[probe.group].lifecycle.checkSkipped(probe.target, registration: probe.registration, now: now)
        if onceEvery10s(&lastSkippedCheckWarning, now: now) {
            options.log(
                "target group \(name): a health check was not made (\(errno)); it is tried again, and the target "
                    + "keeps its state (raise ulimit -n)")
        }
    }

    func probeEvent(index: Int, generation: UInt32, events: UInt32) {
        let probe = probes[index]
        guard probe.fd >= 0, probe.generation & 0xFF_FFFF == generation else { return }
        if !probe.connected {
            guard events & (CLNB_EPOLLOUT | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
            if let error = Socket.pendingError(probe.fd) {
                return finishProbe(probe, passed: false, cause: "connect: \(error)")
            }
            probe.connected = true
        }
        advanceProbe(probe)
    }

    /// An HTTPS check: the PROXY header raw, then the handshake (not verifying the target, as AWS),
    /// then the request and the status line inside the session.
    func advanceHTTPSProbe(_ probe: HealthProbe) {
        if probe.written < probe.rawLength {
            switch Socket.sendPending(probe.fd, Array(probe.output[..<probe.rawLength]), from: &probe.written) {
            case .complete: break
            case .wouldBlock: return
            case .failed:
                return finishProbe(probe, passed: false, cause: "the connection failed while the check was sent")
            }
        }
        if probe.tls == nil {
            guard let session = TLSSession(context: healthCheckTLS, fd: probe.fd) else {
                return finishProbe(probe, passed: false, cause: "no memory for a TLS session")
            }
            probe.tls = session
        }
        guard let session = probe.tls else { return }
        if !probe.handshakeDone {
            switch session.handshake() {
            case .done: probe.handshakeDone = true
            case .wouldBlock: return
            case .closed:
                return finishProbe(probe, passed: false, cause: "TLS handshake: the target closed the connection")
            case .failed(let cause):
                return finishProbe(
                    probe, passed: false, cause: cause + " (does the target speak TLS on the health-check port?)")
            }
        }
        while probe.written < probe.output.count {
            switch session.write(probe.output[probe.written...]) {
            case .done(let n): probe.written += n
            case .wouldBlock: return
            case .closed, .failed:
                return finishProbe(probe, passed: false, cause: "the connection failed while the check was sent")
            }
        }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let step = chunk.withUnsafeMutableBytes { session.read(into: $0) }
            switch step {
            case .done(let n):
                probe.response += chunk[0..<n]
                if let status = Self.statusCode(probe.response) { return finishHTTPProbe(probe, status: status) }
                if probe.response.count > 8192 {
                    return finishProbe(probe, passed: false, cause: "no status line in the answer's first 8 KiB")
                }
            case .wouldBlock: return
            case .closed, .failed:
                return finishProbe(probe, passed: false, cause: "the target closed the connection before a status line")
            }
        }
    }

    /// The status line of an HTTP or HTTPS check against the Matcher.
    func finishHTTPProbe(_ probe: HealthProbe, status: Int) {
        let passed = probe.matcher.contains { $0.contains(status) }
        let codes = probe.matcher.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
        let cause =
            status == 0
            ? "the answer is not an HTTP/1.x status line" + proxyHint(probe)
            : "HTTP \(status), not the Matcher's \(codes.joined(separator: ","))"
                + (status == 400 ? proxyHint(probe) : "")
        finishProbe(probe, passed: passed, cause: passed ? nil : cause)
    }

    /// Writes what is left to write; a TCP check passes once connected and written, an HTTP check
    /// once its status line matches.
    func advanceProbe(_ probe: HealthProbe) {
        if probe.https { return advanceHTTPSProbe(probe) }
        switch Socket.sendPending(probe.fd, probe.output, from: &probe.written) {
        case .complete: break
        case .wouldBlock: return
        case .failed: return finishProbe(probe, passed: false, cause: "the connection failed while the check was sent")
        }
        guard probe.http else { return finishProbe(probe, passed: true) }
        var chunk = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while true {
            let received = withUnsafeMutableBytes(of: &chunk) {
                IO.receive(probe.fd, into: $0.baseAddress!, count: $0.count)
            }
            guard case .moved(let n) = received else {
                if received == .wouldBlock { return }
                return finishProbe(
                    probe, passed: false,
                    cause: "the target closed the connection before a status line" + proxyHint(probe))
            }
            withUnsafeBytes(of: &chunk) { probe.response += $0.prefix(n) }
            if let status = Self.statusCode(probe.response) { return finishHTTPProbe(probe, status: status) }
            if probe.response.count > 8192 {
                return finishProbe(probe, passed: false, cause: "no status line in the answer's first 8 KiB")
            }
        }
    }

    /// The commonest cause of a check that a target cuts short or answers 400: the PROXY header on one
    /// side only. Said with the check's own side of it, so the fix is in the line.
    func proxyHint(_ probe: HealthProbe) -> String {
        switch groups[probe.group].configuration.proxyProtocol {
        case .off:
            return " (a target that expects a PROXY header does this to a check without one: does the target parse "
                + "PROXY headers while proxy_protocol_v2.enabled is false?)"
        case .v1, .v2:
            return " (a target that does not parse PROXY headers does this to one: the group sends them, so the "
                + "target must parse them, as nginx's proxy_protocol or localnlb target --proxy-protocol do)"
        }
    }

    /// The status code of an HTTP/1.x status line, once the line is complete.
    static func statusCode(_ response: [UInt8]) -> Int? {
        guard let lf = response.firstIndex(of: 0x0A) else { return nil }
        let line = String(decoding: response[..<lf], as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else { return 0 }
        return code
    }

    /// `cause`: why a failed check failed, kept on the target for the event log.
    func finishProbe(_ probe: HealthProbe, passed: Bool, cause: String? = nil) {
        probe.tls = nil  // the session before its socket
        if probe.fd >= 0 {
            closeDescriptor(probe.fd)
            probe.fd = -1
        }
        probe.generation &+= 1
        probes.release(probe.index)
        if !passed, probe.target < groups[probe.group].targets.count,
            groups[probe.group].targets[probe.target].registration == probe.registration
        {
            groups[probe.group].lifecycle.targets[probe.target].lastCheckFailure = cause ?? "the check failed"
        }
        let effects = groups[probe.group].lifecycle.recordCheck(
            probe.target, registration: probe.registration, passed: passed, now: now)
        apply(effects, group: probe.group)
    }

    /// Checks that got no answer within HealthCheckTimeoutSeconds fail.
    func expireProbes() {
        for probe in probes where probe.fd >= 0 && now >= probe.deadline {
            let seconds = groups[probe.group].configuration.healthCheck.timeoutSeconds
            finishProbe(probe, passed: false, cause: "no answer within HealthCheckTimeoutSeconds (\(seconds) s)")
        }
    }
}
